"""The Trends engine: a TrendsQuery becomes one SQL statement over the events table (docs/queries.md, docs/queries.md#results).

Python owns time (the window, the buckets, the project's time zone); PostgreSQL owns aggregation.
Each series is a CTE grouped by (bucket, breakdown value); a breakdown keeps the top
`breakdown_limit` values (default 25) by event count over the window, puts the rest in one
"other" value and events without the property in a "null" value (PostHog's markers). Empty
intervals are filled with zeros here, so every series has one number per bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connection

from infra.errors import DomainError
from insights.dates import date_resolve
from insights.models import Event
from insights.query_nodes import ActionsNode, EventsNode, PropertyFilter, PropertyGroup, TrendsQuery

BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
BREAKDOWN_NULL = "$$_posthog_breakdown_null_$$"
DEFAULT_BREAKDOWN_LIMIT = 25
DEFAULT_DATE_FROM = "-7d"
MAX_BUCKETS = 10_000
_EVENT = Event._meta.db_table

# What each supported `math` aggregates; `{value}` is the numeric property expression.
AGGREGATES = {
    "total": "count(*)",
    "dau": "count(DISTINCT e.distinct_id)",
    "unique_session": "count(DISTINCT e.properties->>'$session_id')",
    "sum": "coalesce(sum({value}), 0)",
    "avg": "avg({value})",
    "min": "min({value})",
    "max": "max({value})",
    "median": "percentile_cont(0.5) WITHIN GROUP (ORDER BY {value})",
    "p75": "percentile_cont(0.75) WITHIN GROUP (ORDER BY {value})",
    "p90": "percentile_cont(0.9) WITHIN GROUP (ORDER BY {value})",
    "p95": "percentile_cont(0.95) WITHIN GROUP (ORDER BY {value})",
    "p99": "percentile_cont(0.99) WITHIN GROUP (ORDER BY {value})",
}
NUMERIC_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# Math whose per-value results add up to the folded "other" value.
ADDITIVE_MATH = frozenset({"total", "sum"})


class UnsupportedQuery(DomainError, ValueError):
    """A valid query this engine cannot run (yet); `code` says what is unsupported."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail, code=code)


# --- Time ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeWindow:
    start: datetime  # aware, inclusive
    end: datetime  # aware, inclusive
    tz: ZoneInfo
    interval: str
    buckets: tuple[datetime, ...]  # naive local starts of each interval


def trends_window(
    query: TrendsQuery, *, tz: ZoneInfo, now: datetime, first_event: datetime | None
) -> TimeWindow:
    """Resolve the query's date range in the project's time zone. `first_event` is needed only for
    `date_from: "all"` (the window then starts at the project's first event)."""
    date_range = query.dateRange
    date_from = (date_range.date_from if date_range else None) or DEFAULT_DATE_FROM
    date_to = date_range.date_to if date_range else None
    if date_from == "all":
        start = first_event or now
    else:
        start = _resolve(date_from, tz=tz, now=now, end_of_day=False)
    end = _resolve(date_to, tz=tz, now=now, end_of_day=True) if date_to else now
    if end < start:
        raise UnsupportedQuery("invalid_date_range", "dateRange.date_to is before dateRange.date_from.")
    buckets = tuple(_buckets(start.astimezone(tz), end.astimezone(tz), query.interval))
    return TimeWindow(start=start, end=end, tz=tz, interval=query.interval, buckets=buckets)


def _resolve(value: str, *, tz: ZoneInfo, now: datetime, end_of_day: bool) -> datetime:
    try:
        return date_resolve(value, now=now, tz=tz, end_of_day=end_of_day)  # the one grammar of every route
    except ValueError as error:
        raise UnsupportedQuery("invalid_date_range", str(error)) from None


