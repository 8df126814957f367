"""A TrendsQuery as one SQL statement, in PostgreSQL's dialect or ClickHouse's (docs/queries.md).

One compiler decides what a query means (which events, which filters, which math, which buckets, how a
breakdown keeps its top values); a dialect says how each piece is written. Every value a query
carries is a bound parameter in both: `%(p0)s` for psycopg, `{p0:Type}` for ClickHouse.

The statement returns rows (series index, bucket, breakdown value, value). A bucket is what
`TimeWindow.buckets` names it by, or what `bucket_start` turns into that: PostgreSQL returns the
local naive start itself; ClickHouse a local date, or the local naive start in seconds since the epoch
for hours and minutes (so that the two instants of a repeated autumn hour are one bucket, as in
PostgreSQL).

A breakdown keeps the top `breakdown_limit` values by event count over the window, ties broken by the
value's bytes (both stores order alike: PostgreSQL under the "C" collation), folds the rest into
"other" and events without the property into "null". Additive math (`total`, `sum`) needs one scan:
aggregate per (bucket, value) with the event count beside it, rank the values on those few rows, fold.
Other math (distinct users, averages, percentiles) cannot be re-aggregated after the fact, so it ranks
in a first scan and folds each event as it aggregates in a second.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from insights.query_nodes import ActionsNode, EventsNode, PropertyFilter, PropertyGroup, TrendsQuery
from insights.query_nodes.common import Properties, PropertyValue
from insights.trends.common import (
    BREAKDOWN_NULL,
    BREAKDOWN_OTHER,
    UnsupportedQuery,
    breakdown_key,
    breakdown_limit,
)
from insights.trends.window import TimeWindow

NUMERIC_OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# Math whose per-value results add up to the folded "other" value.
ADDITIVE_MATH = frozenset({"total", "sum"})
PERCENTILES = {"median": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99}
PROPERTY_MATH = frozenset({"sum", "avg", "min", "max", *PERCENTILES})
SUPPORTED_MATH = frozenset({"total", "dau", "unique_session", *PROPERTY_MATH})
_EPOCH = datetime(1970, 1, 1)
# The ClickHouse column standing for the event's user, a 128-bit SipHash of `distinct_id`
# (insights/events_store/schema.py, migration 3): `dau` counts distinct values of it, since uniqExact over
# fixed 16-byte keys is two to three times faster than over the id strings. Exact in practice: two of a
# project's ids collide with probability under 1e-26 at ten million users.
USER_KEY = "user_key"
# A bound parameter's value: psycopg and clickhouse-connect each convert it to their own.
Param = str | int | float | datetime | list[str] | None
INSTANT = "DateTime64(6, 'UTC')"  # the ClickHouse type of the window's ends, as of event timestamps


class Dialect:
    """How a store writes each piece of a Trends statement; collects the bound parameters."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.values: dict[str, Param] = {}

    def param(self, value: Param, kind: str) -> str:
        """A placeholder for `value`; `kind` is its ClickHouse type (PostgreSQL infers its own)."""
        raise NotImplementedError

    def text(self, key: str) -> str:
        """The property `key` (a placeholder) as text: NULL when absent or JSON null."""
        raise NotImplementedError

    def numeric(self, key: str) -> str:
        """The property as a number; NULL when it is not a JSON number."""
        raise NotImplementedError

    def has(self, key: str) -> str:
        raise NotImplementedError

    def bucket(self, window: TimeWindow) -> str:
        raise NotImplementedError

    def aggregate(self, math: str, value: str) -> str:
        raise NotImplementedError

    def any_of(self, expression: str, values: str) -> str:
        raise NotImplementedError

    def ilike(self, expression: str, pattern: str) -> str:
        raise NotImplementedError

    def regex(self, expression: str, pattern: str) -> str:
        raise NotImplementedError

    def series(self, index: int, where: str, aggregate: str, window: TimeWindow) -> str:
        raise NotImplementedError

    def broken_down(
        self, index: int, where: str, aggregate: str, window: TimeWindow, key: str, limit: str, additive: bool
    ) -> str:
        raise NotImplementedError

    def statement(self, parts: list[str]) -> str:
        raise NotImplementedError


