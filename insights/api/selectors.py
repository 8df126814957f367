"""Reads of insights as the routes answer with them: the rows the insight shapes are written from
(`insight_rows`: the insight, its tags, dashboards, creators and latest view), each read one
statement over the caller's visible insights (`insights_statement`), compiled once per process.

They sit in insights' HTTP layer, beside the shapes, rather than in `insights/selectors.py`: the
shapes embed tagging's tags and viewtracking's views, and only this layer of insights may read those
apps (pyproject.toml's import contracts). Reads that need no satellite are in the apps' own
selectors (`insight_found`, `trending_list`, `usage_summary`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable

from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from accounts.caller import Caller
from infra.db.compiled import Prepared, prepare
from insights.models import Insight
from insights.selectors import (
    CallerStatement,
    InsightFilters,
    InsightRow,
    VisibleInsights,
    insight_rows,
    insights_annotate_dashboards,
    insights_filter,
    insights_order,
    insights_statement,
)
from tagging.selectors import insights_annotate_tags
from viewtracking.selectors import (
    TrendingPage,
    insights_annotate_last_viewed_at,
    insights_annotate_recent_viewers,
    insights_not_viewed_since,
    my_last_viewed,
)


@functools.cache
def insights_shown() -> QuerySet[Insight]:
    """All insights with what their shapes show (tags, dashboards, latest view; the creators are
    columns of `insight_rows`), built once per process: building the annotations costs more than
    cloning them (`.all()`), and this queryset itself is never evaluated, only its clones."""
    queryset = Insight.objects.all()
    return insights_annotate_dashboards(insights_annotate_tags(insights_annotate_last_viewed_at(queryset)))


def insights_page(
    *, project_id: int, caller: Caller, filters: InsightFilters, limit: int, offset: int
) -> list[InsightRow]:
    """A page of the list: the live insights the caller may see that match `filters`, in
    `filters.order`; one statement for each shape of the filters (InsightFilters.shape), or for this
    request alone when a filter carries its own values."""

    def build(visible: VisibleInsights) -> Prepared:
        listed = insights_order(_listed(visible, filters), filters.order)
        return insight_rows(listed, visible.markers, limit="limit", offset="offset")

    return _shown(_shaped("insights page", filters), project_id, caller, build).rows(
        limit=limit, offset=offset
    )


def insights_count(*, project_id: int, caller: Caller, filters: InsightFilters) -> int:
    """How many insights the list holds for `filters` (for a full page: a short one is the end)."""

    def build(visible: VisibleInsights) -> Prepared:
        return prepare(_listed(visible, filters).values_list("id"), visible.markers)

    statement = insights_statement(
        _shaped("insights count", filters), project_id=project_id, caller=caller, build=build
    )
    return statement.count()


def _shaped(read: str, filters: InsightFilters) -> tuple[str, tuple[object, ...]] | None:
    """The key of a list read's statement: the read and the shape of its filters (None: its own)."""
    shape = filters.shape()
    return None if shape is None else (read, shape)


def _listed(visible: VisibleInsights, filters: InsightFilters) -> QuerySet[Insight]:
    # The caller's own insights (`mine`) are the stand-in caller's: one statement serves every caller.
    found = insights_filter(queryset=visible.insights, filters=filters, caller_id=visible.caller_id)
    return insights_not_viewed_since(found, filters.not_viewed_since)


def insights_by_id(*, project_id: int, caller: Caller, ids: list[int]) -> list[InsightRow]:
    """The rows of these insights the caller may see, deleted or not, in no particular order."""
    return _by_id("insights by id", project_id, caller, ids)


def trending_insights(*, project_id: int, caller: Caller, page: TrendingPage) -> list[InsightRow]:
    """The insights of a page of `trending_list` the caller may see, in the page's order, each with
    up to three recent viewers (`recent_viewers`)."""
    ranked = [row.insight_id for row in page.rows]
    found = _by_id(
        "trending insights", project_id, caller, ranked, insights_annotate_recent_viewers, "recent_viewers"
    )
    by_id = {insight.id: insight for insight in found}
    return [by_id[insight_id] for insight_id in ranked if insight_id in by_id]


def _by_id(
    read: str,
    project_id: int,
    caller: Caller,
    ids: list[int],
    annotate: Callable[[QuerySet[Insight]], QuerySet[Insight]] | None = None,
    *extra: str,
) -> list[InsightRow]:
    """The caller's visible rows of these insights, with `extra` columns of `annotate`."""

    def build(visible: VisibleInsights) -> Prepared:
        wanted = RawSQL("SELECT unnest(%s::bigint[])", (visible.markers.numbers("ids"),))
        queryset = visible.insights.filter(id__in=wanted)
        return insight_rows(annotate(queryset) if annotate else queryset, visible.markers, *extra)

    return _shown(read, project_id, caller, build).rows(ids=ids)


def my_last_viewed_list(*, project_id: int, caller: Caller) -> list[InsightRow]:
    """The caller's five most recently viewed live insights, most recent first, each with the
    caller's own latest view as `last_viewed_at` (`my_last_viewed`)."""

    def build(visible: VisibleInsights) -> Prepared:
        viewed = my_last_viewed(queryset=visible.insights, user_id=visible.caller_id)
        return insight_rows(viewed, visible.markers)

    return _shown("my last viewed", project_id, caller, build).rows()


def _shown(
    key: Hashable | None, project_id: int, caller: Caller, build: Callable[[VisibleInsights], Prepared]
) -> CallerStatement:
    """`insights_statement` over the insights with what their shapes show."""
    return insights_statement(key, project_id=project_id, caller=caller, build=build, start=insights_shown())
