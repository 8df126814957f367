"""The activity log: what changed on an insight, field by field."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from accounts.models import User
from infra.json_types import JSONObject, JSONValue
from insights.models import ActivityLog, Insight


@dataclass(frozen=True)
class FieldChange:
    field: str
    before: JSONValue
    after: JSONValue

    def as_json(self) -> JSONObject:
        return {
            "type": "Insight",
            "action": "changed",
            "field": self.field,
            "before": self.before,
            "after": self.after,
        }


def activity_entry(
    *, insight: Insight, user: User | None, activity: str, changes: list[FieldChange], request_id: uuid.UUID
) -> ActivityLog:
    """An unsaved entry, so callers can write many with one bulk_create."""
    return ActivityLog(
        project_id=insight.project_id,
        insight=insight,
        user=user,
        activity=activity,
        request_id=request_id,
        detail={
            "name": insight.name or insight.derived_name,
            "short_id": insight.short_id,
            "changes": [change.as_json() for change in changes],
        },
    )


def activity_log_write(entries: list[ActivityLog]) -> None:
    if entries:
        ActivityLog.objects.bulk_create(entries)
