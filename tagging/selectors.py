"""Reads of tags."""

from __future__ import annotations

from django.contrib.postgres.expressions import ArraySubquery
from django.db.models import OuterRef, QuerySet

from insights.models import Insight
from tagging.models import TaggedItem


def insights_annotate_tags(queryset: QuerySet[Insight]) -> QuerySet[Insight]:
    """Each insight's sorted tag names as `tag_names`, computed in the same statement as the page
    (index tagged_item_insight_tag_unique), so a page costs no extra query whatever its size."""
    names = TaggedItem.objects.filter(insight_id=OuterRef("id")).order_by("tag__name").values("tag__name")
    return queryset.annotate(tag_names=ArraySubquery(names))
