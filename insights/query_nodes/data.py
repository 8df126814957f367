"""Query nodes other than the insight queries (docs/posthog-clients.md): event and person lists, groups, SQL, Hog,
and the tables and visualizations PostHog's frontend saves around them.

- `DataTableNode` shows a list: over `EventsQuery`, `ActorsQuery`, `GroupsQuery`, `HogQLQuery` or
  a legacy `EventsNode`.
- `DataVisualizationNode` is a SQL insight: a `HogQLQuery` with chart and table settings.
- `ActorsQuery` lists persons, on its own or for a slice of an insight (`InsightActorsQuery`,
  `FunnelsActorsQuery`, `StickinessActorsQuery`) or of a SQL query.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from insights.query_nodes.common import DateRange, EventsNode, JsonInt, JsonNumber, Node, Properties
from insights.query_nodes.insight import FunnelsQuery, InsightSource, StickinessQuery

MAX_SQL_CHARS = 100_000
MAX_ROWS = 100_000
Expression = Annotated[str, Field(min_length=1, max_length=1000)]  # a HogQL expression (a column)
Expressions = Annotated[list[Expression], Field(max_length=100)]
RowLimit = Annotated[int, Field(ge=1, le=MAX_ROWS)]
RowOffset = Annotated[int, Field(ge=0, le=2**53)]
BreakdownValue = str | JsonInt | JsonNumber | list[str | JsonInt | JsonNumber] | None


class HogQLFilters(Node):
    properties: Properties = []
    dateRange: DateRange | None = None
    filterTestAccounts: bool | None = None


class HogQLQuery(Node):
    """A SQL (HogQL) query, as the SQL editor and SQL insights save it."""

    kind: Literal["HogQLQuery"]
    query: Annotated[str, Field(min_length=1, max_length=MAX_SQL_CHARS)]
    filters: HogQLFilters | None = None
    variables: dict[str, dict[str, Any]] | None = None
    values: dict[str, Any] | None = None
    name: str | None = None
    explain: bool | None = None


class HogQuery(Node):
    """A Hog program; its output is the result."""

    kind: Literal["HogQuery"]
    code: Annotated[str, Field(max_length=MAX_SQL_CHARS)] | None = None


class InsightActorsQuery(Node):
    """The persons behind one point of an insight: a day, a lifecycle status, a series, a breakdown."""

    kind: Literal["InsightActorsQuery"]
    source: InsightSource
    day: str | JsonInt | None = None
    status: Literal["new", "returning", "resurrecting", "dormant"] | None = None
    interval: Annotated[int, Field(ge=0, le=2**53)] | None = None
    series: Annotated[int, Field(ge=0, le=49)] | None = None
    breakdown: BreakdownValue = None
    compare: Literal["current", "previous"] | None = None
    includeRecordings: bool | None = None


class FunnelsActorsQuery(Node):
    """The persons who converted at (a positive step) or dropped off before (a negative one) a step."""

    kind: Literal["FunnelsActorsQuery"]
    source: FunnelsQuery
    funnelStep: Annotated[int, Field(ge=-50, le=50, json_schema_extra={"not": {"const": 0}})] | None = None
    funnelStepBreakdown: BreakdownValue = None
    funnelTrendsDropOff: bool | None = None
    funnelTrendsEntrancePeriodStart: str | None = None
    includeRecordings: bool | None = None

    @model_validator(mode="after")
    def _step(self) -> FunnelsActorsQuery:
        if self.funnelStep == 0:
            raise ValueError("funnelStep counts from 1 (converted) or -1 (dropped off); 0 names no step")
        return self


class StickinessActorsQuery(Node):
    kind: Literal["StickinessActorsQuery"]
    source: StickinessQuery
    day: str | JsonInt | None = None
    series: Annotated[int, Field(ge=0, le=49)] | None = None
    compare: Literal["current", "previous"] | None = None
    includeRecordings: bool | None = None


ActorsSource = Annotated[
    InsightActorsQuery | FunnelsActorsQuery | StickinessActorsQuery | HogQLQuery, Field(discriminator="kind")
]


class ActorsQuery(Node):
    """A list of persons: all of them, those matching a search or filters, or those of `source`."""

    kind: Literal["ActorsQuery"]
    source: ActorsSource | None = None
    select: Expressions | None = None
    search: Annotated[str, Field(max_length=1000)] | None = None
    properties: Properties = []
    fixedProperties: Properties = []
    orderBy: Expressions | None = None
    limit: RowLimit | None = None
    offset: RowOffset | None = None


class EventsQuery(Node):
    """A list of events (or an aggregate of them, when `select` holds aggregations)."""

    kind: Literal["EventsQuery"]
    select: Annotated[list[Expression], Field(min_length=1, max_length=100)]
    source: InsightActorsQuery | None = None
    event: Annotated[str, Field(max_length=400)] | None = None
    actionId: JsonInt | None = None
    personId: str | None = None
    where: Expressions | None = None
    orderBy: Expressions | None = None
    properties: Properties = []
    fixedProperties: Properties = []
    filterTestAccounts: bool | None = None
    after: str | None = None
    before: str | None = None
    limit: RowLimit | None = None
    offset: RowOffset | None = None


class GroupsQuery(Node):
    """A list of groups (companies, say) of one group type."""

    kind: Literal["GroupsQuery"]
    group_type_index: Annotated[int, Field(ge=0, le=4)]
    select: Expressions | None = None
    search: Annotated[str, Field(max_length=1000)] | None = None
    properties: Properties = []
    orderBy: Expressions | None = None
    limit: RowLimit | None = None
    offset: RowOffset | None = None


TableSource = Annotated[
    EventsQuery | ActorsQuery | GroupsQuery | HogQLQuery | EventsNode, Field(discriminator="kind")
]


class DataTableNode(Node):
    """A table of `source`'s rows, with the columns a user chose (HogQL expressions)."""

    kind: Literal["DataTableNode"]
    source: TableSource
    columns: Expressions | None = None
    hiddenColumns: Expressions | None = None
    pinnedColumns: Expressions | None = None


class DataVisualizationNode(Node):
    """A SQL insight: a `HogQLQuery` and how to chart or tabulate its result."""

    kind: Literal["DataVisualizationNode"]
    source: HogQLQuery
    display: Annotated[str, Field(max_length=100)] | None = None
    chartSettings: dict[str, Any] | None = None
    tableSettings: dict[str, Any] | None = None