class PostgresDialect(Dialect):
    """PostgreSQL: `properties` is jsonb; each series is a CTE."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self._ctes: list[str] = []

    def param(self, value: Param, kind: str) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"%({name})s"

    def text(self, key: str) -> str:
        return f"e.properties->>{key}"

    def numeric(self, key: str) -> str:
        # Non-numbers are ignored rather than failing the whole query.
        return f"(CASE WHEN jsonb_typeof(e.properties->{key}) = 'number' THEN (e.properties->{key})::numeric END)"

    def has(self, key: str) -> str:
        return f"jsonb_exists(e.properties, {key})"

    def bucket(self, window: TimeWindow) -> str:
        # One parameter each, shared by every series.
        self.values.update(tz=window.tz.key, interval=window.interval)
        return "date_trunc(%(interval)s, e.timestamp AT TIME ZONE %(tz)s)"

    def aggregate(self, math: str, value: str) -> str:
        if math == "total":
            return "count(*)"
        if math == "dau":
            return "count(DISTINCT e.distinct_id)"
        if math == "unique_session":
            return "count(DISTINCT e.properties->>'$session_id')"
        if math == "sum":
            return f"coalesce(sum({value}), 0)"
        if math in PERCENTILES:
            return f"percentile_cont({PERCENTILES[math]}) WITHIN GROUP (ORDER BY {value})"
        return f"{math}({value})"

    def any_of(self, expression: str, values: str) -> str:
        return f"{expression} = ANY({values}::text[])"

    def ilike(self, expression: str, pattern: str) -> str:
        return f"{expression} ILIKE {pattern}"

    def regex(self, expression: str, pattern: str) -> str:
        return f"{expression} ~ {pattern}"

    def series(self, index: int, where: str, aggregate: str, window: TimeWindow) -> str:
        self._ctes.append(
            f"s{index} AS (SELECT {self.bucket(window)} AS bucket, NULL::text AS breakdown, {aggregate} AS value "
            f"FROM {self.table} e WHERE {where} GROUP BY 1, 2)"
        )
        return f"SELECT {index} AS series, bucket, breakdown, value FROM s{index}"

    def broken_down(
        self, index: int, where: str, aggregate: str, window: TimeWindow, key: str, limit: str, additive: bool
    ) -> str:
        bucket, value = self.bucket(window), self.text(key)
        null, other = self.param(BREAKDOWN_NULL, "String"), self.param(BREAKDOWN_OTHER, "String")
        if additive:
            self._ctes += [
                f"agg{index} AS (SELECT {bucket} AS bucket, {value} AS value, count(*) AS events, "
                f"{aggregate} AS measure FROM {self.table} e WHERE {where} GROUP BY 1, 2)",
                f"top{index} AS (SELECT value FROM agg{index} WHERE value IS NOT NULL GROUP BY value "
                f'ORDER BY sum(events) DESC, value COLLATE "C" LIMIT {limit})',
                f"s{index} AS (SELECT bucket, CASE WHEN value IS NULL THEN {null} "
                f"WHEN value IN (SELECT value FROM top{index}) THEN value ELSE {other} END AS breakdown, "
                f"sum(measure) AS value FROM agg{index} GROUP BY 1, 2)",
            ]
        else:
            self._ctes += [
                f"top{index} AS (SELECT value FROM (SELECT {value} AS value, count(*) AS events "
                f"FROM {self.table} e WHERE {where} AND {value} IS NOT NULL GROUP BY 1) counted "
                f'ORDER BY events DESC, value COLLATE "C" LIMIT {limit})',
                f"s{index} AS (SELECT {bucket} AS bucket, CASE WHEN {value} IS NULL THEN {null} "
                f"WHEN {value} IN (SELECT value FROM top{index}) THEN {value} "
                f"ELSE {other} END AS breakdown, {aggregate} AS value "
                f"FROM {self.table} e WHERE {where} GROUP BY 1, 2)",
            ]
        return f"SELECT {index} AS series, bucket, breakdown, value FROM s{index}"

    def statement(self, parts: list[str]) -> str:
        return f"WITH {', '.join(self._ctes)} {' UNION ALL '.join(parts)}"


class ClickHouseDialect(Dialect):
    """ClickHouse: `properties` is the event's JSON text; each series is one SELECT of a UNION ALL.
    The text of the properties in `materialized` is read from their own columns (filled from the
    same expression at insert, insights/events_store/schema.py).

    Property text follows PostgreSQL's `->>` so that breakdowns and filters match in both stores:
    strings unescaped, numbers as jsonb prints them (an integral JSON float keeps its `.0`), `true`,
    `false`, and NULL for JSON null or an absent key. (Nested objects and arrays print compactly here
    and with spaces in PostgreSQL.)
    """

    def __init__(self, table: str, materialized: dict[str, str] | None = None) -> None:
        super().__init__(table)
        self.materialized = materialized or {}  # property → the column holding its text

    def param(self, value: Param, kind: str) -> str:
        name = f"p{len(self.values)}"
        if isinstance(value, datetime):  # an exact UTC instant, as the DateTime64 column holds it
            value = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        self.values[name] = value
        return f"{{{name}:{kind}}}"

    def text(self, key: str) -> str:
        # A property kept in a column of its own is read from it, with no JSON to parse.
        name = key[1:].split(":", 1)[0]  # "{p3:String}" names p3
        column = self.materialized.get(str(self.values.get(name)))
        return f"e.{column}" if column else json_text("e.properties", key)

    def numeric(self, key: str) -> str:
        return (
            f"if(JSONType(e.properties, {key}) IN ('Int64', 'UInt64', 'Double'), "
            f"JSONExtractFloat(e.properties, {key}), CAST(NULL AS Nullable(Float64)))"
        )

    def has(self, key: str) -> str:
        return f"JSONHas(e.properties, {key})"

    def bucket(self, window: TimeWindow) -> str:
        tz = self.param(window.tz.key, "String")
        if window.interval in ("minute", "hour"):
            start = f"toStartOf{window.interval.capitalize()}(e.timestamp, {tz})"
            return f"toUnixTimestamp64Second({start}) + timeZoneOffset({start})"
        function = {"day": "toDate32", "week": "toMonday", "month": "toStartOfMonth"}[window.interval]
        return f"{function}(e.timestamp, {tz})"

    def aggregate(self, math: str, value: str) -> str:
        if math == "total":
            return "count()"
        if math == "dau":
            return f"uniqExact(e.{USER_KEY})"
        if math == "unique_session":
            return f"uniqExact({self.text(self.param('$session_id', 'String'))})"
        if math == "sum":  # compensated: a float sum as close to PostgreSQL's exact numeric one as can be
            return f"sumKahan({value})"
        if math in PERCENTILES:  # linear interpolation between ranks, as percentile_cont
            return f"quantileExactInclusive({PERCENTILES[math]})({value})"
        return f"{math}({value})"

    def any_of(self, expression: str, values: str) -> str:
        return f"has({values}, {expression})"

    def ilike(self, expression: str, pattern: str) -> str:
        return f"ilike({expression}, {pattern})"

    def regex(self, expression: str, pattern: str) -> str:
        return f"match({expression}, {pattern})"

    def series(self, index: int, where: str, aggregate: str, window: TimeWindow) -> str:
        return (
            f"SELECT {index} AS series, {self.bucket(window)} AS bucket, CAST(NULL AS Nullable(String)) AS breakdown, "
            f"CAST({aggregate} AS Nullable(Float64)) AS value FROM {self.table} AS e WHERE {where} GROUP BY bucket"
        )

    def broken_down(
        self, index: int, where: str, aggregate: str, window: TimeWindow, key: str, limit: str, additive: bool
    ) -> str:
        bucket, prop = self.bucket(window), self.text(key)
        null, other = self.param(BREAKDOWN_NULL, "String"), self.param(BREAKDOWN_OTHER, "String")
        if additive:  # one scan; the ranking runs over the (bucket, value) rows with window functions
            return (
                f"SELECT {index} AS series, bucket, multiIf(prop IS NULL, {null}, prop_rank <= {limit}, prop, {other}) "
                f"AS breakdown, CAST(sum(measure) AS Nullable(Float64)) AS value FROM ("
                f"SELECT bucket, prop, measure, dense_rank() OVER (ORDER BY isNull(prop), prop_events DESC, prop) "
                f"AS prop_rank FROM (SELECT bucket, prop, measure, sum(hits) OVER (PARTITION BY prop) AS prop_events "
                f"FROM (SELECT {bucket} AS bucket, {prop} AS prop, count() AS hits, {aggregate} AS measure "
                f"FROM {self.table} AS e WHERE {where} GROUP BY bucket, prop))) GROUP BY bucket, breakdown"
            )
        top = (
            f"SELECT {prop} AS top_prop FROM {self.table} AS e WHERE {where} AND top_prop IS NOT NULL "
            f"GROUP BY top_prop ORDER BY count() DESC, top_prop LIMIT {limit}"
        )
        return (
            f"SELECT {index} AS series, {bucket} AS bucket, "
            f"multiIf(({prop} AS prop) IS NULL, {null}, prop IN ({top}), prop, {other}) AS breakdown, "
            f"CAST({aggregate} AS Nullable(Float64)) AS value FROM {self.table} AS e WHERE {where} "
            f"GROUP BY bucket, breakdown"
        )

    def statement(self, parts: list[str]) -> str:
        return " UNION ALL ".join(parts)


def json_text(properties: str, key: str) -> str:
    """ClickHouse SQL for the text of property `key` (SQL: a placeholder or a literal) of the JSON in
    `properties`, as PostgreSQL's `->>` gives it. One parse of the JSON: a string unescaped, a number,
    boolean, object or array as JSON text, NULL for null or absent; only text that looks like an
    integer pays a second parse, to tell an integral float (jsonb prints 20.0) from an integer."""
    value = f"JSONExtract({properties}, {key}, 'Nullable(String)')"
    return (
        f"multiIf(match({value}, '^-?[0-9]{{1,16}}$') AND JSONType({properties}, {key}) = 'Double', "
        f"concat({value}, '.0'), {value})"
    )


def bucket_start(value: datetime | date | int) -> datetime:
    """The naive local start a ClickHouse bucket names (PostgreSQL's are that already)."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, int):
        return _EPOCH + timedelta(seconds=value)
    return datetime(value.year, value.month, value.day)


def trends_compile(query: TrendsQuery, *, project_id: int, window: TimeWindow, dialect: Dialect) -> str:
    """The statement of `query` in `dialect`, whose `values` are then its parameters."""
    key = breakdown_key(query)
    common = (
        f"e.project_id = {dialect.param(project_id, 'Int64')} "
        f"AND e.timestamp >= {dialect.param(window.start, INSTANT)} "
        f"AND e.timestamp <= {dialect.param(window.end, INSTANT)}"
    )
    shared_filter = _properties(query.properties, dialect)
    parts = []
    for index, series in enumerate(query.series):
        if isinstance(series, ActionsNode):
            raise UnsupportedQuery(
                "unsupported_series", "Actions are not supported; use an EventsNode series."
            )
        where = " AND ".join(
            part
            for part in (
                common,
                f"e.event = {dialect.param(series.event, 'String')}" if series.event is not None else "",
                shared_filter,
                _properties(series.properties, dialect),
            )
            if part
        )
        aggregate = _aggregate(series, dialect)
        if key is None:
            parts.append(dialect.series(index, where, aggregate, window))
        else:
            limit = dialect.param(breakdown_limit(query), "UInt32")
            parts.append(
                dialect.broken_down(
                    index, where, aggregate, window, dialect.param(key, "String"), limit,
                    additive=(series.math or "total") in ADDITIVE_MATH,
                )
            )  # fmt: skip
    return dialect.statement(parts)


def _aggregate(series: EventsNode, dialect: Dialect) -> str:
    math = series.math or "total"
    if math not in SUPPORTED_MATH:
        raise UnsupportedQuery("unsupported_math", f"math '{math}' is not supported by this engine.")
    value = dialect.numeric(dialect.param(series.math_property, "String")) if math in PROPERTY_MATH else ""
    return dialect.aggregate(math, value)


def _properties(properties: Properties | None, dialect: Dialect) -> str:
    if isinstance(properties, PropertyGroup):
        parts = [
            _properties(value if isinstance(value, PropertyGroup) else [value], dialect)
            for value in properties.values
        ]
        parts = [part for part in parts if part]
        joiner = " OR " if properties.type == "OR" else " AND "
        return f"({joiner.join(parts)})" if parts else ""
    return " AND ".join(_filter(item, dialect) for item in properties or [])


def _filter(item: PropertyFilter, dialect: Dialect) -> str:
    if item.type != "event":
        raise UnsupportedQuery(
            "unsupported_property", f"Filters on {item.type} properties are not supported."
        )
    key = dialect.param(item.key, "String")
    text = dialect.text(key)
    values = item.value if isinstance(item.value, list) else [item.value]
    as_text = [_text(value) for value in values if value is not None]
    operator = item.operator
    if operator in ("exact", "in"):
        return dialect.any_of(text, dialect.param(as_text, "Array(String)"))
    if operator in ("is_not", "not_in"):
        return f"({text} IS NULL OR NOT {dialect.any_of(text, dialect.param(as_text, 'Array(String)'))})"
    if operator in ("icontains", "not_icontains"):
        pattern = dialect.param(f"%{_like_escape(as_text[0] if as_text else '')}%", "String")
        matches = dialect.ilike(text, pattern)
        return matches if operator == "icontains" else f"({text} IS NULL OR NOT {matches})"
    if operator in ("regex", "not_regex"):
        matches = dialect.regex(text, dialect.param(as_text[0] if as_text else "", "String"))
        return matches if operator == "regex" else f"({text} IS NULL OR NOT {matches})"
    if operator in NUMERIC_OPERATORS:
        try:
            number = float(values[0])  # type: ignore[arg-type]
        except (TypeError, ValueError, IndexError):  # not a number, or no value at all (`[]`)
            raise UnsupportedQuery(
                "invalid_property_filter", f"'{operator}' on {item.key!r} needs a number."
            ) from None
        return f"{dialect.numeric(key)} {NUMERIC_OPERATORS[operator]} {dialect.param(number, 'Float64')}"
    if operator == "is_set":
        return dialect.has(key)
    if operator == "is_not_set":
        return f"NOT {dialect.has(key)}"
    raise UnsupportedQuery("unsupported_property", f"The '{operator}' operator is not supported.")


def _text(value: PropertyValue) -> str:
    """A filter value as `properties->>key` renders it (JSON booleans are `true`/`false`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
