"""Reads of insight views: last-viewed annotations, my last viewed, trending, and viewers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.utils import timezone

from accounts.caller import Caller
from accounts.models import Project
from accounts.selectors import user_basic_json
from infra.db.compiled import Markers, Prepared, prepare_sql
from infra.db.sql import queryset_sql
from insights.models import Insight
from insights.selectors import insights_statement, insights_visible_to
from viewtracking.models import InsightLastView, InsightViewDaily, InsightViewed, PendingView

_VIEWED = InsightViewed._meta.db_table
_PENDING = PendingView._meta.db_table
_DAILY = InsightViewDaily._meta.db_table
MY_LAST_VIEWED_LIMIT = 5


def insights_annotate_last_viewed_at(queryset: QuerySet[Insight]) -> QuerySet[Insight]:
    """Annotate each insight with its latest view by anyone (index insight_viewed_latest_idx)."""
    latest = InsightViewed.objects.filter(insight_id=OuterRef("id")).order_by("-last_viewed_at")
    return queryset.annotate(last_viewed_at=Subquery(latest.values("last_viewed_at")[:1]))


def insights_not_viewed_since(queryset: QuerySet[Insight], since: datetime | None) -> QuerySet[Insight]:
    """Those of `queryset` nobody viewed at or after `since` (never-viewed ones included), when
    given: from each insight's latest view (InsightLastView, a hash anti-join)."""
    if since is None:
        return queryset
    recent = InsightLastView.objects.filter(insight_id=OuterRef("id"), last_viewed_at__gte=since)
    return queryset.filter(~Exists(recent))


def my_last_viewed(*, queryset: QuerySet[Insight], user_id: int) -> QuerySet[Insight]:
    """The user's five most recently viewed live insights of the (already project-scoped) queryset,
    most recent first, each with `last_viewed_at` set to this user's latest view."""
    mine = InsightViewed.objects.filter(insight_id=OuterRef("id"), user_id=user_id).values("last_viewed_at")
    return (
        queryset.filter(deleted=False)
        .annotate(last_viewed_at=Subquery(mine[:1]))
        .filter(last_viewed_at__isnull=False)
        .order_by("-last_viewed_at", "-id")[:MY_LAST_VIEWED_LIMIT]
    )


def trending_window_start(*, days: int, now: datetime) -> datetime:
    """The window of `days` days: from 00:00 UTC `days` days ago until now (like Trends' `-7d`)."""
    first_day = (now.astimezone(UTC) - timedelta(days=days)).date()
    return datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)


@dataclass(frozen=True)
class TrendingRow:
    insight_id: int
    view_count: int
    unique_viewers: int
    last_viewed_at: datetime


@dataclass(frozen=True)
class TrendingPage:
    total: int
    rows: list[TrendingRow]


class RankedRow(Protocol):
    """A row of `trending_ranking` (its columns' values as psycopg returns them)."""

    @property
    def insight_id(self) -> int: ...
    @property
    def view_count(self) -> Decimal | int: ...  # a sum
    @property
    def unique_viewers(self) -> int: ...
    @property
    def last_viewed_at(self) -> datetime: ...
    @property
    def total(self) -> int: ...


def trending_rank(
    *, project: Project, days: int, limit: int, offset: int, visible: QuerySet[Insight] | None = None
) -> TrendingPage:
    """Rank the project's live insights (those of `visible`, when given: the caller's) by views in
    the window, in one statement (trending_ranking, compiled here for this call)."""
    markers = Markers()
    ranking = trending_ranking(
        visible=(visible if visible is not None else Insight.objects.all()).filter(
            project_id=markers.number("project")
        ),
        markers=markers,
    )
    start = trending_window_start(days=days, now=timezone.now())
    rows = ranking.rows(project=project.id, **_trending_values(start=start, limit=limit, offset=offset))
    return _trending_page(
        rows, offset=offset, count=lambda: _trending_count(ranked=_live(project, visible), start=start)
    )


def trending_list(*, project_id: int, caller: Caller, days: int, limit: int, offset: int) -> TrendingPage:
    """A page of the project's live insights the caller may see, ranked by views in the last `days`
    days: one statement (trending_ranking), compiled once per process."""
    start = trending_window_start(days=days, now=timezone.now())
    ranking = insights_statement(
        "trending ranking",
        project_id=project_id,
        caller=caller,
        build=lambda visible: trending_ranking(visible=visible.insights, markers=visible.markers),
    )
    return _trending_page(
        ranking.rows(**_trending_values(start=start, limit=limit, offset=offset)),
        offset=offset,
        count=lambda: _trending_count(
            ranked=insights_visible_to(project_id=project_id, caller=caller).filter(deleted=False),
            start=start,
        ),
    )


