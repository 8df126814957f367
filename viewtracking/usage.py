"""Reads of usage analytics (docs/usage-analytics.md): an insight's views over time, its viewers, and
the project at a glance.

Every figure is exact and fresh: the per-user daily rollups (InsightViewerDay, days of the project's
time zone) plus the views still queued for the rollup (PendingView, bucketed here in the same time
zone). The rollup moves views from the queue to the rollups in one transaction, so a reader sees each
view once. Distinct viewers of any set of days are one `count(DISTINCT user_id)` over those rows,
never a sum of daily figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from django.db import connection

from accounts.caller import Caller
from accounts.models import User
from infra.db.compiled import Prepared, prepare_sql
from infra.db.sql import queryset_sql
from insights.models import Insight
from insights.selectors import VisibleInsights, insights_statement
from viewtracking.models import (
    InsightLastView,
    InsightViewed,
    InsightViewerDay,
    PendingView,
    ProjectViewerDay,
    ViewEvent,
)

_VIEWER_DAY = InsightViewerDay._meta.db_table
_PROJECT_DAY = ProjectViewerDay._meta.db_table
_LAST_VIEW = InsightLastView._meta.db_table
_INSIGHT = Insight._meta.db_table
_PENDING = PendingView._meta.db_table
_EVENT = ViewEvent._meta.db_table
_VIEWED = InsightViewed._meta.db_table
_USER = User._meta.db_table
INTERVALS = ("day", "week", "month")
TOP_VIEWERS = 5
# The basic user shape (UserBasicSerializer) of the row `u`, built in the statement.
_USER_JSON = "json_build_object('id', u.id, 'uuid', u.uuid, 'email', u.email, 'first_name', u.first_name, 'last_name', u.last_name, 'hedgehog_config', NULL)"


@dataclass(frozen=True)
class Window:
    """Whole days of the project's time zone, `first_day` to `last_day` inclusive."""

    first_day: date
    last_day: date
    tz: ZoneInfo

    @classmethod
    def between(cls, start: datetime, end: datetime, tz: ZoneInfo) -> Window:
        return cls(start.astimezone(tz).date(), end.astimezone(tz).date(), tz)

    @classmethod
    def last_days(cls, days: int, *, now: datetime, tz: ZoneInfo) -> Window:
        """From the start of the day `days` days ago until now (as `-{days}d`)."""
        today = now.astimezone(tz).date()
        return cls(today - timedelta(days=days), today, tz)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time.min, tzinfo=self.tz)

    @property
    def end(self) -> datetime:
        """The first moment after the window (the next local midnight)."""
        return datetime.combine(self.last_day + timedelta(days=1), time.min, tzinfo=self.tz)

    def values(self) -> dict[str, date | datetime | str]:
        return {
            "first_day": self.first_day,
            "last_day": self.last_day,
            "start": self.start,
            "end": self.end,
            "tz": self.tz.key,
        }


def bucket_of(day: date, interval: str) -> date:
    """The first day of the bucket holding `day`: itself, its week's Monday, or its month's first."""
    if interval == "week":
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def buckets(window: Window, interval: str) -> list[date]:
    """Every bucket of the window, oldest first (the first and last may be partial)."""
    found, day = [], bucket_of(window.first_day, interval)
    while day <= window.last_day:
        found.append(day)
        day = _next_bucket(day, interval)
    return found


def _next_bucket(day: date, interval: str) -> date:
    if interval == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=7 if interval == "week" else 1)


# The views of one insight in a window, per user and day: rollups plus the queue.
_INSIGHT_VIEWS = f"""
    SELECT user_id, day, views FROM {_VIEWER_DAY}
    WHERE insight_id = %(insight)s AND day >= %(first_day)s AND day <= %(last_day)s
    UNION ALL
    SELECT event.user_id, (queued.viewed_at AT TIME ZONE %(tz)s)::date, 1
    FROM {_PENDING} AS queued JOIN {_EVENT} AS event ON event.id = queued.event_id
    WHERE queued.project_id = %(project)s AND queued.insight_id = %(insight)s
      AND queued.viewed_at >= %(start)s AND queued.viewed_at < %(end)s
"""


@dataclass(frozen=True)
class Counts:
    view_count: int
    unique_viewers: int


@dataclass(frozen=True)
class ViewSeries:
    total: Counts
    series: list[tuple[date, Counts]]


