"""Events in PostgreSQL (`insights_event`): the default events store.

A computation runs under its own statement timeout and records its PostgreSQL backend pid under its
run id in Redis, so `query_stop` can cancel exactly that statement from any process.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable
from datetime import datetime
from zoneinfo import ZoneInfo

import redis
from django.conf import settings
from django.db import OperationalError, connection, transaction

from accounts.models import Project
from infra.json_types import JSONObject
from infra.redis import redis_client
from insights.event_streams import EventRow, events_copy
from insights.events_store.errors import QueryCancelled, QueryTimedOut
from insights.query_nodes import TrendsQuery
from insights.trends import trends_run

logger = logging.getLogger(__name__)

QUERY_CANCELED = "57014"  # SQLSTATE of both a statement timeout and pg_cancel_backend


def trends_compute(
    *, project: Project, source: TrendsQuery, now: datetime, run_id: str | None
) -> list[JSONObject]:
    """Run the SQL under the query timeout, with at most QUERY_PARALLEL_WORKERS parallel workers
    (when set). With a run id, the backend pid is published under it while the statement runs, so
    `query_stop` can cancel it from anywhere."""
    parallel = settings.QUERY_PARALLEL_WORKERS
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_backend_pid(), set_config('statement_timeout', %s, true), "
                "set_config('max_parallel_workers_per_gather', "
                "coalesce(%s, current_setting('max_parallel_workers_per_gather')), true)",
                [str(settings.QUERY_TIMEOUT_MS), None if parallel is None else str(parallel)],
            )
            backend_pid = cursor.fetchone()[0]
        if run_id:
            _publish_backend(run_id, backend_pid)
        try:
            return trends_run(source, project_id=project.id, tz=ZoneInfo(project.timezone), now=now)
        except OperationalError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != QUERY_CANCELED:
                raise
            if "statement timeout" in str(exc):
                raise QueryTimedOut from exc
            raise QueryCancelled from exc
        finally:
            if run_id:
                _forget_backend(run_id)


def query_stop(run_id: str) -> bool:
    """Cancel the statement running for this run, if any (pg_cancel_backend)."""
    try:
        raw = redis_client().get(f"{run_id}:backend")
    except redis.exceptions.RedisError:
        return False
    if raw is None:
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_cancel_backend(%s)", [int(raw)])
        return bool(cursor.fetchone()[0])


def events_write(*, project_id: int, rows: Iterable[EventRow]) -> int:
    """One COPY in one transaction (insights/event_streams.py)."""
    return events_copy(project_id=project_id, rows=rows)


def timestamp_range() -> tuple[datetime, datetime] | None:
    return None  # timestamptz holds every instant Python's datetime does


def _publish_backend(run_id: str, pid: int) -> None:
    try:
        redis_client().set(f"{run_id}:backend", pid, ex=max(60, settings.QUERY_TIMEOUT_MS // 1000 + 60))
    except redis.exceptions.RedisError:
        logger.warning("Could not record backend of %s; it cannot be cancelled", run_id)


def _forget_backend(run_id: str) -> None:
    with contextlib.suppress(redis.exceptions.RedisError):
        redis_client().delete(f"{run_id}:backend")
