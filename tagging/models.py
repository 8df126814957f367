"""Tags, unique per project, and the objects they are attached to."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class Tag(models.Model):
    project = models.ForeignKey(
        "accounts.Project", on_delete=models.CASCADE, related_name="tags", db_index=False
    )  # indexed by tag_project_name_unique
    # Always stored normalised (see tagging.normalization).
    name = models.CharField(max_length=255)

    class Meta:
        constraints = [
            # Serves resolving tag names to ids within a project, and upserting new ones.
            models.UniqueConstraint(fields=["project", "name"], name="tag_project_name_unique"),
        ]

    def __str__(self) -> str:
        return self.name


class TaggedItem(models.Model):
    """Attaches a tag to one object. Each kind of taggable object has its own nullable foreign key,
    so the database enforces integrity and joins stay plain; exactly one must be set."""

    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, related_name="tagged_items", db_index=False
    )  # indexed by tagged_item_tag_idx
    insight = models.ForeignKey(
        "insights.Insight",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tagged_items",
        db_index=False,  # indexed by tagged_item_insight_tag_unique
    )
    dashboard = models.ForeignKey(
        "insights.Dashboard",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="tagged_items",
        db_index=False,  # indexed by tagged_item_dashboard_tag_unique
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(insight__isnull=False, dashboard__isnull=True)
                | Q(insight__isnull=True, dashboard__isnull=False),
                name="tagged_item_exactly_one_target",
            ),
            # Loading the tags of a page of insights, and idempotent attach (ON CONFLICT DO NOTHING).
            models.UniqueConstraint(
                fields=["insight", "tag"],
                name="tagged_item_insight_tag_unique",
                condition=Q(insight__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["dashboard", "tag"],
                name="tagged_item_dashboard_tag_unique",
                condition=Q(dashboard__isnull=False),
            ),
        ]
        indexes = [
            # Orphan cleanup asks "is this tag still attached to anything".
            models.Index(fields=["tag"], name="tagged_item_tag_idx"),
        ]
