"""Who may call an action: API key scopes, and access to the project named in the URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import PersonalAPIKey
from accounts.scopes import scopes_grant

if TYPE_CHECKING:
    from accounts.api.viewsets import ProjectScopedViewSet


def _scoped(view: APIView) -> ProjectScopedViewSet:
    """The view, which these permissions are made for: ProjectScopedViewSet installs them and answers
    what they ask (`required_scope()`, and `project`, which raises NotFound or PermissionDenied when
    the caller may not act on the URL's project)."""
    from accounts.api.viewsets import ProjectScopedViewSet  # which imports this module

    assert isinstance(view, ProjectScopedViewSet), f"{type(view).__name__} is not project-scoped"
    return view


class APIScopePermission(permissions.BasePermission):
    """An API key must hold the scope the action requires; sessions are not scoped."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        if not isinstance(request.auth, PersonalAPIKey):
            return True
        required = _scoped(view).required_scope()
        if not scopes_grant(request.auth.scopes, required):
            raise exceptions.PermissionDenied(f"API key missing required scope '{required}'")
        return True


class ProjectAccessPermission(permissions.BasePermission):
    """The caller must be a member of the organization owning the URL's project (else 404), and an
    API key limited to some projects must include this one (else 403)."""

    def has_permission(self, request: Request, view: APIView) -> bool:
        _scoped(view).project  # noqa: B018 - resolving the project raises NotFound/PermissionDenied
        return True
