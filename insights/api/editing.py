"""Insight writes that span apps — the insight itself, its tags, its creator's view — each in one
transaction. Composed here, in insights' HTTP layer, the one part of `insights` that may import the
satellites (pyproject.toml's import contracts): their services import insights' domain, which knows
none of them, so no package imports itself through another."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.db import transaction

from accounts.models import Project, User
from insights.activity import FieldChange
from insights.models import Insight
from insights.services import EDITABLE_FIELDS, insight_create, insight_update
from tagging.services import insight_tags_set
from viewtracking.services import views_record


@transaction.atomic
def insight_create_with_tags(
    *,
    project: Project,
    user: User,
    data: dict[str, Any],
    request_id: uuid.UUID,
    viewed_at: datetime | None = None,
) -> Insight:
    """Create an insight with its tags and dashboards; creating it counts as its creator viewing it
    (now, or `viewed_at` when seeding history)."""
    tags: list[str] = data.get("tags") or []
    insight = insight_create(
        project=project,
        user=user,
        fields=data,
        dashboard_ids=data.get("dashboards") or [],
        extra_changes=[FieldChange("tags", [], tags)] if tags else [],
        request_id=request_id,
    )
    if tags:
        insight_tags_set(project=project, insight=insight, names=tags)
    views_record(project=project, user=user, insight_ids=[insight.id], at=viewed_at)
    return insight


@transaction.atomic
def insight_update_with_tags(
    *,
    project: Project,
    user: User,
    insight: Insight,
    data: dict[str, Any],
    replace: bool,
    request_id: uuid.UUID,
) -> Insight:
    """PATCH (`replace=False`: only the given fields) or PUT (`replace=True`: omitted editable fields,
    tags and dashboards reset to their defaults; `deleted` changes only when given)."""
    fields = {name: data.get(name, default) for name, default in EDITABLE_FIELDS.items()} if replace else data
    tags = data.get("tags", [] if replace else None)
    dashboards = data.get("dashboards", [] if replace else None)
    tag_change = insight_tags_set(project=project, insight=insight, names=tags) if tags is not None else None
    return insight_update(
        insight=insight,
        user=user,
        fields=fields,
        dashboard_ids=dashboards,
        deleted=data.get("deleted"),
        extra_changes=[tag_change] if tag_change else [],
        request_id=request_id,
    )
