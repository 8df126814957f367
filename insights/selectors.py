"""Reads of insights: the statements every insight read starts from (`insights_statement`: the
caller's visible insights, compiled once per process), list filtering and ordering, lookups, and the
annotations a page of them needs."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol, TypeVar

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import JSONObject

from accounts.caller import Caller
from accounts.selectors import user_basic_json
from infra.db.compiled import Markers, Prepared, compiled_once, prepare
from insights.access import LEVEL, insights_visible
from insights.models import ActivityLog, DashboardTile, Insight

# How `tags` matches: PostHog's any, or all of them.
TAGS_MATCH = ("any", "all")
# `order` values a caller may sort the list by; anything else is a 400.
ORDERABLE_FIELDS = ("created_at", "last_modified_at", "last_viewed_at", "name", "order", "id")
ORDER_CHOICES = tuple(prefix + name for name in ORDERABLE_FIELDS for prefix in ("", "-"))
# The insight types of PostHog's saved-insights filter: the six kinds by name, and what else is saved.
INSIGHT_KINDS = {
    "TRENDS": "TrendsQuery",
    "FUNNELS": "FunnelsQuery",
    "RETENTION": "RetentionQuery",
    "PATHS": "PathsQuery",
    "STICKINESS": "StickinessQuery",
    "LIFECYCLE": "LifecycleQuery",
}
OTHER_TYPE_KINDS = {"SQL": "DataVisualizationNode", "HOG": "HogQuery"}
INSIGHT_TYPES = (*INSIGHT_KINDS, *OTHER_TYPE_KINDS, "JSON")
DEFAULT_ORDER = "-last_modified_at"
R = TypeVar("R")  # a row of a queryset: a model instance, or what `values()` makes of it
# The largest id a bigint holds: a larger number in a URL is no insight's (and no statement's value).
LARGEST_ID = 2**63 - 1


def insights_visible_to(
    *, project_id: int, caller: Caller, start: QuerySet[Insight] | None = None
) -> QuerySet[Insight]:
    """The project's insights (of `start`, by default all of them) the caller may see, each with the
    caller's level on it (`insights_visible`)."""
    insights = (Insight.objects.all() if start is None else start).filter(project_id=project_id)
    return insights_visible(insights, caller)


@dataclass(frozen=True)
class VisibleInsights:
    """What an insight statement is built from: the insights of a stand-in project that a stand-in
    caller may see (`insights_visible_to`), so that one compiled statement serves every project and
    every caller of the same kind of visibility."""

    insights: QuerySet[Insight]
    caller_id: int  # the stand-in caller's id, for a statement about the caller's own insights or views
    markers: Markers


@dataclass(frozen=True)
class CallerStatement:
    """A statement of `insights_statement` with the project and the caller it runs for."""

    statement: Prepared
    project_id: int
    caller: Caller

    def rows(self, **values: object) -> list[Any]:
        """The statement's rows (named tuples) for the project, the caller and `values`."""
        return self.statement.rows(project=self.project_id, user=self.caller.user_id, **values)

    def count(self, **values: object) -> int:
        """How many rows `rows` would return, without the statement's `LIMIT`."""
        return self.statement.count(project=self.project_id, user=self.caller.user_id, **values)


def insights_statement(
    key: Hashable | None,
    *,
    project_id: int,
    caller: Caller,
    build: Callable[[VisibleInsights], Prepared],
    start: QuerySet[Insight] | None = None,
) -> CallerStatement:
    """The statement `build` prepares from the project's insights the caller may see (starting from
    `start`: the insights with what a shape shows, or by default the bare ones), for this project and
    caller: the one way an insight read gets a statement, so no read can leave the visibility rule
    out. Compiled once per process for each `key` (naming the read and anything else its statement
    depends on) and each kind of visibility (an admin's is another statement); with key None, for
    this call alone (a statement carrying a request's own values)."""

    def visible(markers: Markers) -> VisibleInsights:
        project = markers.number("project")
        stand_in = Caller(user_id=markers.number("user"), is_admin=caller.is_admin)
        insights = insights_visible_to(project_id=project, caller=stand_in, start=start)
        return VisibleInsights(insights=insights, caller_id=stand_in.user_id, markers=markers)

    statement = compiled_once(
        None if key is None else (key, caller.is_admin), lambda markers: build(visible(markers))
    )
    return CallerStatement(statement=statement, project_id=project_id, caller=caller)


