"""Reads of tenancy data."""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from typing import TypedDict, TypeVar

from django.db import connection
from django.db.models import JSONField, Model, OuterRef, Subquery
from django.db.models.functions import JSONObject

from accounts.models import Organization, OrganizationMembership, PersonalAPIKey, Project, User


def user_basic_json(user_id: str) -> Subquery:
    """The user whose id is in the outer query's column `user_id` as a JSON object of the columns of
    the basic user shape (`UserBasicSerializer`), or null for none: for reads that put users in the
    rows of their statement. A subquery, so PostgreSQL builds it only for the rows a LIMIT keeps."""
    columns = ("id", "uuid", "email", "first_name", "last_name")
    user = User.objects.filter(id=OuterRef(user_id)).values(user=JSONObject(**{c: c for c in columns}))
    return Subquery(user, output_field=JSONField())


class ProjectSummary(TypedDict):
    id: int
    name: str


class OrganizationSummary(TypedDict):
    id: int
    name: str
    membership_level: str
    is_ai_data_processing_approved: bool
    projects: list[ProjectSummary]


def user_organizations(*, user: User, project_ids: list[int] | None = None) -> list[OrganizationSummary]:
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
    projects: dict[int, list[ProjectSummary]] = defaultdict(list)
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


@dataclass(frozen=True)
class KeyCaller:
    """What one request with a personal API key needs to know about its caller: the key, its user,
    and (when the URL names a project) that project with the user's membership level in it, or
    None when the user is not a member."""

    key: PersonalAPIKey
    project: Project | None


def api_key_caller(*, prefix: str, project_id: int | None) -> KeyCaller | None:
    """The key with this prefix, its user, and the user's membership of `project_id`, in one
    statement whose SQL is built once per process (no ORM compilation per request)."""
    with connection.cursor() as cursor:
        cursor.execute(_caller_sql(), {"prefix": prefix, "project": project_id})
        row = cursor.fetchone()
    if row is None:
        return None
    (key_row, user_row, project_row, organization_row), level = _split(row)
    key = _instance(PersonalAPIKey, key_row)
    key.user = _instance(User, user_row)
    project = None
    if level is not None:
        project = _instance(Project, project_row)
        project.organization = _instance(Organization, organization_row)
        project.caller_level = level
    return KeyCaller(key=key, project=project)


_JOINED = (PersonalAPIKey, User, Project, Organization)
M = TypeVar("M", bound=Model)


def _columns(model: type[Model], alias: str) -> str:
    return ", ".join(f'{alias}."{field.column}"' for field in model._meta.concrete_fields)


@functools.cache
def _caller_sql() -> str:
    key, user, project, organization, membership = (
        PersonalAPIKey._meta.db_table,
        User._meta.db_table,
        Project._meta.db_table,
        Organization._meta.db_table,
        OrganizationMembership._meta.db_table,
    )
    # The project and its organization come only with the caller's membership row: a project the
    # caller is not a member of yields nulls, exactly as a project that does not exist.
    return (
        f"SELECT {_columns(PersonalAPIKey, 'k')}, {_columns(User, 'u')}, {_columns(Project, 'p')}, "
        f'{_columns(Organization, "o")}, m."level" '
        f'FROM "{key}" k JOIN "{user}" u ON u."id" = k."user_id" '
        f'LEFT JOIN ("{project}" p JOIN "{membership}" m ON m."organization_id" = p."organization_id" '
        f'JOIN "{organization}" o ON o."id" = p."organization_id") '
        f'ON p."id" = %(project)s AND m."user_id" = k."user_id" '
        f'WHERE k."prefix" = %(prefix)s'
    )


def _split(row: tuple[object, ...]) -> tuple[list[tuple[object, ...]], int | None]:
    """The row cut into each joined model's columns, and the membership level after them."""
    parts, start = [], 0
    for model in _JOINED:
        width = len(model._meta.concrete_fields)
        parts.append(row[start : start + width])
        start += width
    level = row[start]
    assert level is None or isinstance(level, int), "a membership level, or none"
    return parts, level


def _instance(model: type[M], values: tuple[object, ...]) -> M:
    names = [field.attname for field in model._meta.concrete_fields]
    return model.from_db(connection.alias, names, values)