def _truncate(moment: datetime, interval: str) -> datetime:
    naive = moment.replace(tzinfo=None)
    if interval == "minute":
        return naive.replace(second=0, microsecond=0)
    if interval == "hour":
        return naive.replace(minute=0, second=0, microsecond=0)
    day = naive.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "week":  # weeks start on Monday, as PostgreSQL's date_trunc
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _step(bucket: datetime, interval: str) -> datetime:
    if interval == "month":
        year, month = divmod(bucket.year * 12 + bucket.month, 12)
        return bucket.replace(year=year, month=month + 1)
    return bucket + {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
                     "week": timedelta(weeks=1)}[interval]  # fmt: skip


def _buckets(start_local: datetime, end_local: datetime, interval: str) -> list[datetime]:
    buckets, bucket, last = [], _truncate(start_local, interval), _truncate(end_local, interval)
    while bucket <= last:
        buckets.append(bucket)
        if len(buckets) > MAX_BUCKETS:
            raise UnsupportedQuery(
                "too_many_intervals",
                f"The date range has more than {MAX_BUCKETS} {interval}s; widen the interval.",
            )
        bucket = _step(bucket, interval)
    return buckets


# --- SQL -------------------------------------------------------------------------------------------


class _Params:
    """Collects named parameters so every fragment can add its own without clashes."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def add(self, value: Any) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"


def trends_sql(query: TrendsQuery, *, project_id: int, window: TimeWindow) -> tuple[str, dict[str, Any]]:
    """One statement returning rows (series index, local bucket, breakdown value, value)."""
    params = _Params()
    breakdown_key = _breakdown_key(query)
    breakdown_limit = (
        query.breakdownFilter.breakdown_limit if query.breakdownFilter else None
    ) or DEFAULT_BREAKDOWN_LIMIT
    tz, interval = params.add(window.tz.key), params.add(window.interval)
    common = (
        f"e.project_id = {params.add(project_id)} AND e.timestamp >= {params.add(window.start)} "
        f"AND e.timestamp <= {params.add(window.end)}"
    )
    shared_filter = _properties_sql(query.properties, params)
    ctes, selects = [], []
    for index, series in enumerate(query.series):
        if isinstance(series, ActionsNode):
            raise UnsupportedQuery(
                "unsupported_series", "Actions are not supported; use an EventsNode series."
            )
        where = " AND ".join(
            part
            for part in (
                common,
                f"e.event = {params.add(series.event)}" if series.event is not None else "",
                shared_filter,
                _properties_sql(series.properties, params),
            )
            if part
        )
        if breakdown_key is None:
            ctes.append(
                f"s{index} AS (SELECT date_trunc({interval}, e.timestamp AT TIME ZONE {tz}) AS bucket, "
                f"NULL::text AS breakdown, {_aggregate(series, params)} AS value "
                f"FROM {_EVENT} e WHERE {where} GROUP BY 1, 2)"
            )
        else:
            ctes.extend(
                _breakdown_ctes(index, series, where, breakdown_key, breakdown_limit, interval, tz, params)
            )
        selects.append(f"SELECT {index} AS series, bucket, breakdown, value FROM s{index}")
    sql = f"WITH {', '.join(ctes)} {' UNION ALL '.join(selects)}"
    return sql, params.values


def _breakdown_ctes(
    index: int,
    series: EventsNode,
    where: str,
    key_value: str,
    limit: int,
    interval: str,
    tz: str,
    params: _Params,
) -> list[str]:
    """CTEs ranking breakdown values by event count and folding the rest into "other".

    Additive math (`total`, `sum`) needs one scan: aggregate per (bucket, value) with the event
    count beside it, rank values on those few rows, then fold. Other math (distinct users, averages,
    percentiles) cannot be re-aggregated after the fact, so it ranks in a first scan and folds each
    event as it aggregates in a second.
    """
    key = params.add(key_value)
    bucket = f"date_trunc({interval}, e.timestamp AT TIME ZONE {tz})"
    null, other, top_n = params.add(BREAKDOWN_NULL), params.add(BREAKDOWN_OTHER), params.add(limit)
    if (series.math or "total") in ADDITIVE_MATH:
        return [
            f"agg{index} AS (SELECT {bucket} AS bucket, e.properties->>{key} AS value, count(*) AS events, "
            f"{_aggregate(series, params)} AS measure FROM {_EVENT} e WHERE {where} GROUP BY 1, 2)",
            f"top{index} AS (SELECT value FROM agg{index} WHERE value IS NOT NULL GROUP BY value "
            f"ORDER BY sum(events) DESC, value LIMIT {top_n})",
            f"s{index} AS (SELECT bucket, CASE WHEN value IS NULL THEN {null} "
            f"WHEN value IN (SELECT value FROM top{index}) THEN value ELSE {other} END AS breakdown, "
            f"sum(measure) AS value FROM agg{index} GROUP BY 1, 2)",
        ]
    return [
        f"top{index} AS (SELECT e.properties->>{key} AS value FROM {_EVENT} e WHERE {where} "
        f"AND e.properties->>{key} IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT {top_n})",
        f"s{index} AS (SELECT {bucket} AS bucket, CASE WHEN e.properties->>{key} IS NULL THEN {null} "
        f"WHEN e.properties->>{key} IN (SELECT value FROM top{index}) THEN e.properties->>{key} "
        f"ELSE {other} END AS breakdown, {_aggregate(series, params)} AS value "
        f"FROM {_EVENT} e WHERE {where} GROUP BY 1, 2)",
    ]


def _breakdown_key(query: TrendsQuery) -> str | None:
    breakdown = query.breakdownFilter
    if breakdown is None:
        return None
    key: str | int | list[str | int] | None
    if breakdown.breakdowns:
        if len(breakdown.breakdowns) > 1:
            raise UnsupportedQuery("unsupported_breakdown", "Only one breakdown property is supported.")
        key, kind = breakdown.breakdowns[0].property, breakdown.breakdowns[0].type
    else:
        key, kind = breakdown.breakdown, breakdown.breakdown_type
    if key is None or key == "":
        return None
    if isinstance(key, list):
        if len(key) != 1:
            raise UnsupportedQuery("unsupported_breakdown", "Only one breakdown property is supported.")
        key = key[0]
    if kind not in (None, "event"):
        raise UnsupportedQuery("unsupported_breakdown", f"Breakdowns by {kind} properties are not supported.")
    return str(key)


def _aggregate(series: EventsNode, params: _Params) -> str:
    math = series.math or "total"
    if math not in AGGREGATES:
        raise UnsupportedQuery("unsupported_math", f"math '{math}' is not supported by this engine.")
    value = ""
    if "{value}" in AGGREGATES[math]:
        value = _numeric(params.add(series.math_property))
    return AGGREGATES[math].format(value=value)


def _numeric(key: str) -> str:
    # Non-numbers are ignored rather than failing the whole query.
    return f"(CASE WHEN jsonb_typeof(e.properties->{key}) = 'number' THEN (e.properties->{key})::numeric END)"


def _properties_sql(properties: Any, params: _Params) -> str:
    if isinstance(properties, PropertyGroup):
        parts = [
            _properties_sql(value if isinstance(value, PropertyGroup) else [value], params)
            for value in properties.values
        ]
        parts = [part for part in parts if part]
        joiner = " OR " if properties.type == "OR" else " AND "
        return f"({joiner.join(parts)})" if parts else ""
    return " AND ".join(_filter_sql(item, params) for item in properties or [])


def _filter_sql(item: PropertyFilter, params: _Params) -> str:
    if item.type != "event":
        raise UnsupportedQuery(
            "unsupported_property", f"Filters on {item.type} properties are not supported."
        )
    key = params.add(item.key)
    text = f"e.properties->>{key}"
    values = item.value if isinstance(item.value, list) else [item.value]
    as_text = [_text(value) for value in values if value is not None]
    operator = item.operator
    if operator in ("exact", "in"):
        return f"{text} = ANY({params.add(as_text)}::text[])"
    if operator in ("is_not", "not_in"):
        return f"({text} IS NULL OR {text} <> ALL({params.add(as_text)}::text[]))"
    if operator in ("icontains", "not_icontains"):
        pattern = params.add(f"%{_like_escape(as_text[0] if as_text else '')}%")
        return (
            f"{text} ILIKE {pattern}"
            if operator == "icontains"
            else f"({text} IS NULL OR {text} NOT ILIKE {pattern})"
        )
    if operator in ("regex", "not_regex"):
        pattern = params.add(as_text[0] if as_text else "")
        return f"{text} ~ {pattern}" if operator == "regex" else f"({text} IS NULL OR {text} !~ {pattern})"
    if operator in NUMERIC_OPERATORS:
        try:
            number = float(values[0])  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise UnsupportedQuery(
                "invalid_property_filter", f"'{operator}' on {item.key!r} needs a number."
            ) from None
        return f"{_numeric(key)} {NUMERIC_OPERATORS[operator]} {params.add(number)}"
    if operator == "is_set":
        return f"jsonb_exists(e.properties, {key})"
    if operator == "is_not_set":
        return f"NOT jsonb_exists(e.properties, {key})"
    raise UnsupportedQuery("unsupported_property", f"The '{operator}' operator is not supported.")


def _text(value: Any) -> str:
    """A filter value as `properties->>key` renders it (JSON booleans are `true`/`false`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --- Running and shaping ---------------------------------------------------------------------------


def trends_run(query: TrendsQuery, *, project_id: int, tz: ZoneInfo, now: datetime) -> list[dict[str, Any]]:
    """Execute a TrendsQuery on the current connection and return results in docs/queries.md#results's shape."""
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
    return trends_shape(query, window=window, rows=rows, broken_down=_breakdown_key(query) is not None)


def trends_shape(
    query: TrendsQuery,
    *,
    window: TimeWindow,
    rows: list[tuple[int, datetime, str | None, Any]],
    broken_down: bool,
) -> list[dict[str, Any]]:
    position = {bucket: index for index, bucket in enumerate(window.buckets)}
    cells: dict[tuple[int, str | None], list[float]] = {}
    for series_index, bucket, breakdown, value in rows:
        data = cells.setdefault((series_index, breakdown), [0] * len(window.buckets))
        if bucket in position:
            data[position[bucket]] = _number(value)
    if not broken_down:
        for index in range(len(query.series)):
            cells.setdefault((index, None), [0] * len(window.buckets))
    days = [_day_label(bucket, window.interval) for bucket in window.buckets]
    labels = [_display_label(bucket, window.interval) for bucket in window.buckets]
    results = []
    for (index, breakdown), data in cells.items():
        series = query.series[index]
        assert isinstance(series, EventsNode)  # trends_sql refuses any other series
        name = series.custom_name or series.event or "All events"
        result: dict[str, Any] = {
            "label": name if not broken_down else f"{name} - {_breakdown_label(breakdown)}",
            "count": _number(sum(data)),
            "data": data,
            "days": days,
            "labels": labels,
            "action": {"order": index, "id": series.event, "name": series.event or "All events",
                       "custom_name": series.custom_name, "math": series.math or "total"},
        }  # fmt: skip
        if broken_down:
            result["breakdown_value"] = breakdown
        results.append(result)
    # Series in query order; within a series, the biggest breakdown values first.
    return sorted(
        results,
        key=lambda result: (result["action"]["order"], -result["count"], str(result.get("breakdown_value"))),
    )


def _number(value: Any) -> float | int:
    if value is None:
        return 0
    number = float(value)
    return int(number) if number.is_integer() else round(number, 6)


def _breakdown_label(value: str | None) -> str:
    return {BREAKDOWN_OTHER: "Other", BREAKDOWN_NULL: "None"}.get(value or BREAKDOWN_NULL, value or "None")


def _day_label(bucket: datetime, interval: str) -> str:
    return bucket.strftime("%Y-%m-%d %H:%M:%S" if interval in ("hour", "minute") else "%Y-%m-%d")


def _display_label(bucket: datetime, interval: str) -> str:
    label = f"{bucket.day}-{bucket:%b-%Y}"
    return f"{label} {bucket:%H:%M}" if interval in ("hour", "minute") else label