# How each list filter enters the list's statement (InsightFilters.shape): a FLAG takes one of a few
# values, each compiled into a statement of its own and shared by every request with that value; a VALUE
# is the request's own text, ids or dates, so a statement holding one serves that request alone; the
# CALLER filter is on or off, the caller's own id entering as the caller's stand-in.
FLAG, VALUE, CALLER = {"statement": "flag"}, {"statement": "value"}, {"statement": "caller"}


@dataclass(frozen=True)
class InsightFilters:
    """The list's filters; every field says how it enters the statement (FLAG, VALUE or CALLER)."""

    search: str | None = field(default=None, metadata=VALUE)
    tags: list[str] = field(default_factory=list, metadata=VALUE)  # normalised names
    tags_match: str = field(default="any", metadata=FLAG)  # one of TAGS_MATCH: any tag may match, or all
    favorited: bool | None = field(default=None, metadata=FLAG)
    created_by: list[int] = field(default_factory=list, metadata=VALUE)
    mine: bool = field(default=False, metadata=CALLER)  # only the caller's own insights
    dashboards: list[int] = field(default_factory=list, metadata=VALUE)  # all must match
    short_id: str | None = field(default=None, metadata=VALUE)
    modified_from: datetime | None = field(default=None, metadata=VALUE)
    modified_to: datetime | None = field(default=None, metadata=VALUE)
    saved: bool | None = field(default=None, metadata=FLAG)
    insight_type: str | None = field(default=None, metadata=FLAG)  # one of INSIGHT_TYPES
    on_dashboard: bool | None = field(default=None, metadata=FLAG)  # on a live dashboard, or on none
    # Applied by the list itself (views are viewtracking's).
    not_viewed_since: datetime | None = field(default=None, metadata=VALUE)
    order: str = field(default=DEFAULT_ORDER, metadata=FLAG)

    def shape(self) -> tuple[object, ...] | None:
        """What the list's statement depends on besides the project, the caller and the page, read
        from the fields' kinds: the flags' values and whether the caller filter is on (one compiled
        statement per process serves each such shape); None when a value filter is set, as the
        statement then carries the request's own values."""
        shape: list[object] = []
        for filter_field in fields(self):
            value, kind = getattr(self, filter_field.name), filter_field.metadata
            if kind == VALUE:
                if value not in (None, []):
                    return None
            elif kind in (FLAG, CALLER):  # a few values each (the caller's own id is a stand-in)
                shape.append(value)
            else:
                raise AssertionError(
                    f"InsightFilters.{filter_field.name} says not how it enters the statement"
                )
        return tuple(shape)


