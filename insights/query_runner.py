"""Running query nodes: the results cache, refresh modes, the statement timeout, cancellation.

Results are cached in Redis per (project, normalised query). `blocking` answers from the cache while
it is fresh and computes otherwise; `force_blocking` always computes; `force_cache` never computes.
(`async` is handled by the API layer with a Celery task.) A computation runs under its own
statement timeout and records its PostgreSQL backend pid under its execution key, so a cancel can
stop exactly that statement from any process.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from django.utils import timezone

from accounts.models import Project
from infra.metrics import QUERY_RUNTIME
from infra.redis import cache_get, cache_get_many, cache_set_many, redis_client
from insights import events_store
from insights.events_store import QueryCancelled as QueryCancelled  # re-exported: the lane reads it here
from insights.events_store import QueryTimedOut as QueryTimedOut  # likewise
from insights.query_nodes import (
    AnyQueryNode,
    InvalidQuery,
    TrendsQuery,
    query_fingerprint,
    query_parse,
    query_source,
)
from insights.trends import UnsupportedQuery

logger = logging.getLogger(__name__)

RefreshMode = Literal["blocking", "force_blocking", "async", "force_async", "force_cache"]
REFRESH_MODES: tuple[str, ...] = ("blocking", "force_blocking", "async", "force_async", "force_cache")
# How long a result stays fresh, by interval, when the range ends now (older data changes slowly).
FRESHNESS = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(minutes=5),
    "day": timedelta(minutes=15),
    "week": timedelta(minutes=30),
    "month": timedelta(hours=1),
}
CACHE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class QueryOutcome:
    results: list[dict[str, Any]] | None
    last_refresh: str | None
    is_cached: bool
    timezone: str

    def as_json(self) -> dict[str, Any]:
        return {
            "results": self.results,
            "is_cached": self.is_cached,
            "last_refresh": self.last_refresh,
            "timezone": self.timezone,
        }


def query_results_fingerprint(node: AnyQueryNode) -> str:
    """Names a query's cached results: equal for queries that compute the same thing."""
    return query_fingerprint(query_source_json(node.model_dump(mode="json", exclude_none=True)))


def query_cache_key(*, project_id: int, node: AnyQueryNode) -> str:
    return _results_key(project_id, query_results_fingerprint(node))


def _results_key(project_id: int, fingerprint: str) -> str:
    return f"query-results:{project_id}:{fingerprint}"


def query_refreshed_key(*, project_id: int, fingerprint: str) -> str:
    """When the cached results of a query were computed: small, so a page of insights reads them all
    in one round trip without their results."""
    return f"query-refreshed:{project_id}:{fingerprint}"


def insight_results_fingerprint(query: dict[str, Any] | None) -> str | None:
    """The fingerprint an insight stores for its query, or None for a query this service cannot run."""
    if query is None:
        return None
    try:
        node = query_parse(query)
        query_check_runnable(node)
    except (InvalidQuery, UnsupportedQuery):
        return None
    return query_results_fingerprint(node)


def query_last_refreshed(*, project_id: int, fingerprints: Iterable[str]) -> dict[str, str]:
    """fingerprint → when its cached results were computed, for those that are cached."""
    keys = {query_refreshed_key(project_id=project_id, fingerprint=fp): fp for fp in set(fingerprints)}
    return {keys[key]: refreshed for key, refreshed in cache_get_many(list(keys)).items()}


def query_source_json(normalised: dict[str, Any]) -> dict[str, Any]:
    """An InsightVizNode and its bare source compute the same thing, so they share a cache entry."""
    return normalised.get("source", normalised) if normalised.get("kind") == "InsightVizNode" else normalised


def query_check_runnable(node: AnyQueryNode) -> TrendsQuery:
    source = query_source(node)
    if not isinstance(source, TrendsQuery):
        raise UnsupportedQuery(
            "unsupported_query_kind", f"{source.kind} queries cannot be run yet; TrendsQuery can."
        )
    return source


