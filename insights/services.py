"""Writes to insights and their dashboard tiles. Each logs its changes to the activity log.

Tags and views live in other apps; the API layer combines those writes with these in one transaction
(see insights/api/editing.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Project, User
from infra.json_types import JSONObject, JSONValue
from insights.activity import FieldChange, activity_entry, activity_log_write
from insights.locking import project_writes_lock
from insights.models import ActivityLog, DashboardTile, Insight
from insights.query_runner import insight_results_fingerprint

# Fields a caller may set on an insight, with the value PUT resets them to when omitted.
EDITABLE_FIELDS: dict[str, JSONValue] = {
    "name": None,
    "derived_name": None,
    "description": None,
    "query": None,
    "order": None,
    "favorited": False,
    "saved": True,
}


@transaction.atomic
def insight_create(
    *,
    project: Project,
    user: User,
    fields: Mapping[str, JSONValue],
    dashboard_ids: list[int],
    extra_changes: Sequence[FieldChange] = (),
    request_id: uuid.UUID,
) -> Insight:
    insight = Insight.objects.create(
        project=project,
        created_by=user,
        last_modified_by=user,
        results_fingerprint=insight_results_fingerprint(fields.get("query")),
        **_editable(fields),
    )
    DashboardTile.objects.bulk_create(
        [DashboardTile(dashboard_id=dashboard_id, insight=insight) for dashboard_id in dashboard_ids]
    )
    # What differs from a fresh insight's defaults is what the creator chose.
    changes = [
        FieldChange(field, None, value)
        for field, value in _editable(fields).items()
        if value != EDITABLE_FIELDS[field]
    ]
    if dashboard_ids:
        changes.append(FieldChange("dashboards", [], sorted(dashboard_ids)))
    activity_log_write(
        [
            activity_entry(
                insight=insight,
                user=user,
                activity=ActivityLog.Activity.CREATED,
                changes=changes + list(extra_changes),
                request_id=request_id,
            )
        ]
    )
    return insight


@transaction.atomic
def insight_update(
    *,
    insight: Insight,
    user: User,
    fields: Mapping[str, JSONValue],
    dashboard_ids: list[int] | None,
    deleted: bool | None,
    extra_changes: Sequence[FieldChange] = (),
    request_id: uuid.UUID,
) -> Insight:
    """Apply the given fields (absent ones are untouched), replace the dashboards if given, and
    soft-delete or restore. Writes only what changed and logs one activity entry for it."""
    # Lock the row so concurrent edits of one insight serialise and each logs a true before/after.
    locked = Insight.objects.select_for_update().get(pk=insight.pk)
    changes = [
        FieldChange(field, getattr(locked, field), value)
        for field, value in _editable(fields).items()
        if getattr(locked, field) != value
    ]
    for change in changes:
        setattr(locked, change.field, change.after)
        if change.field == "query":
            locked.results_fingerprint = insight_results_fingerprint(change.after)
    if dashboard_ids is not None:
        changes.extend(_dashboards_replace(locked, dashboard_ids))
    activity = ActivityLog.Activity.UPDATED
    if deleted is not None and deleted != locked.deleted:
        changes.append(FieldChange("deleted", locked.deleted, deleted))
        locked.deleted = deleted
        activity = ActivityLog.Activity.DELETED if deleted else ActivityLog.Activity.RESTORED
    changes.extend(extra_changes)
    if changes:
        locked.last_modified_at = timezone.now()
        locked.last_modified_by = user
        locked.save()
        activity_log_write(
            [
                activity_entry(
                    insight=locked, user=user, activity=activity, changes=changes, request_id=request_id
                )
            ]
        )
    return locked


@dataclass(frozen=True)
class BulkDeleteResult:
    updated: list[int]  # in request order; each now has the requested `deleted`
    skipped: list[int]


@transaction.atomic
def insights_bulk_delete(
    *,
    project: Project,
    user: User,
    insight_ids: Sequence[int],
    deleted: bool,
    dry_run: bool,
    request_id: uuid.UUID,
    editable: QuerySet[Insight],
) -> BulkDeleteResult:
    """bulk_delete (`deleted=True`) and bulk_restore (`deleted=False`): one transaction, with
    bulk_update_tags' semantics. Insights of `editable` (the project's insights the caller may
    change, deleted or not) are updated — already in that state counts as updated and changes
    nothing; the others are skipped. Each changed insight gets one activity entry (`request_id`
    shared) and a new last-modified stamp.

    Steps, one statement each: 1. take the project's lock of many-insight writes (insights/locking.py);
    2. load and lock the insights, in id order; 3. flip those not yet in the state; 4. log them.
    """
    ordered_ids = list(dict.fromkeys(insight_ids))
    if not dry_run:
        project_writes_lock(project.id)
    found = editable.filter(project_id=project.id, id__in=ordered_ids).order_by("id")
    if not dry_run:
        # NO KEY UPDATE, as the UPDATE below takes anyway: it leaves alone the KEY SHARE locks that
        # inserts referencing these insights take (view events, activity), so those never wait on it.
        found = found.select_for_update(of=("self",), no_key=True)
    insights = {
        insight.id: insight
        for insight in found.only("id", "deleted", "name", "derived_name", "short_id", "project_id")
    }
    changed = [
        insight_id
        for insight_id in ordered_ids
        if insight_id in insights and insights[insight_id].deleted != deleted
    ]
    if changed and not dry_run:
        Insight.objects.filter(id__in=changed).update(
            deleted=deleted, last_modified_at=timezone.now(), last_modified_by=user
        )
        activity_log_write(
            [
                activity_entry(
                    insight=insights[insight_id],
                    user=user,
                    activity=ActivityLog.Activity.DELETED if deleted else ActivityLog.Activity.RESTORED,
                    changes=[FieldChange("deleted", not deleted, deleted)],
                    request_id=request_id,
                )
                for insight_id in changed
            ]
        )
    return BulkDeleteResult(
        updated=[insight_id for insight_id in ordered_ids if insight_id in insights],
        skipped=[insight_id for insight_id in ordered_ids if insight_id not in insights],
    )


def _dashboards_replace(insight: Insight, dashboard_ids: list[int]) -> list[FieldChange]:
    current = set(DashboardTile.objects.filter(insight=insight).values_list("dashboard_id", flat=True))
    wanted = set(dashboard_ids)
    if current == wanted:
        return []
    DashboardTile.objects.filter(insight=insight, dashboard_id__in=current - wanted).delete()
    DashboardTile.objects.bulk_create(
        [DashboardTile(dashboard_id=dashboard_id, insight=insight) for dashboard_id in wanted - current],
        ignore_conflicts=True,
    )
    return [FieldChange("dashboards", sorted(current), sorted(wanted))]


def _editable(fields: Mapping[str, JSONValue]) -> JSONObject:
    return {field: value for field, value in fields.items() if field in EDITABLE_FIELDS}