def insights_filter(
    *, queryset: QuerySet[Insight], filters: InsightFilters, caller_id: int
) -> QuerySet[Insight]:
    """Apply the list filters to an already project-scoped queryset of live insights (`caller_id`:
    whose insights are the caller's own, `filters.mine`).

    Tags are reached through the reverse relation `tagged_items` (owned by the tagging app) by
    name, so this module needs no import of it.
    """
    queryset = queryset.filter(deleted=False)
    if filters.search:
        tag_match = Insight.objects.filter(tagged_items__tag__name__icontains=filters.search).values("id")
        queryset = queryset.filter(
            Q(name__icontains=filters.search)
            | Q(derived_name__icontains=filters.search)
            | Q(description__icontains=filters.search)
            | Q(id__in=tag_match)
        )
    if filters.tags:
        tagged = Insight.objects.filter(tagged_items__tag__name__in=filters.tags)
        if filters.tags_match == "all":
            tagged = tagged.annotate(matched=Count("tagged_items__tag__name", distinct=True)).filter(
                matched=len(set(filters.tags))
            )
        queryset = queryset.filter(id__in=tagged.values("id"))
    if filters.favorited is not None:
        queryset = queryset.filter(favorited=filters.favorited)
    if filters.created_by:
        queryset = queryset.filter(created_by_id__in=filters.created_by)
    if filters.mine:
        queryset = queryset.filter(created_by_id=caller_id)
    if filters.dashboards:
        on_all = (
            DashboardTile.objects.filter(dashboard_id__in=filters.dashboards)
            .values("insight_id")
            .annotate(matched=Count("dashboard_id", distinct=True))
            .filter(matched=len(set(filters.dashboards)))
            .values("insight_id")
        )
        queryset = queryset.filter(id__in=on_all)
    if filters.short_id:
        queryset = queryset.filter(short_id=filters.short_id)
    if filters.saved is not None:
        queryset = queryset.filter(saved=filters.saved)
    if filters.insight_type:
        queryset = queryset.filter(_insight_type(filters.insight_type))
    if filters.on_dashboard is not None:
        # tile_insight_idx, one probe per insight.
        on_live = DashboardTile.objects.filter(insight_id=OuterRef("id"), dashboard__deleted=False)
        queryset = queryset.filter(Exists(on_live) if filters.on_dashboard else ~Exists(on_live))
    if filters.modified_from:
        queryset = queryset.filter(last_modified_at__gte=filters.modified_from)
    if filters.modified_to:
        queryset = queryset.filter(last_modified_at__lte=filters.modified_to)
    return queryset


def _insight_type(insight_type: str) -> Q:
    """An insight kind bare or in an InsightVizNode; SQL and Hog by their node; JSON: everything else."""
    if insight_type in INSIGHT_KINDS:
        kind = INSIGHT_KINDS[insight_type]
        return Q(query__kind=kind) | Q(query__kind="InsightVizNode", query__source__kind=kind)
    if insight_type in OTHER_TYPE_KINDS:
        return Q(query__kind=OTHER_TYPE_KINDS[insight_type])
    named = [*INSIGHT_KINDS.values(), *OTHER_TYPE_KINDS.values(), "InsightVizNode"]
    return Q(query__isnull=False) & ~Q(query__kind__in=named)


def insights_order(queryset: QuerySet[Insight], order: str) -> QuerySet[Insight]:
    """Sort by an allow-listed field; never-viewed (null) values sort last either way; id breaks ties.
    `last_viewed_at` must already be annotated on the queryset."""
    name = order.lstrip("-")
    expression = F(name).desc(nulls_last=True) if order.startswith("-") else F(name).asc(nulls_last=True)
    return queryset.order_by(expression, "-id")


@dataclass(frozen=True)
class FoundInsight:
    """A live insight the caller may see, as a retrieve first needs it."""

    id: int
    query: object  # the stored query node, as JSON
    user_access_level: str  # insights.access.LEVEL


def insight_found(*, project_id: int, caller: Caller, lookup: str) -> FoundInsight | None:
    """The project's live insight with this numeric id or short_id, if the caller may see it: the
    statement every retrieve (coalesced followers too) runs first, one per kind of lookup."""
    by_id = lookup.isdigit()
    if by_id and int(lookup) > LARGEST_ID:
        return None

    def build(visible: VisibleInsights) -> Prepared:
        markers = visible.markers
        wanted = {"id": markers.number("lookup")} if by_id else {"short_id": markers.text("lookup")}
        found = visible.insights.filter(deleted=False, **wanted).values_list("id", "query", LEVEL)
        return prepare(found[:1], markers)

    statement = insights_statement(
        ("insight found", by_id), project_id=project_id, caller=caller, build=build
    )
    rows = statement.rows(lookup=int(lookup) if by_id else lookup)
    return FoundInsight(*rows[0]) if rows else None