def insight_views_series(*, insight: Insight, window: Window, interval: str) -> ViewSeries:
    """Views and distinct viewers of the insight per bucket and over the whole window, every bucket
    present (zeros included), oldest first: one statement whatever the number of buckets
    (viewer_day_insight_unique, an index-only scan)."""
    assert interval in INTERVALS
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH counted AS ({_INSIGHT_VIEWS}),
            bucketed AS (
                SELECT date_trunc(%(interval)s, day::timestamp)::date AS bucket, user_id, views FROM counted
            )
            SELECT bucket, coalesce(sum(views), 0)::bigint, count(DISTINCT user_id)
            FROM bucketed GROUP BY GROUPING SETS ((bucket), ())
            """,
            {"insight": insight.id, "project": insight.project_id, "interval": interval, **window.values()},
        )
        rows = cursor.fetchall()
    counted = {bucket: Counts(int(views), int(viewers)) for bucket, views, viewers in rows}
    total = counted.pop(None, Counts(0, 0))
    empty = Counts(0, 0)
    return ViewSeries(total, [(bucket, counted.get(bucket, empty)) for bucket in buckets(window, interval)])


@dataclass(frozen=True)
class Viewer:
    user: dict[str, Any]
    view_count: int
    last_viewed_at: datetime


def insight_viewers(*, insight: Insight, window: Window, limit: int, offset: int) -> list[Viewer]:
    """A page of the users who viewed the insight in the window (which ends now), most recent first,
    with their views in it, in one statement. A user viewed it in the window exactly when their latest
    view (InsightViewed, insight_viewed_latest_idx) is in it; their views come from the rollups and
    the queue, for the page's users only."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH page AS (
                SELECT user_id, last_viewed_at FROM {_VIEWED}
                WHERE insight_id = %(insight)s AND last_viewed_at >= %(start)s
                ORDER BY last_viewed_at DESC, user_id DESC LIMIT %(limit)s OFFSET %(offset)s
            ), counted AS (
                SELECT user_id, sum(views) AS views FROM ({_INSIGHT_VIEWS}) AS views
                WHERE user_id IN (SELECT user_id FROM page) GROUP BY user_id
            )
            SELECT {_USER_JSON}, coalesce(counted.views, 0), page.last_viewed_at
            FROM page JOIN {_USER} AS u ON u.id = page.user_id
            LEFT JOIN counted ON counted.user_id = page.user_id
            ORDER BY page.last_viewed_at DESC, page.user_id DESC
            """,
            {
                "insight": insight.id,
                "project": insight.project_id,
                "limit": limit,
                "offset": offset,
                **window.values(),
            },
        )
        return [Viewer(_json(user), int(views), last) for user, views, last in cursor.fetchall()]


def insight_viewers_count(*, insight: Insight, window: Window) -> int:
    """How many users viewed the insight in the window (for a page that cannot tell)."""
    return InsightViewed.objects.filter(insight_id=insight.id, last_viewed_at__gte=window.start).count()


@dataclass(frozen=True)
class Usage:
    insights: int
    viewed: int
    never_viewed: int
    views: int
    viewers: int
    series: list[tuple[date, Counts]]
    top_viewers: list[tuple[dict[str, Any], int]]


def usage_summary(*, project_id: int, caller: Caller, window: Window) -> Usage:
    """The project at a glance over `window`, counting only the live insights the caller may see:
    one statement (`_usage_statement`), compiled once per process."""
    statement = insights_statement(
        "usage summary", project_id=project_id, caller=caller, build=_usage_statement
    )
    [row] = statement.rows(first_day=window.first_day, start=window.start, tz=window.tz.key)
    return _usage_from_row(row, window)


def _usage_statement(visible: VisibleInsights) -> Prepared:
    """The statement of the project at a glance over the live insights the caller may see, run with
    the window's `first_day`, `start` and `tz`: one row of `insights`, `viewed`, `never_viewed`, `views`, `viewers`, `series` (`[[day, views,
    viewers]]`, days with views only) and `top_viewers` (`[[user, views]]`).

    Only views of those insights count: an insight the caller cannot see, or a deleted one, adds
    nothing to any figure. Views are summed per user and day: each user's views of the whole project
    that day (ProjectViewerDay, at most users x days rows, whatever the number of views), minus their
    views of the hidden insights (InsightViewerDay, through viewer_day_insight_unique: as many rows as
    those insights have), plus the queued views of visible ones; a user viewed something visible that
    day exactly when something is left. Every figure of views and viewers is read from those sums; `viewed` and `never_viewed` come from
    the latest views (InsightViewed, never pruned: one probe of insight_viewed_latest_idx per
    insight), so `viewed` agrees with the list's `not_viewed_in_days` for the same window.
    """
    markers = visible.markers
    live_sql, live_params = queryset_sql(visible.insights.filter(deleted=False).values("id"), prefix="live")
    return prepare_sql(
        f"""
        WITH live AS MATERIALIZED ({live_sql}), hidden AS MATERIALIZED (
            SELECT id FROM {_INSIGHT} WHERE project_id = %(project)s EXCEPT SELECT id FROM live
        ), per_user_day AS MATERIALIZED (
            SELECT user_id, day, sum(views) AS views FROM (
                SELECT user_id, day, views FROM {_PROJECT_DAY}
                WHERE project_id = %(project)s AND day >= %(first_day)s
                UNION ALL
                SELECT viewer_day.user_id, viewer_day.day, -viewer_day.views
                FROM hidden JOIN {_VIEWER_DAY} AS viewer_day
                  ON viewer_day.insight_id = hidden.id AND viewer_day.day >= %(first_day)s
                UNION ALL
                SELECT event.user_id, (queued.viewed_at AT TIME ZONE %(tz)s)::date, 1
                FROM {_PENDING} AS queued JOIN {_EVENT} AS event ON event.id = queued.event_id
                WHERE queued.project_id = %(project)s AND queued.viewed_at >= %(start)s
                  AND queued.insight_id IN (SELECT id FROM live)
            ) AS counted
            GROUP BY user_id, day
            HAVING sum(views) > 0
        ), daily AS (
            SELECT day, sum(views) AS views, count(*) AS viewers FROM per_user_day GROUP BY day
        ), top AS (
            SELECT user_id, sum(views) AS views FROM per_user_day GROUP BY user_id
            ORDER BY views DESC, user_id LIMIT {TOP_VIEWERS}
        ), glance AS (  -- one pass over the live insights and their latest views
            SELECT count(*) AS insights,
                   count(*) FILTER (WHERE latest.last_viewed_at >= %(start)s) AS viewed,
                   count(*) FILTER (WHERE latest.insight_id IS NULL) AS never_viewed
            FROM live LEFT JOIN {_LAST_VIEW} AS latest ON latest.insight_id = live.id
        )
        SELECT
            (SELECT insights FROM glance),
            (SELECT viewed FROM glance),
            (SELECT never_viewed FROM glance),
            (SELECT coalesce(sum(views), 0) FROM per_user_day),
            (SELECT count(DISTINCT user_id) FROM per_user_day),
            (SELECT coalesce(json_agg(json_build_array(day, views, viewers) ORDER BY day), '[]') FROM daily),
            (SELECT coalesce(json_agg(json_build_array({_USER_JSON}, top.views) ORDER BY top.views DESC,
                                      top.user_id), '[]')
             FROM top JOIN {_USER} AS u ON u.id = top.user_id)
        """,
        {**live_params, "project": markers.number("project")},
        markers,
        columns=("insights", "viewed", "never_viewed", "views", "viewers", "series", "top_viewers"),
        holes=("first_day", "start", "tz"),
    )


class _UsageRow(Protocol):
    """The row of `_usage_statement` (its columns' values as psycopg returns them)."""

    @property
    def insights(self) -> int: ...
    @property
    def viewed(self) -> int: ...
    @property
    def never_viewed(self) -> int: ...
    @property
    def views(self) -> Decimal | int: ...  # a sum
    @property
    def viewers(self) -> int: ...
    @property
    def series(self) -> object: ...  # JSON, `[[day, views, viewers]]`
    @property
    def top_viewers(self) -> object: ...  # JSON, `[[user, views]]`


def _usage_from_row(row: _UsageRow, window: Window) -> Usage:
    """A run of `_usage_statement` as figures, the series one point a day (zeros included)."""
    daily = {
        date.fromisoformat(day): Counts(int(views), int(viewers)) for day, views, viewers in _json(row.series)
    }
    empty = Counts(0, 0)
    return Usage(
        insights=int(row.insights),
        viewed=int(row.viewed),
        never_viewed=int(row.never_viewed),
        views=int(row.views),
        viewers=int(row.viewers),
        series=[(day, daily.get(day, empty)) for day in buckets(window, "day")],
        top_viewers=[(user, int(views)) for user, views in _json(row.top_viewers)],
    )


def _json(value: Any) -> Any:
    """A json column as psycopg returns it (decoded already, unless Django's adapters left it text)."""
    if isinstance(value, str):
        import json

        return json.loads(value)
    return value
