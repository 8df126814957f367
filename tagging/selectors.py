"""Reads of tags."""

from __future__ import annotations

from collections import defaultdict

from tagging.models import TaggedItem


def tags_by_insight(insight_ids: list[int]) -> dict[int, list[str]]:
    """The sorted tag names of a page of insights, in one query."""
    result: dict[int, list[str]] = defaultdict(list)
    rows = (
        TaggedItem.objects.filter(insight_id__in=insight_ids)
        .order_by("tag__name")
        .values_list("insight_id", "tag__name")
    )
    for insight_id, name in rows:
        result[insight_id].append(name)
    return result
