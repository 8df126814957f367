"""Writes of insight views: recording views, rolling them up by day, pruning old raw events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Project, User
from infra.db.sql import queryset_sql
from insights.models import Insight
from viewtracking.models import (
    InsightLastView,
    InsightViewDaily,
    InsightViewed,
    InsightViewerDay,
    PendingView,
    ProjectViewerDay,
    ViewEvent,
)

_VIEWED = InsightViewed._meta.db_table
_EVENT = ViewEvent._meta.db_table
_PENDING = PendingView._meta.db_table
_DAILY = InsightViewDaily._meta.db_table
_VIEWER_DAY = InsightViewerDay._meta.db_table
_LAST_VIEW = InsightLastView._meta.db_table
_PROJECT_DAY = ProjectViewerDay._meta.db_table
_PROJECT = Project._meta.db_table
# First key of the rollup's advisory lock ("roll" in ASCII): one rollup at a time.
ROLLUP_LOCK = 0x726F6C6C


def views_record(
    *,
    project: Project,
    user: User,
    insight_ids: Sequence[int],
    at: datetime | None = None,
    visible: QuerySet[Insight] | None = None,
) -> int:
    """Record that `user` viewed these insights `at` (default now), in one statement: the live
    insights of the project among `insight_ids` (and of `visible`, the insights the user may see,
    when given; others are dropped silently, duplicates count once) get one view event each, queued
    for the rollup, and the user's last-viewed time moves forward (never back: with several web
    servers, a request with an earlier clock may commit later), and so does the insight's latest view
    by anyone. Returns how many insights were kept."""
    candidates = (visible if visible is not None else Insight.objects.all()).filter(
        project_id=project.id, id__in=sorted(set(insight_ids)), deleted=False
    )
    kept_sql, kept_params = queryset_sql(candidates.values("id"), prefix="kept")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH kept AS ({kept_sql}), last_viewed AS (
                INSERT INTO {_VIEWED} (project_id, user_id, insight_id, last_viewed_at)
                SELECT %(project)s, %(user)s, kept.id, %(now)s FROM kept ORDER BY kept.id
                ON CONFLICT (user_id, insight_id) DO UPDATE
                SET last_viewed_at = GREATEST({_VIEWED}.last_viewed_at, EXCLUDED.last_viewed_at)
            ), latest AS (
                INSERT INTO {_LAST_VIEW} (insight_id, project_id, last_viewed_at)
                SELECT kept.id, %(project)s, %(now)s FROM kept ORDER BY kept.id
                ON CONFLICT (insight_id) DO UPDATE
                SET last_viewed_at = GREATEST({_LAST_VIEW}.last_viewed_at, EXCLUDED.last_viewed_at)
            ), events AS (
                INSERT INTO {_EVENT} (project_id, insight_id, user_id, viewed_at)
                SELECT %(project)s, kept.id, %(user)s, %(now)s FROM kept
                RETURNING id, insight_id
            )
            INSERT INTO {_PENDING} (event_id, project_id, insight_id, viewed_at)
            SELECT events.id, %(project)s, events.insight_id, %(now)s FROM events
            """,
            {"project": project.id, "user": user.pk, "now": at or timezone.now(), **kept_params},
        )
        inserted: int = cursor.rowcount
        return inserted


@dataclass(frozen=True)
class RollupResult:
    ran: bool  # False when another rollup held the lock
    events: int
    days: list[date]  # the UTC days recomputed


