"""The events store: where events are kept, and where Trends queries over them run (docs/events-store.md).

`EVENTS_BACKEND` chooses it: `postgres` (the `insights_event` table, the default) or `clickhouse`
(a ClickHouse server at `CLICKHOUSE_URL`, or the embedded chDB database `make run` serves). This is
the narrow interface the rest of the service uses, the same for both:

- `trends_compute(project=, source=, now=, run_id=)`: a TrendsQuery's results, under QUERY_TIMEOUT_MS;
  raises QueryTimedOut, QueryCancelled (a `query_stop` of its run id), UnsupportedQuery, or
  EventsStoreUnavailable (503) when the store does not answer;
- `query_stop(run_id)`: stop that run's statement wherever it runs; True if one was running;
- `events_write(project_id=, rows=)`: append events, all or nothing; `timestamp_range()`: the
  instants the store can hold (None: any).

A backend module is imported when first chosen, so a process on PostgreSQL never loads the
ClickHouse client.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast

from django.conf import settings

from infra.json_types import JSONObject
from insights.events_store.errors import EventsRefused, EventsStoreUnavailable, QueryCancelled, QueryTimedOut

if TYPE_CHECKING:
    from accounts.models import Project
    from insights.event_streams import EventRow
    from insights.query_nodes import TrendsQuery

__all__ = [
    "EventsRefused",
    "EventsStoreUnavailable",
    "QueryCancelled",
    "QueryTimedOut",
    "events_write",
    "query_stop",
    "timestamp_range",
    "trends_compute",
]
BACKENDS = ("postgres", "clickhouse")


class Backend(Protocol):
    """What each backend module (`postgres.py`, `clickhouse.py`) provides."""

    def trends_compute(
        self, *, project: Project, source: TrendsQuery, now: datetime, run_id: str | None
    ) -> list[JSONObject]: ...

    def query_stop(self, run_id: str) -> bool: ...

    def events_write(self, *, project_id: int, rows: Iterable[EventRow]) -> int: ...

    def timestamp_range(self) -> tuple[datetime, datetime] | None: ...


def backend(name: str | None = None) -> Backend:
    """The backend `name` chooses (default: EVENTS_BACKEND)."""
    chosen = name or settings.EVENTS_BACKEND
    if chosen not in BACKENDS:
        raise ValueError(f"Unknown events backend {chosen!r}")
    return cast(Backend, importlib.import_module(f"insights.events_store.{chosen}"))


def trends_compute(
    *, project: Project, source: TrendsQuery, now: datetime, run_id: str | None = None
) -> list[JSONObject]:
    return backend().trends_compute(project=project, source=source, now=now, run_id=run_id)


def query_stop(run_id: str) -> bool:
    return backend().query_stop(run_id)


def events_write(*, project_id: int, rows: Iterable[EventRow]) -> int:
    return backend().events_write(project_id=project_id, rows=rows)


def timestamp_range() -> tuple[datetime, datetime] | None:
    return backend().timestamp_range()
