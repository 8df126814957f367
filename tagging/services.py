"""Tag writes. Every path on given insights (create, PATCH/PUT, bulk_update_tags) goes through
`tags_apply`; a tag's rename or delete goes through `tag_rename`/`tag_delete`. Each runs a fixed
number of SQL statements whatever the number of insights and tags.

Concurrency: tag writers of one project serialise on the project's lock of many-insight writes
(insights/locking.py), taken first. That makes every outcome equal to some serial order of the
requests, and it closes the race where one request deletes a tag as an orphan while another is
attaching it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Project, User
from infra.errors import DomainError
from insights.activity import FieldChange, activity_entry, activity_log_write
from insights.locking import project_writes_lock
from insights.models import ActivityLog, Insight
from tagging.models import Tag, TaggedItem
from tagging.selectors import insights_annotate_tags

TagAction = Literal["add", "remove", "set"]

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
        project_writes_lock(project.id)
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
    if not dry_run:
        _tag_changes_log(
            insights=[outcome.insights[insight_id] for insight_id in outcome.changed_ids],
            changes={
                insight_id: (outcome.before[insight_id], outcome.after[insight_id])
                for insight_id in outcome.changed_ids
            },
            user=user,
            request_id=request_id,
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


class TagNotFound(DomainError):
    status = 404
    code = "not_found"
    default_detail = "Tag not found."


@dataclass(frozen=True)
class _TaggedInsights:
    """The tags of the project named in a rename or delete, and every insight carrying the first."""

    tag_ids: dict[str, int]
    insights: list[Any]  # of Insight, each with `tag_names`, its sorted tags now


@transaction.atomic
def tag_rename(
    *, project: Project, user: User, old: str, new: str, dry_run: bool, request_id: uuid.UUID
) -> int:
    """Rename the project's tag `old` to `new` on everything carrying it (both normalised); when `new`
    exists already, the two merge and no insight carries it twice. Returns how many insights changed.

    Steps, one statement each: 1. take the project's lock of many-insight writes; 2. resolve the two
    names; 3. load the insights carrying `old` with their tags; 4. rename the tag, or merge it into
    `new` (move its attachments, drop the duplicates and the old tag); 5. stamp; 6. log.
    """
    found = _tagged_insights(project=project, names=[old, new], dry_run=dry_run)
    changes = {
        insight.id: (insight.tag_names, sorted({*insight.tag_names} - {old} | {new}))
        for insight in found.insights
    }
    if not dry_run:
        if new in found.tag_ids:
            _tag_merge(found.tag_ids[old], found.tag_ids[new])
        else:
            Tag.objects.filter(id=found.tag_ids[old]).update(name=new)
        _tag_changes_log(insights=found.insights, changes=changes, user=user, request_id=request_id)
    return len(changes)


@transaction.atomic
def tag_delete(*, project: Project, user: User, name: str, dry_run: bool, request_id: uuid.UUID) -> int:
    """Take the project's tag `name` off everything carrying it and delete it. Returns how many
    insights changed. Steps as `tag_rename`'s, with 4. detach it everywhere and delete it."""
    found = _tagged_insights(project=project, names=[name], dry_run=dry_run)
    changes = {
        insight.id: (insight.tag_names, [tag for tag in insight.tag_names if tag != name])
        for insight in found.insights
    }
    if not dry_run:
        _tag_merge(found.tag_ids[name], None)
        _tag_changes_log(insights=found.insights, changes=changes, user=user, request_id=request_id)
    return len(changes)


def _tagged_insights(*, project: Project, names: list[str], dry_run: bool) -> _TaggedInsights:
    """Lock (unless a dry run), resolve `names`, and load every insight of the project carrying the
    first — deleted ones too, since a restored insight comes back with its tags."""
    if not dry_run:
        project_writes_lock(project.id)
    tag_ids = dict(Tag.objects.filter(project_id=project.id, name__in=names).values_list("name", "id"))
    if names[0] not in tag_ids:
        raise TagNotFound(f"No tag {names[0]!r} in this project.")
    carrying = TaggedItem.objects.filter(tag_id=tag_ids[names[0]], insight_id__isnull=False).values(
        "insight_id"
    )
    insights = insights_annotate_tags(
        Insight.objects.filter(project_id=project.id, id__in=carrying)
        .only("id", "name", "derived_name", "short_id", "project_id")
        .order_by("id")
    )
    return _TaggedInsights(tag_ids=tag_ids, insights=list(insights))


def _tag_merge(tag_id: int, into_id: int | None) -> None:
    """Move every attachment of tag `tag_id` to `into_id` (none: drop them), skipping objects that
    carry `into_id` already, then delete the tag: one statement."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH moved AS (
                INSERT INTO {_ITEM} (tag_id, insight_id, dashboard_id)
                SELECT %(into)s, insight_id, dashboard_id FROM {_ITEM}
                WHERE tag_id = %(tag)s AND %(into)s::bigint IS NOT NULL
                ON CONFLICT DO NOTHING
            ), detached AS (
                DELETE FROM {_ITEM} WHERE tag_id = %(tag)s
            )
            DELETE FROM {_TAG} WHERE id = %(tag)s
            """,
            {"tag": tag_id, "into": into_id},
        )


def _tag_changes_log(
    *,
    insights: list[Insight],
    changes: dict[int, tuple[list[str], list[str]]],
    user: User,
    request_id: uuid.UUID,
) -> None:
    """What every tag write does for the insights it changed: a last-modified stamp and one activity
    entry each."""
    if not changes:
        return
    Insight.objects.filter(id__in=list(changes)).update(
        last_modified_at=timezone.now(), last_modified_by=user
    )
    activity_log_write(
        [
            activity_entry(
                insight=insight,
                user=user,
                activity=ActivityLog.Activity.UPDATED,
                changes=[FieldChange("tags", *changes[insight.id])],
                request_id=request_id,
            )
            for insight in insights
        ]
    )