def insight_lookup(*, queryset: QuerySet[Insight, R], id_or_short_id: str) -> R | None:
    """The row of `queryset` (an Insight, or a dict for a `.values()` queryset) with this numeric id or
    short_id (short_ids are never all digits, so there is no ambiguity)."""
    if id_or_short_id.isdigit():
        if int(id_or_short_id) > LARGEST_ID:
            return None
        return queryset.filter(id=int(id_or_short_id)).first()
    return queryset.filter(short_id=id_or_short_id).first()


def insights_annotate_dashboards(queryset: QuerySet[Insight]) -> QuerySet[Insight]:
    """Each insight's tiles on live dashboards as `live_tiles` (`[{"id", "dashboard_id"}]`), in the
    page's own statement (tile_insight_idx)."""
    tiles = (
        DashboardTile.objects.filter(insight_id=OuterRef("id"), dashboard__deleted=False)
        .order_by("dashboard_id")
        .values(tile=JSONObject(id="id", dashboard_id="dashboard_id"))
    )
    return queryset.annotate(live_tiles=ArraySubquery(tiles))


# The columns an insight's shapes show, from a queryset of insights with what their shapes show
# (InsightViewSet.safely_get_queryset): each named after the serializer field that reads it.
INSIGHT_COLUMNS = (
    "id",
    "short_id",
    "name",
    "derived_name",
    "query",
    "description",
    "saved",
    "favorited",
    "created_at",
    "last_modified_at",
    "updated_at",
    "order",
    "deleted",
    "results_fingerprint",
    "tag_names",
    "live_tiles",
    "last_viewed_at",
    LEVEL,
)


class InsightRow(Protocol):
    """A row of `insight_rows`, a named tuple the shapes' writers read by name; the columns Python
    reads itself."""

    @property
    def id(self) -> int: ...
    @property
    def results_fingerprint(self) -> str | None: ...


# The creators, as JSON objects in the rows (named as the model's relations): the columns of their ids.
_CREATORS = {"created_by": "created_by_id", "last_modified_by": "last_modified_by_id"}


def insight_rows(
    queryset: QuerySet[Insight],
    markers: Markers,
    *extra: str,
    limit: str | None = None,
    offset: str | None = None,
) -> Prepared:
    """The statement of `queryset`'s rows as INSIGHT_COLUMNS, the creators and `extra` columns, with
    `markers`' stand-ins (and `limit` and `offset`) for the values of each run."""
    creators = {f"{name}_user": user_basic_json(column) for name, column in _CREATORS.items()}
    rows = queryset.annotate(**creators).values_list(*INSIGHT_COLUMNS, *creators, *extra)
    rename = {f"{name}_user": name for name in _CREATORS}  # annotations cannot take a relation's name
    return prepare(rows, markers, rename=rename, limit=limit, offset=offset)


def activity_list(*, project_id: int, caller: Caller, insight_id: int | None = None) -> QuerySet[ActivityLog]:
    """The project's activity entries (those of one insight, when given) on the insights the caller
    may see, newest first, each carrying the caller's level on its insight as `user_access_level`:
    what the caller may see of an entry depends on it (`activity_changes_shown`)."""
    visible = insights_visible_to(project_id=project_id, caller=caller)
    level = visible.filter(id=OuterRef("insight_id")).values(LEVEL)[:1]
    of_insight = {} if insight_id is None else {"insight_id": insight_id}
    entries = ActivityLog.objects.filter(project_id=project_id, **of_insight)
    entries = entries.filter(insight_id__in=visible.values("id")).annotate(**{LEVEL: Subquery(level)})
    return entries.select_related("user").order_by("-created_at", "-id")
