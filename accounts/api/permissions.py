"""Who may call an action: API key scopes, and access to the project named in the URL."""

from __future__ import annotations

from typing import Protocol

from rest_framework import exceptions, permissions
from rest_framework.request import Request

from accounts.models import PersonalAPIKey, Project
from accounts.scopes import scopes_grant


class ScopedView(Protocol):
    """What these permissions ask of a view (ProjectScopedViewSet answers both)."""

    def required_scope(self) -> str: ...

    @property
    def project(self) -> Project:
        """The URL's project; raises NotFound or PermissionDenied when the caller may not act on it."""
        ...


class APIScopePermission(permissions.BasePermission):
    """An API key must hold the scope the action requires; sessions are not scoped."""

    def has_permission(self, request: Request, view: ScopedView) -> bool:
        if not isinstance(request.auth, PersonalAPIKey):
            return True
        required = view.required_scope()
        if not scopes_grant(request.auth.scopes, required):
            raise exceptions.PermissionDenied(f"API key missing required scope '{required}'")
        return True


class ProjectAccessPermission(permissions.BasePermission):
    """The caller must be a member of the organization owning the URL's project (else 404), and an
    API key limited to some projects must include this one (else 403)."""

    def has_permission(self, request: Request, view: ScopedView) -> bool:
        view.project  # noqa: B018 - resolving the project raises NotFound/PermissionDenied
        return True
