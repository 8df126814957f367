"""Reads of tenancy data."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from accounts.models import OrganizationMembership, Project, User


def user_organizations(*, user: User, project_ids: list[int] | None = None) -> list[dict[str, Any]]:
    """The user's organizations, each with its projects, in two queries. With `project_ids` (an API
    key limited to some projects) only those projects, and only the organizations holding one: such
    a key learns nothing of the rest."""
    memberships = list(
        OrganizationMembership.objects.filter(user=user)
        .select_related("organization")
        .order_by("organization_id")
    )
    visible = Project.objects.filter(
        organization_id__in=[membership.organization_id for membership in memberships]
    )
    if project_ids is not None:
        visible = visible.filter(id__in=project_ids)
    projects: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for project in visible.order_by("id"):
        projects[project.organization_id].append({"id": project.id, "name": project.name})
    return [
        {
            "id": membership.organization.id,
            "name": membership.organization.name,
            "membership_level": membership.get_level_display(),
            "is_ai_data_processing_approved": membership.organization.is_ai_data_processing_approved,
            "projects": projects[membership.organization_id],
        }
        for membership in memberships
        if project_ids is None or projects[membership.organization_id]
    ]