def trending_ranking(*, visible: QuerySet[Insight], markers: Markers) -> Prepared:
    """The statement ranking the live insights of `visible` (a queryset scoped to the stand-in
    `markers.number("project")`) by views in a window; run it with the project and
    `_trending_values(...)`.

    view_count = rolled-up days in the window + views still queued for the rollup (exact: the
    rollup moves views from one side to the other in a single transaction). unique_viewers and
    last_viewed_at come from the users' latest views: a user viewed since T exactly when their
    latest view is at or after T. Ties: latest view, then id, descending. The last column counts
    every ranked insight (for the page's `count`).
    """
    ranked_sql, ranked_params = queryset_sql(visible.filter(deleted=False).values("id"), prefix="ranked")
    return prepare_sql(
        f"""
        WITH viewers AS (
            SELECT viewed.insight_id, count(*) AS unique_viewers, max(viewed.last_viewed_at) AS last_viewed_at
            FROM {_VIEWED} AS viewed
            WHERE viewed.project_id = %(project)s AND viewed.last_viewed_at >= %(start)s
              AND viewed.insight_id IN ({ranked_sql})
            GROUP BY viewed.insight_id
        ), views AS (
            SELECT insight_id, sum(views) AS views FROM (
                SELECT insight_id, views FROM {_DAILY}
                WHERE project_id = %(project)s AND day >= %(first_day)s
                UNION ALL
                SELECT insight_id, count(*) FROM {_PENDING}
                WHERE project_id = %(project)s AND viewed_at >= %(start)s
                GROUP BY insight_id
            ) AS counted
            GROUP BY insight_id
        )
        SELECT viewers.insight_id, coalesce(views.views, 0), viewers.unique_viewers, viewers.last_viewed_at,
               count(*) OVER ()
        FROM viewers LEFT JOIN views ON views.insight_id = viewers.insight_id
        ORDER BY 2 DESC, viewers.last_viewed_at DESC, viewers.insight_id DESC
        LIMIT %(limit)s OFFSET %(offset)s
        """,
        {**ranked_params, "project": markers.number("project")},
        markers,
        columns=("insight_id", "view_count", "unique_viewers", "last_viewed_at", "total"),
        holes=("start", "first_day", "limit", "offset"),
    )


def _trending_values(*, start: datetime, limit: int, offset: int) -> dict[str, object]:
    """The values of a run of `trending_ranking` for the window from `start`."""
    return {"start": start, "first_day": start.date(), "limit": limit, "offset": offset}


def _trending_page(rows: Sequence[RankedRow], *, offset: int, count: Callable[[], int]) -> TrendingPage:
    """A page of the ranking from its rows; past the end (no rows at an offset) `count()` says how
    many are ranked."""
    if not rows and offset:
        return TrendingPage(total=count(), rows=[])
    return TrendingPage(
        total=rows[0].total if rows else 0,
        rows=[
            TrendingRow(int(r.insight_id), int(r.view_count), int(r.unique_viewers), r.last_viewed_at)
            for r in rows
        ],
    )


def _trending_count(*, ranked: QuerySet[Insight], start: datetime) -> int:
    """How many of `ranked` are ranked (used only for an offset past the end, where the page is empty)."""
    return (
        InsightViewed.objects.filter(last_viewed_at__gte=start, insight__in=ranked)
        .values("insight_id")
        .distinct()
        .count()
    )


def _live(project: Project, visible: QuerySet[Insight] | None) -> QuerySet[Insight]:
    return (visible if visible is not None else Insight.objects.all()).filter(
        project_id=project.id, deleted=False
    )


def insights_annotate_recent_viewers(
    queryset: QuerySet[Insight], *, per_insight: int = 3
) -> QuerySet[Insight]:
    """Up to `per_insight` distinct viewers of each insight, most recent first, as `recent_viewers`
    (dicts in the basic user shape), in the page's own statement (insight_viewed_latest_idx)."""
    latest = (
        InsightViewed.objects.filter(insight_id=OuterRef("id"))
        .order_by("-last_viewed_at", "-user_id")
        .values(viewer=user_basic_json("user_id"))[:per_insight]
    )
    return queryset.annotate(recent_viewers=ArraySubquery(latest))
