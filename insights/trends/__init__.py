"""The Trends engine: a TrendsQuery becomes one SQL statement over the events (docs/queries.md, docs/queries.md#results).

Python owns time (the window, the buckets, the project's time zone: `window.py`); the events store
owns aggregation, in PostgreSQL's dialect or ClickHouse's (`sql.py`: one compiler, two dialects).
Each series is grouped by (bucket, breakdown value); a breakdown keeps the top `breakdown_limit`
values (default 25) by event count over the window, puts the rest in one "other" value and events
without the property in a "null" value (PostHog's markers). Empty intervals are filled with zeros
here (`shape.py`), so every series has one number per bucket. Where the events live decides which
store runs the statement (insights/events_store/); `trends_run` runs it on PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from django.db import connection

from infra.json_types import JSONObject
from insights.models import Event
from insights.query_nodes import TrendsQuery
from insights.trends.common import (
    BREAKDOWN_NULL,
    BREAKDOWN_OTHER,
    DEFAULT_BREAKDOWN_LIMIT,
    UnsupportedQuery,
    breakdown_key,
)
from insights.trends.shape import trends_shape
from insights.trends.sql import (
    USER_KEY,
    ClickHouseDialect,
    Param,
    PostgresDialect,
    bucket_start,
    json_text,
    trends_compile,
)
from insights.trends.window import TimeWindow, trends_window

__all__ = [
    "BREAKDOWN_NULL",
    "BREAKDOWN_OTHER",
    "DEFAULT_BREAKDOWN_LIMIT",
    "USER_KEY",
    "ClickHouseDialect",
    "Param",
    "PostgresDialect",
    "TimeWindow",
    "UnsupportedQuery",
    "breakdown_key",
    "bucket_start",
    "json_text",
    "trends_compile",
    "trends_run",
    "trends_shape",
    "trends_sql",
    "trends_window",
]


def trends_sql(query: TrendsQuery, *, project_id: int, window: TimeWindow) -> tuple[str, dict[str, Param]]:
    """The PostgreSQL statement of `query` and its parameters."""
    dialect = PostgresDialect(Event._meta.db_table)
    sql = trends_compile(query, project_id=project_id, window=window, dialect=dialect)
    return sql, dialect.values


def trends_run(query: TrendsQuery, *, project_id: int, tz: ZoneInfo, now: datetime) -> list[JSONObject]:
    """Execute a TrendsQuery on PostgreSQL's current connection; results in docs/queries.md#results's shape."""
    first_event = None
    if query.dateRange and query.dateRange.date_from == "all":
        first_event = (
            Event.objects.filter(project_id=project_id)
            .order_by("timestamp")
            .values_list("timestamp", flat=True)
            .first()
        )
    window = trends_window(query, tz=tz, now=now, first_event=first_event)
    sql, params = trends_sql(query, project_id=project_id, window=window)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return trends_shape(query, window=window, rows=rows, broken_down=breakdown_key(query) is not None)
