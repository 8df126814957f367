"""Saved insights, the dashboards that show them, and the log of changes made to them."""

from __future__ import annotations

import secrets
import string
import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

SHORT_ID_ALPHABET = string.ascii_letters + string.digits
SHORT_ID_LENGTH = 8


def generate_short_id() -> str:
    """Eight random alphanumerics, never all digits: `…/insights/{id}/` takes either a numeric id
    or a short_id, and an all-digit short_id would be ambiguous with an id."""
    while True:
        candidate = "".join(secrets.choice(SHORT_ID_ALPHABET) for _ in range(SHORT_ID_LENGTH))
        if not candidate.isdigit():
            return candidate


class AccessLevel(models.TextChoices):
    """What a member may do with an insight (docs/access-control.md)."""

    EDITOR = "editor"
    VIEWER = "viewer"
    NONE = "none"


class Insight(models.Model):
    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="insights", db_index=False
    )  # indexed by insight_project_short_id_unique
    short_id = models.CharField(max_length=12, default=generate_short_id)
    name = models.CharField(max_length=400, null=True, blank=True)
    derived_name = models.CharField(max_length=400, null=True, blank=True)
    description = models.CharField(max_length=400, null=True, blank=True)
    query = models.JSONField(null=True, blank=True)
    order = models.IntegerField(null=True, blank=True)
    favorited = models.BooleanField(default=False)
    # PostHog's frontend lists `saved=true` insights; an unsaved one is a draft it created itself.
    saved = models.BooleanField(default=True)
    # The level of the project's members without an override (insights.access).
    access_level = models.CharField(max_length=8, choices=AccessLevel.choices, default=AccessLevel.EDITOR)
    deleted = models.BooleanField(default=False)
    # The fingerprint of the query's normalised runnable form, which names its cached results
    # (insights.query_runner); null when the query is one this service cannot run.
    results_fingerprint = models.CharField(max_length=64, null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_modified_at = models.DateTimeField(auto_now_add=True)
    last_modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    dashboards: models.ManyToManyField[Dashboard, DashboardTile] = models.ManyToManyField(
        "Dashboard", through="DashboardTile", related_name="insights"
    )

    # The caller's level on the insight, annotated by every read of the insights a caller may see
    # (insights.access.insights_visible, as `user_access_level`); not a column.
    user_access_level: str

    class Meta:
        constraints = [
            # Retrieve by short_id within a project.
            models.UniqueConstraint(fields=["project", "short_id"], name="insight_project_short_id_unique"),
        ]
        indexes = [
            # The default list page: a project's live insights, most recently modified first.
            models.Index(
                "project",
                models.F("last_modified_at").desc(),
                name="insight_list_recent_idx",
                condition=Q(deleted=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.derived_name or self.short_id


class Dashboard(models.Model):
    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="dashboards", db_index=False
    )  # indexed by dashboard_project_idx
    name = models.CharField(max_length=400, null=True, blank=True)
    description = models.TextField(blank=True, default="")
    deleted = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        indexes = [
            # Validating the dashboard ids given on insight create/update, per project.
            models.Index(fields=["project", "id"], name="dashboard_project_idx"),
        ]

    def __str__(self) -> str:
        return self.name or f"Dashboard {self.pk}"


class DashboardTile(models.Model):
    """Places an insight on a dashboard."""

    dashboard = models.ForeignKey(
        Dashboard, on_delete=models.CASCADE, related_name="tiles", db_index=False
    )  # indexed by tile_dashboard_insight_unique
    insight = models.ForeignKey(
        Insight, on_delete=models.CASCADE, related_name="dashboard_tiles", db_index=False
    )  # indexed by tile_insight_idx
    layouts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Serves the `dashboards` filter (tiles of a dashboard) and forbids duplicate tiles.
            models.UniqueConstraint(fields=["dashboard", "insight"], name="tile_dashboard_insight_unique"),
        ]
        indexes = [
            # Batch-loading the dashboards of a page of insights.
            models.Index(fields=["insight"], name="tile_insight_idx"),
        ]


class InsightAccessOverride(models.Model):
    """One member's level on one insight, in place of the insight's own."""

    insight = models.ForeignKey(
        Insight, on_delete=models.CASCADE, related_name="access_overrides", db_index=False
    )  # indexed by access_override_insight_user_unique
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    access_level = models.CharField(max_length=8, choices=AccessLevel.choices)

    class Meta:
        constraints = [
            # The caller's override of each insight of a page, looked up in the page's own statement.
            models.UniqueConstraint(fields=["insight", "user"], name="access_override_insight_user_unique"),
        ]


class ActivityLog(models.Model):
    """Who changed what on which insight: one row per change, with before/after per field."""

    class Activity(models.TextChoices):
        CREATED = "created"
        UPDATED = "updated"
        DELETED = "deleted"
        RESTORED = "restored"

    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )  # indexed by activity_project_recent_idx
    insight = models.ForeignKey(
        Insight, on_delete=models.CASCADE, related_name="activity", db_index=False
    )  # indexed by activity_insight_recent_idx
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    activity = models.CharField(max_length=16, choices=Activity.choices)
    # Entries written by one request share its id (bulk tag updates write one per insight).
    request_id = models.UUIDField(default=uuid.uuid4)
    # {"name": ..., "short_id": ..., "changes": [{"field", "before", "after"}]}
    detail = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # GET …/insights/activity/: a project's log, newest first.
            models.Index("project", models.F("created_at").desc(), "id", name="activity_project_recent_idx"),
            # GET …/insights/{id}/activity/: one insight's log, newest first.
            models.Index("insight", models.F("created_at").desc(), "id", name="activity_insight_recent_idx"),
        ]


class Event(models.Model):
    """One captured product-analytics event: the rows Trends and the other insight kinds compute over.

    When one machine is outgrown, the table becomes declaratively RANGE-partitioned by month on
    `timestamp`, each partition carrying the same two indexes, so time-bounded queries touch only
    the months they cover and retention drops whole partitions instead of deleting rows. Beyond one
    node, the next steps are distributing the partitions by `project` with Citus (every query is
    already filtered by one project), or moving events to a columnar engine such as ClickHouse.
    Either way the column names and types below are the contract the query engine is written against.
    """

    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="+", db_index=False
    )  # indexed by event_trends_idx and event_project_time_idx, which both lead with it
    timestamp = models.DateTimeField()
    event = models.CharField(max_length=400)
    distinct_id = models.CharField(max_length=400)
    properties = models.JSONField(default=dict)

    class Meta:
        indexes = [
            # Trends: counts and distinct users of one event over a time range; `distinct_id` is
            # included so `dau` can be answered from the index alone where the visibility map allows.
            models.Index(
                fields=["project", "event", "timestamp"], include=["distinct_id"], name="event_trends_idx"
            ),
            # Series over all events of a project, and retention/pruning by time.
            models.Index(fields=["project", "timestamp"], name="event_project_time_idx"),
        ]