def query_run(
    *, project: Project, node: AnyQueryNode, refresh: RefreshMode, execution_key: str | None = None
) -> QueryOutcome:
    """Answer a query node from the cache or by computing it, per the refresh mode."""
    source = query_check_runnable(node)
    fingerprint = query_results_fingerprint(node)
    key = _results_key(project.id, fingerprint)
    if refresh != "force_blocking":
        cached = cache_get(key)
        if cached is not None and (refresh == "force_cache" or _fresh(cached, source)):
            return QueryOutcome(cached["results"], cached["last_refresh"], True, project.timezone)
        if refresh == "force_cache":
            return QueryOutcome(None, None, False, project.timezone)
    started = time.monotonic()
    computed_at = timezone.now()
    results = query_compute(project=project, source=source, now=computed_at, execution_key=execution_key)
    QUERY_RUNTIME.labels(kind=source.kind).observe(time.monotonic() - started)
    cached = {"results": results, "last_refresh": computed_at.isoformat(), "date_to": _date_to(source)}
    refreshed_key = query_refreshed_key(project_id=project.id, fingerprint=fingerprint)
    cache_set_many({key: cached, refreshed_key: cached["last_refresh"]}, timeout=CACHE_SECONDS)
    return QueryOutcome(results, computed_at.isoformat(), False, project.timezone)


def query_fresh_cached(*, project: Project, node: AnyQueryNode) -> QueryOutcome | None:
    """The cached result if it is still fresh, without computing anything."""
    source = query_check_runnable(node)
    cached = cache_get(query_cache_key(project_id=project.id, node=node))
    if cached is None or not _fresh(cached, source):
        return None
    return QueryOutcome(cached["results"], cached["last_refresh"], True, project.timezone)


def query_compute(
    *, project: Project, source: TrendsQuery, now: datetime, execution_key: str | None = None
) -> list[dict[str, Any]]:
    """Run the query on the events store under the query timeout; `query_stop` of the execution key
    stops it from anywhere."""
    return events_store.trends_compute(project=project, source=source, now=now, run_id=execution_key)


def query_stop(execution_key: str) -> bool:
    """Stop the statement running for this execution, if any."""
    return events_store.query_stop(execution_key)


def _fresh(cached: dict[str, Any], source: TrendsQuery) -> bool:
    computed = datetime.fromisoformat(cached["last_refresh"])
    date_to = cached.get("date_to")
    if date_to and date_to[:10] < cached["last_refresh"][:10]:  # a closed range changes only by late loads
        return True
    return timezone.now() - computed < FRESHNESS.get(source.interval, FRESHNESS["day"])


def _date_to(source: TrendsQuery) -> str | None:
    date_to = source.dateRange.date_to if source.dateRange else None
    return date_to if date_to and not date_to.startswith("-") else None


# --- Asynchronous runs (refresh=async): status kept in Redis, work done by a Celery task ------------

STATUS_TTL_SECONDS = 3600
INTERRUPTED = "The query was interrupted before it finished; run it again."


def query_status_key(project_id: int, query_id: str) -> str:
    return f"query-status:{project_id}:{query_id}"


def query_status_get(*, project_id: int, query_id: str) -> dict[str, Any] | None:
    """The status of an asynchronous run. One whose dispatching process stopped before it finished
    (its lease lapsed) is reported failed, so a client never polls an orphan for an hour."""
    pipe = redis_client().pipeline()
    pipe.get(query_status_key(project_id, query_id))
    pipe.exists(query_status_lease_key(project_id, query_id))
    raw, alive = pipe.execute()
    if raw is None:
        return None
    status = json.loads(raw)
    if not status["complete"] and not alive:
        status.update(complete=True, error=True, error_message=INTERRUPTED)
    return status


def query_status_lease_key(project_id: int, query_id: str) -> str:
    """Renewed by the process dispatching the run for as long as it runs."""
    return f"{query_status_key(project_id, query_id)}:alive"


def query_status_set(*, project_id: int, query_id: str, **fields: Any) -> dict[str, Any]:
    status = {
        "id": query_id,
        "complete": False,
        "error": False,
        "error_message": None,
        "results": None,
        **fields,
    }
    redis_client().set(
        query_status_key(project_id, query_id), json.dumps(status, default=str), ex=STATUS_TTL_SECONDS
    )
    return status
