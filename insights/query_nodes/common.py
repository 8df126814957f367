"""The building blocks of query nodes: property filters, series, date ranges, breakdowns."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

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


class Node(BaseModel):
    """Every node: fields this service understands are checked, unknown ones kept (clients send many
    display options)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class PropertyFilter(Node):
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
    type: Literal["AND", "OR"]
    values: list[PropertyFilter | PropertyGroup]


Properties = list[PropertyFilter] | PropertyGroup


class EventsNode(Node):
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


class ActionsNode(Node):
    kind: Literal["ActionsNode"]
    id: int
    name: str | None = None
    custom_name: str | None = None
    math: MathType | None = None
    math_property: str | None = None
    properties: Properties = []


SeriesNode = Annotated[EventsNode | ActionsNode, Field(discriminator="kind")]


class DateRange(Node):
    date_from: str | None = None
    date_to: str | None = None

    @field_validator("date_from", "date_to")
    @classmethod
    def _date(cls, value: str | None) -> str | None:
        if value is not None and not (RELATIVE_DATE.match(value) or ISO_DATE.match(value)):
            raise ValueError(f"'{value}' is not a date: use e.g. -7d, -24h, mStart, all or YYYY-MM-DD")
        return value


class Breakdown(Node):
    property: str | int
    type: PropertyType | None = "event"


class BreakdownFilter(Node):
    breakdown: str | int | list[str | int] | None = None
    breakdown_type: PropertyType | None = "event"
    breakdowns: Annotated[list[Breakdown], Field(max_length=3)] | None = None
    breakdown_limit: Annotated[int, Field(ge=1, le=1000)] | None = None
