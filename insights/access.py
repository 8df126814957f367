"""Who may see and change an insight (docs/access-control.md): one rule, as a condition of the statement that
loads the insights, so a page costs no extra statement and no route can apply it differently.

A caller's effective level on an insight: `editor` when they created it or administer its
organization; otherwise their override on it, if any; otherwise the insight's own level. `none` makes
the insight invisible; `viewer` makes it read-only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Case, F, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce

from accounts.caller import Caller
from accounts.models import User
from infra.json_types import JSONObject
from insights.activity import FieldChange, activity_entry, activity_log_write
from insights.models import AccessLevel, ActivityLog, Insight, InsightAccessOverride

# Named after the field every insight shape carries.
LEVEL = "user_access_level"
# The activity log's field for a change of the access controls.
ACCESS_CONTROLS = "access_controls"


def insights_visible(queryset: QuerySet[Insight], caller: Caller) -> QuerySet[Insight]:
    """The insights of `queryset` the caller may see, each annotated with their `user_access_level`."""
    # django-stubs types `annotate(**{name: ...})` as Any; it is a queryset of the same insights.
    visible: QuerySet[Insight]
    if caller.is_admin:
        visible = queryset.annotate(**{LEVEL: Value(AccessLevel.EDITOR.value)})
        return visible
    override = InsightAccessOverride.objects.filter(insight_id=OuterRef("id"), user_id=caller.user_id)
    level = Case(
        When(created_by_id=caller.user_id, then=Value(AccessLevel.EDITOR.value)),
        default=Coalesce(Subquery(override.values("access_level")[:1]), F("access_level")),
    )
    visible = queryset.annotate(**{LEVEL: level}).exclude(**{LEVEL: AccessLevel.NONE.value})
    return visible


def insights_editable(queryset: QuerySet[Insight]) -> QuerySet[Insight]:
    """Those of already visible insights the caller may change."""
    return queryset.filter(**{LEVEL: AccessLevel.EDITOR.value})


@dataclass(frozen=True)
class AccessControls:
    """An insight's level and its members' overrides (`user_id` → level), as the API shows them."""

    access_level: str
    members: dict[int, str]

    def as_json(self) -> JSONObject:
        return {
            "access_level": self.access_level,
            "members": [
                {"user_id": user_id, "access_level": level} for user_id, level in sorted(self.members.items())
            ],
        }


def access_controls_get(insight: Insight) -> AccessControls:
    overrides = InsightAccessOverride.objects.filter(insight_id=insight.id).values_list(
        "user_id", "access_level"
    )
    return AccessControls(insight.access_level, dict(overrides))


@transaction.atomic
def access_controls_set(
    *, insight: Insight, user: User, controls: AccessControls, request_id: uuid.UUID
) -> AccessControls:
    """Replace the insight's level and overrides; log the change (if any) to the activity log."""
    locked = Insight.objects.select_for_update().get(pk=insight.pk)
    before = access_controls_get(locked)
    if before == controls:
        return before
    if locked.access_level != controls.access_level:
        locked.access_level = controls.access_level
        locked.save(update_fields=["access_level", "updated_at"])
    InsightAccessOverride.objects.filter(insight_id=locked.id).exclude(
        user_id__in=list(controls.members)
    ).delete()
    InsightAccessOverride.objects.bulk_create(
        [
            InsightAccessOverride(insight_id=locked.id, user_id=uid, access_level=lvl)
            for uid, lvl in controls.members.items()
        ],
        update_conflicts=True,
        unique_fields=["insight", "user"],
        update_fields=["access_level"],
    )
    change = FieldChange(ACCESS_CONTROLS, before.as_json(), controls.as_json())
    activity_log_write(
        [
            activity_entry(
                insight=locked,
                user=user,
                activity=ActivityLog.Activity.UPDATED,
                changes=[change],
                request_id=request_id,
            )
        ]
    )
    return controls


def activity_changes_shown(changes: list[JSONObject], *, level: str | None) -> list[JSONObject]:
    """An activity entry's changes as a caller whose level on its insight is `level` may see them:
    an editor sees them whole; anyone else sees that the access controls changed, with `before` and
    `after` null, since who was given which level is for the insight's editors to know."""
    if level == AccessLevel.EDITOR:
        return changes
    return [
        {**change, "before": None, "after": None} if change.get("field") == ACCESS_CONTROLS else change
        for change in changes
    ]
