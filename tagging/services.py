"""Tag writes. Every path (create, PATCH/PUT, bulk_update_tags) goes through `tags_apply`, which
runs a fixed number of SQL statements whatever the number of insights and tags.

Concurrency: tag writers of one project serialise on a transaction-scoped advisory lock, taken
first. That makes every outcome equal to some serial order of the requests, and it closes the race
where one request deletes a tag as an orphan while another is attaching it. Tag writes are rare and
short next to reads, so a per-project lock costs little.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Project, User
from insights.activity import FieldChange, activity_entry, activity_log_write
from insights.models import ActivityLog, Insight
from tagging.models import Tag, TaggedItem

TagAction = Literal["add", "remove", "set"]
# First key of the two-key advisory lock: "tags" in ASCII, so it cannot collide with other lock users.
ADVISORY_LOCK_NAMESPACE = 0x74616773

_TAG = Tag._meta.db_table
_ITEM = TaggedItem._meta.db_table


@dataclass
class TagsOutcome:
    """What `tags_apply` found and did. `before`/`after` hold sorted names for each found insight."""

    insights: dict[int, Insight] = field(default_factory=dict)
    before: dict[int, list[str]] = field(default_factory=dict)
    after: dict[int, list[str]] = field(default_factory=dict)

    @property
    def changed_ids(self) -> list[int]:
        return [
            insight_id for insight_id in self.insights if self.before[insight_id] != self.after[insight_id]
        ]


def tags_apply(
    *,
    project: Project,
    insight_ids: Sequence[int],
    action: TagAction,
    names: Sequence[str],
    include_deleted: bool = False,
    dry_run: bool = False,
    editable: QuerySet[Insight] | None = None,
) -> TagsOutcome:
    """Add, remove or set the (already normalised) `names` on the project's insights `insight_ids`
    (those of `editable`, when given: the ones the caller may change).

    Steps, one statement each: 1. lock the project's tag writes; 2. load the insights that exist
    here; 3. load their current tags; 4. create missing tags and resolve ids; 5. detach; 6. attach;
    7. delete tags left attached to nothing.
    """
    assert connection.in_atomic_block, "tags_apply must run inside the caller's transaction"
    outcome = TagsOutcome()
    if not dry_run:
        _lock_project_tags(project.id)
    found = (editable if editable is not None else Insight.objects.all()).filter(
        project_id=project.id, id__in=list(insight_ids)
    )
    if not include_deleted:
        found = found.filter(deleted=False)
    outcome.insights = {
        insight.id: insight for insight in found.only("id", "name", "derived_name", "short_id", "project_id")
    }
    current: dict[int, set[str]] = {insight_id: set() for insight_id in outcome.insights}
    tag_ids: dict[str, int] = {}
    for insight_id, tag_id, name in TaggedItem.objects.filter(insight_id__in=list(current)).values_list(
        "insight_id", "tag_id", "tag__name"
    ):
        current[insight_id].add(name)
        tag_ids[name] = tag_id

    requested = set(names)
    for insight_id, tags in current.items():
        if action == "add":
            wanted = tags | requested
        elif action == "remove":
            wanted = tags - requested
        else:
            wanted = set(requested)
        outcome.before[insight_id] = sorted(tags)
        outcome.after[insight_id] = sorted(wanted)
    if dry_run or not outcome.changed_ids:
        return outcome

    attach: list[tuple[int, str]] = []
    detach: list[tuple[int, str]] = []
    for insight_id in outcome.changed_ids:
        before, after = set(outcome.before[insight_id]), set(outcome.after[insight_id])
        attach += [(insight_id, name) for name in after - before]
        detach += [(insight_id, name) for name in before - after]
    if attach:
        tag_ids.update(_tags_upsert(project.id, sorted({name for _, name in attach})))
        _items_insert([(insight_id, tag_ids[name]) for insight_id, name in attach])
    if detach:
        detached_tag_ids = sorted({tag_ids[name] for _, name in detach})
        _items_delete([(insight_id, tag_ids[name]) for insight_id, name in detach])
        _orphans_delete(detached_tag_ids)
    return outcome


@dataclass(frozen=True)
class BulkTagsResult:
    updated: list[tuple[int, list[str]]]  # in request order
    skipped: list[int]


@transaction.atomic
def tags_bulk_update(
    *,
    project: Project,
    user: User,
    insight_ids: Sequence[int],
    action: TagAction,
    names: Sequence[str],
    dry_run: bool,
    request_id: uuid.UUID,
    editable: QuerySet[Insight] | None = None,
) -> BulkTagsResult:
    """bulk_update_tags: one transaction; changed insights get one activity entry each (sharing
    `request_id`) and a new last-modified stamp. Insights not in `editable` are skipped."""
    ordered_ids = list(dict.fromkeys(insight_ids))
    outcome = tags_apply(
        project=project,
        insight_ids=ordered_ids,
        action=action,
        names=names,
        dry_run=dry_run,
        editable=editable,
    )
    changed = outcome.changed_ids
    if changed and not dry_run:
        Insight.objects.filter(id__in=changed).update(last_modified_at=timezone.now(), last_modified_by=user)
        activity_log_write(
            [
                activity_entry(
                    insight=outcome.insights[insight_id],
                    user=user,
                    activity=ActivityLog.Activity.UPDATED,
                    changes=[FieldChange("tags", outcome.before[insight_id], outcome.after[insight_id])],
                    request_id=request_id,
                )
                for insight_id in changed
            ]
        )
    return BulkTagsResult(
        updated=[
            (insight_id, outcome.after[insight_id])
            for insight_id in ordered_ids
            if insight_id in outcome.insights
        ],
        skipped=[insight_id for insight_id in ordered_ids if insight_id not in outcome.insights],
    )


def insight_tags_set(*, project: Project, insight: Insight, names: Sequence[str]) -> FieldChange | None:
    """Replace one insight's tags (create, PATCH, PUT); the caller logs the returned change."""
    outcome = tags_apply(
        project=project, insight_ids=[insight.id], action="set", names=names, include_deleted=True
    )
    if insight.id not in outcome.changed_ids:
        return None
    return FieldChange("tags", outcome.before[insight.id], outcome.after[insight.id])


