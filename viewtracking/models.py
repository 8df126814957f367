"""Insight views: each user's latest view per insight, every view as an event, and daily rollups."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class InsightViewed(models.Model):
    """A user's most recent view of an insight (one row per user and insight, upserted).

    A user viewed an insight since T exactly when this row's `last_viewed_at` ≥ T, so these rows
    also give exact, never-pruned unique-viewer counts for any window.
    """

    # Each foreign key is the leading column of an index below, so none needs its own.
    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    insight = models.ForeignKey(
        "insights.Insight", on_delete=models.CASCADE, related_name="views_last", db_index=False
    )
    last_viewed_at = models.DateTimeField()

    class Meta:
        constraints = [
            # The upsert target of `viewed`.
            models.UniqueConstraint(fields=["user", "insight"], name="insight_viewed_user_insight_unique"),
        ]
        indexes = [
            # my_last_viewed: a user's latest views in a project.
            models.Index(
                "project", "user", models.F("last_viewed_at").desc(), name="insight_viewed_mine_recent_idx"
            ),
            # The list's last_viewed_at and trending's viewers: an insight's latest views.
            models.Index("insight", models.F("last_viewed_at").desc(), name="insight_viewed_latest_idx"),
            # trending: the project's insights viewed since the window start.
            models.Index("project", "last_viewed_at", name="insight_viewed_trending_idx"),
        ]


class ViewEvent(models.Model):
    """One recorded view, never updated. Raw events are kept for VIEW_EVENT_RETENTION_DAYS once
    rolled up; the daily rollups outlive them."""

    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    insight = models.ForeignKey(
        "insights.Insight", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    viewed_at = models.DateTimeField()

    class Meta:
        indexes = [
            # The rollup recomputes whole days; retention prunes old events.
            models.Index("viewed_at", name="view_event_day_idx"),
        ]
        # No index on insight or user: this table takes a row per view, and hard-deleting a user or
        # an insight (admin-only; the API soft-deletes) may afford a scan.


class PendingView(models.Model):
    """A view event the rollup has not counted yet: a small queue beside the append-only events.

    `viewed` writes the event and this row in one statement; the rollup deletes these rows in the
    same transaction that recomputes their days, so a reader sees each event either in a rollup row
    or here, never both and never neither. Keeping the queue apart keeps ViewEvent free of updates
    (no bloat, no dead index entries for trending to wade through). Plain columns, no foreign keys:
    rows live for one rollup interval and come from the statement that wrote their event.
    """

    event_id = models.BigIntegerField(primary_key=True)
    project_id = models.BigIntegerField()
    insight_id = models.BigIntegerField()
    viewed_at = models.DateTimeField()

    class Meta:
        indexes = [
            # trending adds the views of a project the rollup has not reached yet.
            models.Index("project_id", "viewed_at", name="pending_view_trending_idx"),
        ]


class InsightViewDaily(models.Model):
    """Views and unique viewers of an insight on one UTC day, recomputed (never incremented)."""

    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    insight = models.ForeignKey(
        "insights.Insight", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    views = models.PositiveIntegerField()
    unique_viewers = models.PositiveIntegerField()

    class Meta:
        constraints = [
            # The rollup's upsert target; also serves cascading deletes of an insight.
            models.UniqueConstraint(fields=["insight", "day"], name="view_daily_insight_day_unique"),
        ]
        indexes = [
            # trending: a project's daily counts since the window's first day.
            models.Index("project", "day", name="view_daily_trending_idx"),
        ]


class InsightViewerDay(models.Model):
    """One user's views of one insight on one day of the project's time zone, recomputed (never
    incremented) by the rollup and kept as long as the daily rollups.

    Per user, so that the distinct viewers of any window of whole days — a week, a month, a year — is
    one `count(DISTINCT user_id)` over these rows, never a sum of daily figures. Days are the
    project's own (its `timezone` when the day was rolled up): a bucket of the usage routes is a
    set of these days.
    """

    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    insight = models.ForeignKey(
        "insights.Insight", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    views = models.PositiveIntegerField()

    class Meta:
        constraints = [
            # The rollup's upsert target; covers `views` and `viewers` of one insight over a window
            # (an index-only scan) and cascading deletes of an insight.
            models.UniqueConstraint(
                fields=["insight", "day", "user"], include=["views"], name="viewer_day_insight_unique"
            ),
        ]
        indexes = [
            # usage: a project's views per day and user since the window's first day.
            models.Index(
                fields=["project", "day"], include=["user", "insight", "views"], name="viewer_day_usage_idx"
            ),
        ]


class ProjectViewerDay(models.Model):
    """One user's views of all the insights of a project on one day of its time zone: the sum of
    their InsightViewerDay rows, recomputed with them by the rollup.

    `usage` reads these (users x days rows, whatever the number of views) and takes away the views
    of the insights the caller cannot see, or that are deleted, from their own InsightViewerDay
    rows: a user viewed a visible insight that day exactly when something is left.
    """

    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField()
    views = models.PositiveIntegerField()

    class Meta:
        constraints = [
            # The rollup's upsert target; usage: a project's users' views since the window's first day.
            models.UniqueConstraint(
                fields=["project", "day", "user"], include=["views"], name="project_viewer_day_unique"
            ),
        ]


class InsightLastView(models.Model):
    """The latest view of an insight by anyone (one row per viewed insight, moved forward by `viewed`).

    What `usage` and the list's `not_viewed_in_days` ask of every insight of a project at once: a
    hash join with these rows is one pass, where a probe of InsightViewed per insight is thousands.
    """

    insight = models.OneToOneField(
        "insights.Insight", on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    last_viewed_at = models.DateTimeField()

    class Meta:
        indexes = [
            # usage and not_viewed_in_days: a project's insights by their latest view.
            models.Index(fields=["project", "last_viewed_at"], name="insight_last_view_stale_idx"),
        ]
