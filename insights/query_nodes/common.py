"""The building blocks of query nodes: property filters, series, date ranges, breakdowns."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

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
PROPERTY_TYPES = get_args(PropertyType)
# -7d, -24h, -2w, -3m, -1y, dStart/mStart/yStart, "all", or an ISO date / datetime.
RELATIVE_DATE = re.compile(r"^(-\d{1,4}[hdwmqy]|[dwmqy]Start|all)$")
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$")
# Numbers a JSON consumer can hold exactly.
JsonInt = Annotated[int, Field(ge=-(2**53), le=2**53)]


def _within_double(value: object) -> object:
    # Checked before float conversion, which would round -(2^53 + 1) onto the bound.
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 2**53:
        raise ValueError("numbers must be within ±2^53")
    return value


JsonNumber = Annotated[Annotated[float, Field(ge=-(2**53), le=2**53)], BeforeValidator(_within_double)]
PropertyValue = str | JsonInt | JsonNumber | bool | None
# What a date in a date range may be, for clients: a date, a date-time or a relative date.
DATE_SCHEMA = {
    "anyOf": [
        {"type": "string", "format": "date"},
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": RELATIVE_DATE.pattern},
        {"type": "null"},
    ],
    "description": "`YYYY-MM-DD`, an ISO 8601 date-time, or relative: `-7d`, `-24h`, `-2w`, `-3m`, "
    "`-1y`, `dStart`, `mStart`, `yStart`, `all`.",
}


def _requires_math_property(math: list[str]) -> dict[str, Any]:
    """JSON Schema for "math in `math` needs a non-empty math_property"."""
    return {
        "if": {"properties": {"math": {"enum": math}}, "required": ["math"]},
        "then": {
            "properties": {"math_property": {"type": "string", "minLength": 1}},
            "required": ["math_property"],
        },
    }


class Node(BaseModel):
    """Every node: fields this service understands are checked, unknown ones kept (clients send many
    display options)."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True)


class PropertyFilter(Node):
    """One condition on a property: `key`, `operator` and `value` (a list for `exact` means any of
    them). Every operator but `is_set` and `is_not_set` needs a `value`, except on cohorts."""

    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "properties": {
                    "operator": {"not": {"enum": ["is_set", "is_not_set"]}},
                    "type": {"not": {"const": "cohort"}},
                }
            },
            "then": {"properties": {"value": {"not": {"type": "null"}}}, "required": ["value"]},
        }
    )

    key: Annotated[str, Field(min_length=1, max_length=400)]
    value: PropertyValue | list[PropertyValue] = None
    operator: PropertyOperator = "exact"
    type: PropertyType = "event"

    @model_validator(mode="after")
    def _value_needed(self) -> PropertyFilter:
        if self.operator not in ("is_set", "is_not_set") and self.value is None and self.type != "cohort":
            raise ValueError(f"operator '{self.operator}' needs a value")
        return self


class PropertyGroup(Node):
    """Filters combined with AND or OR; groups nest."""

    type: Literal["AND", "OR"]
    values: list[PropertyFilter | PropertyGroup]


Properties = list[PropertyFilter] | PropertyGroup


class _Series(Node):
    """What every series has: a display name, its `math` and filters of its own. `math` on a property
    (`sum`, `avg`, percentiles, …) needs `math_property`."""

    model_config = ConfigDict(json_schema_extra=_requires_math_property(sorted(PROPERTY_MATH)))

    name: str | None = None
    custom_name: str | None = None
    math: MathType | None = None
    math_property: str | None = None
    properties: Properties = []

    @model_validator(mode="after")
    def _math_property(self) -> _Series:
        if self.math in PROPERTY_MATH and not self.math_property:
            raise ValueError(f"math '{self.math}' needs math_property")
        return self


class EventsNode(_Series):
    """A series of events: all events named `event` (all events when null), counted per `math`."""

    kind: Literal["EventsNode"]
    event: Annotated[str, Field(max_length=400)] | None = None  # None: all events


class ActionsNode(_Series):
    """A series of an action's events, by the action's id."""

    kind: Literal["ActionsNode"]
    id: JsonInt


SeriesNode = Annotated[EventsNode | ActionsNode, Field(discriminator="kind")]


DateValue = Annotated[str | None, WithJsonSchema(DATE_SCHEMA)]


class DateRange(Node):
    """The window a query covers; `date_to` defaults to now and `date_from` to `-7d`."""

    date_from: DateValue = None
    date_to: DateValue = None

    @field_validator("date_from", "date_to")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        if value is not None and not (RELATIVE_DATE.match(value) or _is_iso_date(value)):
            raise ValueError(f"'{value}' is not a date: use e.g. -7d, -24h, mStart, all or YYYY-MM-DD")
        return value


def _is_iso_date(value: str) -> bool:
    if not ISO_DATE.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:  # the right shape but no such day or time, e.g. 2026-02-30
        return False
    return True


class Breakdown(Node):
    property: str | JsonInt
    type: PropertyType | None = "event"


class BreakdownFilter(Node):
    """Split each series by the values of a property (`breakdown`, or `breakdowns`)."""

    breakdown: str | JsonInt | list[str | JsonInt] | None = None
    breakdown_type: PropertyType | None = "event"
    breakdowns: Annotated[list[Breakdown], Field(max_length=3)] | None = None
    breakdown_limit: Annotated[int, Field(ge=1, le=1000)] | None = None
