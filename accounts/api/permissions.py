"""Who may call an action: API key scopes, and access to the project named in the URL."""

from __future__ import annotations

from typing import Protocol, cast

from rest_framework import exceptions, permissions
from rest_framework.request import Request
from rest_framework.views import APIView

from accounts.models import PersonalAPIKey, Project
from accounts.scopes import scopes_grant


class ScopedView(Protocol):
    """What these permissions ask of the view they guard (ProjectScopedViewSet, which installs them,
    answers both; naming it here would import the module that imports this one)."""

    def required_scope(self) -> str: ...

    @property
    def project(self) -> Project:
        """The URL's project; raises NotFound or PermissionDenied when the caller may not act on it."""
        ...


def _scoped(view: APIView) -> ScopedView:
    return cast(ScopedView, view)  # DRF types every permission's view as a plain APIView


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
