"""Query nodes: the JSON that says what an insight computes (SPEC §6), validated with pydantic.

Unknown extra fields are kept (clients send many display options), but every field this service
understands is checked: kinds, series, math, intervals, date ranges, breakdowns, property filters.
`query_parse` is the single entry point; it raises InvalidQuery with a readable reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_QUERY_BYTES = 256 * 1024
MAX_QUERY_DEPTH = 32
MAX_SERIES = 50

Interval = Literal["minute", "hour", "day", "week", "month"]
MathType = Literal[
    "total", "dau", "weekly_active", "monthly_active", "unique_session", "first_time_for_user",
    "sum", "avg", "min", "max", "median", "p75", "p90", "p95", "p99", "unique_group", "hogql",
]  # fmt: skip
PROPERTY_MATH = frozenset({"sum", "avg", "min", "max", "median", "p75", "p90", "p95", "p99"})
PropertyOperator = Literal[
    "exact", "is_not", "icontains", "not_icontains", "regex", "not_regex", "gt", "gte", "lt", "lte",
    "is_set", "is_not_set", "is_date_exact", "is_date_before", "is_date_after", "between", "not_between",
    "in", "not_in",
]  # fmt: skip
PropertyType = Literal[
    "event", "person", "element", "session", "cohort", "group", "feature", "hogql", "data_warehouse",
    "event_metadata",
]  # fmt: skip
# -7d, -24h, -2w, -3m, -1y, dStart/mStart/yStart, "all", or an ISO date / datetime.
RELATIVE_DATE = re.compile(r"^(-\d{1,4}[hdwmqy]|[dwmqy]Start|all)$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
PropertyValue = str | int | float | bool | None


class _Node(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class PropertyFilter(_Node):
    key: Annotated[str, Field(min_length=1, max_length=400)]
    value: PropertyValue | list[PropertyValue] = None
    operator: PropertyOperator = "exact"
    type: PropertyType = "event"

    @model_validator(mode="after")
    def _value_needed(self) -> PropertyFilter:
        if self.operator not in ("is_set", "is_not_set") and self.value is None and self.type != "cohort":
            raise ValueError(f"operator '{self.operator}' needs a value")
        return self


class PropertyGroup(_Node):
    type: Literal["AND", "OR"]
    values: list[PropertyFilter | PropertyGroup]


Properties = list[PropertyFilter] | PropertyGroup


class EventsNode(_Node):
    kind: Literal["EventsNode"]
    event: Annotated[str, Field(max_length=400)] | None = None  # None: all events
    name: str | None = None
    custom_name: str | None = None
    math: MathType | None = None
    math_property: str | None = None
    properties: Properties = []

    @model_validator(mode="after")
    def _math_property(self) -> EventsNode:
        if self.math in PROPERTY_MATH and not self.math_property:
            raise ValueError(f"math '{self.math}' needs math_property")
        return self


class ActionsNode(_Node):
    kind: Literal["ActionsNode"]
    id: int
    name: str | None = None
    custom_name: str | None = None
    math: MathType | None = None
    math_property: str | None = None
    properties: Properties = []


SeriesNode = Annotated[EventsNode | ActionsNode, Field(discriminator="kind")]


class DateRange(_Node):
    date_from: str | None = None
    date_to: str | None = None

    @field_validator("date_from", "date_to")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        if value is not None and not (RELATIVE_DATE.match(value) or ISO_DATE.match(value)):
            raise ValueError(f"'{value}' is not a date: use e.g. -7d, -24h, mStart, all or YYYY-MM-DD")
        return value


class Breakdown(_Node):
    property: str | int
    type: PropertyType | None = "event"


class BreakdownFilter(_Node):
    breakdown: str | int | list[str | int] | None = None
    breakdown_type: PropertyType | None = "event"
    breakdowns: Annotated[list[Breakdown], Field(max_length=3)] | None = None
    breakdown_limit: Annotated[int, Field(ge=1, le=1000)] | None = None


class _InsightQuery(_Node):
    dateRange: DateRange | None = None
    properties: Properties = []
    filterTestAccounts: bool | None = None


class TrendsQuery(_InsightQuery):
    kind: Literal["TrendsQuery"]
    series: Annotated[list[SeriesNode], Field(min_length=1, max_length=MAX_SERIES)]
    interval: Interval = "day"
    breakdownFilter: BreakdownFilter | None = None
    trendsFilter: dict[str, Any] | None = None


class FunnelsFilter(_Node):
    funnelVizType: Literal["steps", "time_to_convert", "trends"] = "steps"
    funnelOrderType: Literal["ordered", "unordered", "strict"] = "ordered"
    funnelWindowInterval: Annotated[int, Field(ge=1)] | None = None
    funnelWindowIntervalUnit: Literal["second", "minute", "hour", "day", "week", "month"] | None = None


class FunnelsQuery(_InsightQuery):
    kind: Literal["FunnelsQuery"]
    series: Annotated[list[SeriesNode], Field(min_length=2, max_length=MAX_SERIES)]
    interval: Interval = "day"
    breakdownFilter: BreakdownFilter | None = None
    funnelsFilter: FunnelsFilter = FunnelsFilter()


class RetentionEntity(_Node):
    id: str | int | None = None
    type: Literal["events", "actions"] = "events"
    name: str | None = None


class RetentionFilter(_Node):
    targetEntity: RetentionEntity | None = None
    returningEntity: RetentionEntity | None = None
    period: Literal["Hour", "Day", "Week", "Month"] = "Day"
    totalIntervals: Annotated[int, Field(ge=1, le=100)] = 8
    retentionType: Literal["retention_first_time", "retention_recurring"] = "retention_first_time"


class RetentionQuery(_InsightQuery):
    kind: Literal["RetentionQuery"]
    retentionFilter: RetentionFilter = RetentionFilter()
    breakdownFilter: BreakdownFilter | None = None


class PathsFilter(_Node):
    includeEventTypes: list[Literal["$pageview", "$screen", "custom_event", "hogql"]] = []
    startPoint: str | None = None
    endPoint: str | None = None
    stepLimit: Annotated[int, Field(ge=2, le=20)] | None = None


class PathsQuery(_InsightQuery):
    kind: Literal["PathsQuery"]
    pathsFilter: PathsFilter = PathsFilter()


class StickinessQuery(_InsightQuery):
    kind: Literal["StickinessQuery"]
    series: Annotated[list[SeriesNode], Field(min_length=1, max_length=MAX_SERIES)]
    interval: Interval = "day"


class LifecycleQuery(_InsightQuery):
    kind: Literal["LifecycleQuery"]
    series: Annotated[list[SeriesNode], Field(min_length=1, max_length=1)]
    interval: Interval = "day"


InsightSource = Annotated[
    TrendsQuery | FunnelsQuery | RetentionQuery | PathsQuery | StickinessQuery | LifecycleQuery,
    Field(discriminator="kind"),
]


class InsightVizNode(_Node):
    kind: Literal["InsightVizNode"]
    source: InsightSource


class EventsQuery(_Node):
    kind: Literal["EventsQuery"]
    select: Annotated[
        list[Annotated[str, Field(min_length=1, max_length=1000)]], Field(min_length=1, max_length=100)
    ]
    event: str | None = None
    where: list[str] | None = None
    orderBy: list[str] | None = None
    properties: Properties = []
    after: str | None = None
    before: str | None = None
    limit: Annotated[int, Field(ge=1, le=100_000)] | None = None


class ActorsQuery(_Node):
    kind: Literal["ActorsQuery"]
    source: InsightSource | None = None
    select: list[str] | None = None
    search: str | None = None
    properties: Properties = []
    limit: Annotated[int, Field(ge=1, le=100_000)] | None = None


AnyQueryNode = (
    InsightVizNode
    | TrendsQuery
    | FunnelsQuery
    | RetentionQuery
    | PathsQuery
    | StickinessQuery
    | LifecycleQuery
    | EventsQuery
    | ActorsQuery
)
QueryNode = Annotated[AnyQueryNode, Field(discriminator="kind")]
INSIGHT_SOURCE_KINDS = (
    "TrendsQuery",
    "FunnelsQuery",
    "RetentionQuery",
    "PathsQuery",
    "StickinessQuery",
    "LifecycleQuery",
)
NODE_KINDS = ("InsightVizNode", *INSIGHT_SOURCE_KINDS, "EventsQuery", "ActorsQuery")
# pydantic puts the chosen union member's tag in error paths; readers do not need it.
DISCRIMINATOR_TAGS = frozenset({*NODE_KINDS, "EventsNode", "ActionsNode"})


class _Root(BaseModel):
    node: QueryNode


class InvalidQuery(ValueError):
    """The value is not a query node this service accepts; the message says why."""


def query_parse(value: Any) -> AnyQueryNode:
    """Validate a query node and return it as a model; raise InvalidQuery otherwise."""
    if not isinstance(value, dict):
        raise InvalidQuery("A query must be a JSON object with a 'kind'.")
    if value.get("kind") not in NODE_KINDS:
        raise InvalidQuery(
            f"Unknown query kind {value.get('kind')!r}; expected one of {', '.join(NODE_KINDS)}."
        )
    _check_json(value, depth=0)
    if len(json.dumps(value)) > MAX_QUERY_BYTES:
        raise InvalidQuery(f"A query may be at most {MAX_QUERY_BYTES} bytes of JSON.")
    try:
        return _Root(node=value).node
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(str(part) for part in error["loc"][1:] if part not in DISCRIMINATOR_TAGS) or "query"
        raise InvalidQuery(f"{path}: {error['msg'].removeprefix('Value error, ')}") from None


def query_source(node: Any) -> Any:
    """The insight query inside an InsightVizNode, or the node itself."""
    return node.source if isinstance(node, InsightVizNode) else node


def query_fingerprint(value: dict[str, Any]) -> str:
    """A stable hash of a query's JSON (key order and whitespace do not matter), for cache keys."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_json(value: Any, *, depth: int) -> None:
    """What pydantic does not check: depth, NUL characters (PostgreSQL rejects them in jsonb), and
    integers beyond what JSON consumers can represent."""
    if depth > MAX_QUERY_DEPTH:
        raise InvalidQuery(f"A query may nest at most {MAX_QUERY_DEPTH} levels.")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidQuery("A query may not contain NUL characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(key, depth=depth + 1)
            _check_json(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth=depth + 1)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        raise InvalidQuery("Integers in a query must fit in a double (|n| ≤ 2^53).")
