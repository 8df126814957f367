"""Running query nodes: the results cache, refresh modes, the statement timeout, cancellation.

Results are cached in Redis per (project, normalised query). `blocking` answers from the cache while
it is fresh and computes otherwise; `force_blocking` always computes; `force_cache` never computes
(`query_cached`). A computation (`query_compute`) runs on the events store under its own timeout; who
runs it, and when, is insights/results.py's business.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypedDict, cast

from django.utils import timezone

from accounts.models import Project
from infra.json_types import JSONObject
from infra.metrics import QUERY_EXECUTIONS, QUERY_RUNTIME
from infra.redis import cache_get, cache_get_many, cache_set_many
from insights import events_store
from insights.events_store import (
    QueryCancelled as QueryCancelled,  # re-exported: the result path reads it here
)
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
    results: list[JSONObject] | None
    last_refresh: str | None
    is_cached: bool
    timezone: str

    def as_json(self) -> JSONObject:
        return {
            "results": self.results,
            "is_cached": self.is_cached,
            "last_refresh": self.last_refresh,
            "timezone": self.timezone,
        }


class CachedResults(TypedDict):
    """A query's results as cached (query_cache_key)."""

    results: list[JSONObject]
    last_refresh: str  # isoformat
    date_to: str | None  # the query's fixed end, if it has one


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


def insight_results_fingerprint(query: object) -> str | None:
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
    return {keys[key]: str(refreshed) for key, refreshed in cache_get_many(list(keys)).items()}


def query_source_json(normalised: JSONObject) -> JSONObject:
    """An InsightVizNode and its bare source compute the same thing, so they share a cache entry."""
    source = normalised.get("source") if normalised.get("kind") == "InsightVizNode" else None
    return source if isinstance(source, dict) else normalised


def query_check_runnable(node: AnyQueryNode) -> TrendsQuery:
    source = query_source(node)
    if not isinstance(source, TrendsQuery):
        raise UnsupportedQuery(
            "unsupported_query_kind", f"{source.kind} queries cannot be run yet; TrendsQuery can."
        )
    return source


def query_cached(*, project: Project, node: AnyQueryNode, refresh: RefreshMode) -> QueryOutcome | None:
    """The result the refresh mode lets a request answer without computing, or None (compute it):
    a fresh cached result for `blocking` and `async`; whatever is cached for `force_cache`, which never
    computes (no results: an empty outcome); nothing for `force_blocking` and `force_async`."""
    if refresh in ("force_blocking", "force_async"):
        return None
    source = query_check_runnable(node)
    cached = cast(CachedResults | None, cache_get(query_cache_key(project_id=project.id, node=node)))
    if cached is not None and (refresh == "force_cache" or _fresh(cached, source)):
        return QueryOutcome(cached["results"], cached["last_refresh"], True, project.timezone)
    if refresh == "force_cache":
        return QueryOutcome(None, None, False, project.timezone)
    return None


def query_compute(*, project: Project, node: AnyQueryNode, run_id: str | None = None) -> QueryOutcome:
    """Run the query on the events store (insights/events_store/) under QUERY_TIMEOUT_MS and cache its
    results: the one way a query runs (on a query worker, or in the web process when Redis is away).
    With a `run_id`, `events_store.query_stop(run_id)` stops it from any process. Raises
    QueryTimedOut, QueryCancelled, events_store.EventsStoreUnavailable."""
    source = query_check_runnable(node)
    fingerprint = query_results_fingerprint(node)
    started = time.monotonic()
    computed_at = timezone.now()
    try:
        results = events_store.trends_compute(project=project, source=source, now=computed_at, run_id=run_id)
    except BaseException:
        QUERY_EXECUTIONS.labels(outcome="failed").inc()
        raise
    QUERY_EXECUTIONS.labels(outcome="computed").inc()
    QUERY_RUNTIME.labels(kind=source.kind).observe(time.monotonic() - started)
    last_refresh = computed_at.isoformat()
    cache_set_many(
        {
            _results_key(project.id, fingerprint): CachedResults(
                results=results, last_refresh=last_refresh, date_to=_date_to(source),
            ),
            query_refreshed_key(project_id=project.id, fingerprint=fingerprint): last_refresh,
        },
        timeout=CACHE_SECONDS,
    )  # fmt: skip
    return QueryOutcome(results, last_refresh, False, project.timezone)


def _fresh(cached: CachedResults, source: TrendsQuery) -> bool:
    computed = datetime.fromisoformat(cached["last_refresh"])
    date_to = cached.get("date_to")
    if date_to and date_to[:10] < cached["last_refresh"][:10]:  # a closed range changes only by late loads
        return True
    return timezone.now() - computed < FRESHNESS.get(source.interval, FRESHNESS["day"])


def _date_to(source: TrendsQuery) -> str | None:
    date_to = source.dateRange.date_to if source.dateRange else None
    return date_to if date_to and not date_to.startswith("-") else None