@transaction.atomic
def views_rollup() -> RollupResult:
    """Fold queued view events into per-insight, per-day rows, recomputing each touched day.

    Steps, in one transaction: 1. take the rollup lock or give up (another rollup is running);
    2. take every queued (pending) view off the queue, noting the UTC days and the project's own days
    they fall on; 3. recompute those UTC days' views and unique viewers per insight (trending's
    rows); 4. recompute those project days' views per insight and user (the usage routes' rows), each
    from all their events that are no longer queued, and upsert them; 5. sum those per user and
    project day (the rows of `usage`). Views queued meanwhile stay
    queued and uncounted here, so every reader (rollups + queue) is exact at every moment, and
    running this again changes nothing.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, 0)", [ROLLUP_LOCK])
        if not cursor.fetchone()[0]:
            return RollupResult(ran=False, events=0, days=[])
        cursor.execute(
            f"""
            WITH taken AS (DELETE FROM {_PENDING} RETURNING project_id, viewed_at)
            SELECT (taken.viewed_at AT TIME ZONE 'UTC')::date, taken.project_id,
                   (taken.viewed_at AT TIME ZONE project.timezone)::date, count(*)
            FROM taken JOIN {_PROJECT} AS project ON project.id = taken.project_id
            GROUP BY 1, 2, 3 ORDER BY 1
            """
        )
        touched = cursor.fetchall()
        days = sorted({row[0] for row in touched})
        if days:
            cursor.execute(
                f"""
                INSERT INTO {_DAILY} (project_id, insight_id, day, views, unique_viewers)
                SELECT e.project_id, e.insight_id, (e.viewed_at AT TIME ZONE 'UTC')::date, count(*),
                       count(DISTINCT e.user_id)
                FROM {_EVENT} AS e
                WHERE e.viewed_at >= %(start)s AND e.viewed_at < %(end)s
                  AND (e.viewed_at AT TIME ZONE 'UTC')::date = ANY(%(days)s::date[])
                  AND NOT EXISTS (SELECT 1 FROM {_PENDING} AS queued WHERE queued.event_id = e.id)
                GROUP BY e.project_id, e.insight_id, (e.viewed_at AT TIME ZONE 'UTC')::date
                ON CONFLICT (insight_id, day) DO UPDATE
                    SET views = EXCLUDED.views, unique_viewers = EXCLUDED.unique_viewers
                """,
                {
                    "days": days,
                    "start": _utc_midnight(days[0]),
                    "end": _utc_midnight(days[-1] + timedelta(days=1)),
                },
            )
            local_days = sorted({(project_id, day) for _, project_id, day, _ in touched})
            first, last = min(day for _, day in local_days), max(day for _, day in local_days)
            cursor.execute(
                VIEWER_DAYS_SQL,
                {
                    "projects": [project_id for project_id, _ in local_days],
                    "days": [day for _, day in local_days],
                    # Local days begin up to 14 hours either side of their UTC day.
                    "start": _utc_midnight(first - timedelta(days=1)),
                    "end": _utc_midnight(last + timedelta(days=2)),
                },
            )
            cursor.execute(
                PROJECT_DAYS_SQL,
                {
                    "projects": [project_id for project_id, _ in local_days],
                    "days": [day for _, day in local_days],
                },
            )
    return RollupResult(ran=True, events=sum(row[-1] for row in touched), days=days)


# Step 4 of the rollup: each (project, day of its time zone) recomputed per insight and user from the
# events of that local day that are no longer queued. Events are read by time (view_event_day_idx,
# between `start` and `end`, which hold every touched local day whatever its zone) and matched to the
# touched days by their own local day: an equality, so a hash join.
VIEWER_DAYS_SQL = f"""
WITH touched AS (
    SELECT project_id, day FROM unnest(%(projects)s::bigint[], %(days)s::date[]) AS t(project_id, day)
)
INSERT INTO {_VIEWER_DAY} (project_id, insight_id, user_id, day, views)
SELECT e.project_id, e.insight_id, e.user_id, touched.day, count(*)
FROM {_EVENT} AS e
JOIN {_PROJECT} AS project ON project.id = e.project_id
JOIN touched
  ON touched.project_id = e.project_id AND touched.day = (e.viewed_at AT TIME ZONE project.timezone)::date
WHERE e.viewed_at >= %(start)s AND e.viewed_at < %(end)s
  AND NOT EXISTS (SELECT 1 FROM {_PENDING} AS queued WHERE queued.event_id = e.id)
GROUP BY e.project_id, e.insight_id, e.user_id, touched.day
ON CONFLICT (insight_id, day, user_id) DO UPDATE SET views = EXCLUDED.views
"""

# Step 5: the same project days per user, over all insights, summed from step 4's rows.
PROJECT_DAYS_SQL = f"""
INSERT INTO {_PROJECT_DAY} (project_id, user_id, day, views)
SELECT viewer_day.project_id, viewer_day.user_id, viewer_day.day, sum(viewer_day.views)
FROM unnest(%(projects)s::bigint[], %(days)s::date[]) AS touched(project_id, day)
JOIN {_VIEWER_DAY} AS viewer_day
  ON viewer_day.project_id = touched.project_id AND viewer_day.day = touched.day
GROUP BY viewer_day.project_id, viewer_day.user_id, viewer_day.day
ON CONFLICT (project_id, day, user_id) DO UPDATE SET views = EXCLUDED.views
"""


@transaction.atomic
def view_events_prune(*, older_than_days: int) -> int:
    """Delete raw view events older than the retention window, but only those already rolled up
    (an event the rollup has not reached is never lost). Rollups are kept."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    queued = PendingView.objects.values("event_id")
    deleted, _ = ViewEvent.objects.filter(viewed_at__lt=cutoff).exclude(id__in=queued).delete()
    return deleted


@transaction.atomic
def view_rollups_prune(*, older_than_days: int) -> int:
    cutoff = (timezone.now() - timedelta(days=older_than_days)).date()
    deleted, _ = InsightViewDaily.objects.filter(day__lt=cutoff).delete()
    viewer_days, _ = InsightViewerDay.objects.filter(day__lt=cutoff).delete()
    project_days, _ = ProjectViewerDay.objects.filter(day__lt=cutoff).delete()
    return deleted + viewer_days + project_days


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