def _lock_project_tags(project_id: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [ADVISORY_LOCK_NAMESPACE, project_id])


def _tags_upsert(project_id: int, names: list[str]) -> dict[str, int]:
    """Create the tags that do not exist yet and return the ids of all of `names`."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH created AS (
                INSERT INTO {_TAG} (project_id, name)
                SELECT %(project)s, unnest(%(names)s::text[])
                ON CONFLICT (project_id, name) DO NOTHING
                RETURNING id, name
            )
            SELECT id, name FROM created
            UNION ALL
            SELECT id, name FROM {_TAG} WHERE project_id = %(project)s AND name = ANY(%(names)s::text[])
            """,
            {"project": project_id, "names": names},
        )
        return {name: tag_id for tag_id, name in cursor.fetchall()}


def _items_insert(pairs: list[tuple[int, int]]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {_ITEM} (insight_id, tag_id)
            SELECT * FROM unnest(%s::bigint[], %s::bigint[])
            ON CONFLICT DO NOTHING
            """,
            [[insight_id for insight_id, _ in pairs], [tag_id for _, tag_id in pairs]],
        )


def _items_delete(pairs: list[tuple[int, int]]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {_ITEM} AS item
            USING unnest(%s::bigint[], %s::bigint[]) AS gone(insight_id, tag_id)
            WHERE item.insight_id = gone.insight_id AND item.tag_id = gone.tag_id
            """,
            [[insight_id for insight_id, _ in pairs], [tag_id for _, tag_id in pairs]],
        )


def _orphans_delete(tag_ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            DELETE FROM {_TAG} AS tag WHERE tag.id = ANY(%s::bigint[])
            AND NOT EXISTS (SELECT 1 FROM {_ITEM} AS item WHERE item.tag_id = tag.id)
            """,
            [tag_ids],
        )
