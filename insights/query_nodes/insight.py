"""The insight queries (docs/queries.md): the six kinds an `InsightVizNode` wraps."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from insights.query_nodes.common import (
    MAX_SERIES,
    BreakdownFilter,
    DateRange,
    Interval,
    JsonInt,
    Node,
    Properties,
    SeriesNode,
)


class _InsightQuery(Node):
    dateRange: DateRange | None = None
    properties: Properties = []
    filterTestAccounts: bool | None = None


class TrendsQuery(_InsightQuery):
    """Counts of events over time: one line per series (and per breakdown value), one point per
    `interval`."""

    kind: Literal["TrendsQuery"]
    series: Annotated[list[SeriesNode], Field(min_length=1, max_length=MAX_SERIES)]
    interval: Interval = "day"
    breakdownFilter: BreakdownFilter | None = None
    trendsFilter: dict[str, Any] | None = None


class FunnelsFilter(Node):
    funnelVizType: Literal["steps", "time_to_convert", "trends"] = "steps"
    funnelOrderType: Literal["ordered", "unordered", "strict"] = "ordered"
    funnelWindowInterval: Annotated[int, Field(ge=1, le=2**53)] | None = None
    funnelWindowIntervalUnit: Literal["second", "minute", "hour", "day", "week", "month"] | None = None


class FunnelsQuery(_InsightQuery):
    kind: Literal["FunnelsQuery"]
    series: Annotated[list[SeriesNode], Field(min_length=2, max_length=MAX_SERIES)]
    interval: Interval = "day"
    breakdownFilter: BreakdownFilter | None = None
    funnelsFilter: FunnelsFilter = FunnelsFilter()


class RetentionEntity(Node):
    id: str | JsonInt | None = None
    type: Literal["events", "actions"] = "events"
    name: str | None = None


class RetentionFilter(Node):
    targetEntity: RetentionEntity | None = None
    returningEntity: RetentionEntity | None = None
    period: Literal["Hour", "Day", "Week", "Month"] = "Day"
    totalIntervals: Annotated[int, Field(ge=1, le=100)] = 8
    retentionType: Literal["retention_first_time", "retention_recurring"] = "retention_first_time"


class RetentionQuery(_InsightQuery):
    kind: Literal["RetentionQuery"]
    retentionFilter: RetentionFilter = RetentionFilter()
    breakdownFilter: BreakdownFilter | None = None


class PathsFilter(Node):
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


class InsightVizNode(Node):
    """An insight as PostHog's frontend saves it: one of the six insight queries in `source`."""

    kind: Literal["InsightVizNode"]
    source: InsightSource


class TrendsInsightVizNode(InsightVizNode):
    """An `InsightVizNode` whose `source` is a `TrendsQuery`: the kind of node the query route runs."""

    source: TrendsQuery
