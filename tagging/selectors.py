"""Reads of tags."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.postgres.expressions import ArraySubquery
from django.db import connection
from django.db.models import OuterRef, QuerySet

from insights.models import Insight
from tagging.models import Tag, TaggedItem


def insights_annotate_tags(queryset: QuerySet[Insight]) -> QuerySet[Insight]:
    """Each insight's sorted tag names as `tag_names`, computed in the same statement as the page
    (index tagged_item_insight_tag_unique), so a page costs no extra query whatever its size."""
    names = TaggedItem.objects.filter(insight_id=OuterRef("id")).order_by("tag__name").values("tag__name")
    return queryset.annotate(tag_names=ArraySubquery(names))


@dataclass(frozen=True)
class TagUsage:
    name: str
    insights: int  # live insights carrying it that the caller can see
    last_used_at: datetime | None  # the latest view of any of them


def project_tags_usage(*, insights: QuerySet[Any]) -> list[TagUsage]:
    """The tags on the live insights of `insights` (the project's insights the caller can see, each
    annotated with its `last_viewed_at`), sorted by name, with how many carry each and when one was
    last viewed: one statement (index tagged_item_insight_tag_unique), whatever the number of tags."""
    shown, params = insights.filter(deleted=False).values("id", "last_viewed_at").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT tag.name, count(*), max(shown.last_viewed_at)
            FROM ({shown}) AS shown
            JOIN {TaggedItem._meta.db_table} AS item ON item.insight_id = shown.id
            JOIN {Tag._meta.db_table} AS tag ON tag.id = item.tag_id
            GROUP BY tag.name
            ORDER BY tag.name
            """,
            params,
        )
        return [TagUsage(name, count, last_used_at) for name, count, last_used_at in cursor.fetchall()]
