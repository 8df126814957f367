"""Writes of insight views: recording views, rolling them up by day, pruning old raw events."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from accounts.models import Project, User
from insights.models import Insight
from viewtracking.models import InsightViewDaily, InsightViewed, ViewEvent

_VIEWED = InsightViewed._meta.db_table
_EVENT = ViewEvent._meta.db_table
_DAILY = InsightViewDaily._meta.db_table
_INSIGHT = Insight._meta.db_table
# First key of the rollup's advisory lock ("roll" in ASCII): one rollup at a time.
ROLLUP_LOCK = 0x726F6C6C


def views_record(*, project: Project, user: User, insight_ids: Sequence[int]) -> int:
    """Record that `user` viewed these insights now, in one statement: the live insights of the
    project among `insight_ids` (others are dropped silently, duplicates count once) get the user's
    last-viewed time upserted and one view event each. Returns how many insights were kept."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH kept AS (
                SELECT insight.id FROM {_INSIGHT} AS insight
                WHERE insight.project_id = %(project)s AND insight.id = ANY(%(ids)s::bigint[])
                  AND NOT insight.deleted
            ), last_viewed AS (
                INSERT INTO {_VIEWED} (project_id, user_id, insight_id, last_viewed_at)
                SELECT %(project)s, %(user)s, kept.id, %(now)s FROM kept ORDER BY kept.id
                ON CONFLICT (user_id, insight_id) DO UPDATE SET last_viewed_at = EXCLUDED.last_viewed_at
            )
            INSERT INTO {_EVENT} (project_id, insight_id, user_id, viewed_at, rolled_up)
            SELECT %(project)s, kept.id, %(user)s, %(now)s, false FROM kept
            """,
            {"project": project.id, "user": user.pk, "now": timezone.now(), "ids": sorted(set(insight_ids))},
        )
        return cursor.rowcount


@dataclass(frozen=True)
class RollupResult:
    ran: bool  # False when another rollup held the lock
    events: int
    days: list[date]


@transaction.atomic
def views_rollup() -> RollupResult:
    """Fold un-rolled view events into per-insight, per-day rows, recomputing each touched day.

    Steps, in one transaction: 1. take the rollup lock or give up (another rollup is running);
    2. mark every un-rolled event as rolled up, noting the days they fall on; 3. recompute those days'
    views and unique viewers from all their rolled-up events and upsert them. Events that arrive
    meanwhile stay un-rolled, so trending (rollups + un-rolled events) is exact at every moment, and
    running this again changes nothing.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s, 0)", [ROLLUP_LOCK])
        if not cursor.fetchone()[0]:
            return RollupResult(ran=False, events=0, days=[])
        cursor.execute(
            f"""
            WITH marked AS (
                UPDATE {_EVENT} SET rolled_up = true WHERE NOT rolled_up
                RETURNING (viewed_at AT TIME ZONE 'UTC')::date AS day
            )
            SELECT day, count(*) FROM marked GROUP BY day ORDER BY day
            """
        )
        touched = cursor.fetchall()
        days = [day for day, _ in touched]
        if days:
            cursor.execute(
                f"""
                INSERT INTO {_DAILY} (project_id, insight_id, day, views, unique_viewers)
                SELECT project_id, insight_id, (viewed_at AT TIME ZONE 'UTC')::date, count(*), count(DISTINCT user_id)
                FROM {_EVENT}
                WHERE rolled_up AND viewed_at >= %(start)s AND viewed_at < %(end)s
                  AND (viewed_at AT TIME ZONE 'UTC')::date = ANY(%(days)s::date[])
                GROUP BY project_id, insight_id, (viewed_at AT TIME ZONE 'UTC')::date
                ON CONFLICT (insight_id, day) DO UPDATE
                    SET views = EXCLUDED.views, unique_viewers = EXCLUDED.unique_viewers
                """,
                {
                    "days": days,
                    "start": _utc_midnight(days[0]),
                    "end": _utc_midnight(days[-1] + timedelta(days=1)),
                },
            )
    return RollupResult(ran=True, events=sum(count for _, count in touched), days=days)


@transaction.atomic
def view_events_prune(*, older_than_days: int) -> int:
    """Delete raw view events older than the retention window, but only those already rolled up
    (an event the rollup has not reached is never lost). Rollups are kept."""
    cutoff = timezone.now() - timedelta(days=older_than_days)
    deleted, _ = ViewEvent.objects.filter(viewed_at__lt=cutoff, rolled_up=True).delete()
    return deleted


@transaction.atomic
def view_rollups_prune(*, older_than_days: int) -> int:
    cutoff = (timezone.now() - timedelta(days=older_than_days)).date()
    deleted, _ = InsightViewDaily.objects.filter(day__lt=cutoff).delete()
    return deleted


def _utc_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
