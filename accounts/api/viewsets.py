"""The base of every project-scoped API: visibility and scopes decided here, once.

A subclass declares `scope_object` and a `queryset`, may narrow the queryset in
`safely_get_queryset`, may declare the `visibility` of its rows to the caller (applied after the
project filter, by every queryset this base hands out), and declares `required_scopes` on every
extra action. It cannot override
`get_queryset` or the permission classes: `__init_subclass__` refuses, so no route can forget to
scope by project.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from django.db.models import F, Model, QuerySet
from rest_framework import exceptions, permissions, viewsets

from accounts.api.authentication import AuthenticatedRequest, url_project_id
from accounts.api.permissions import APIScopePermission, ProjectAccessPermission
from accounts.caller import Caller
from accounts.models import OrganizationMembership, Project
from apikit.throttling import throttle_waits

if TYPE_CHECKING:
    from collections.abc import Callable

    from django.http import HttpResponseBase
    from rest_framework.decorators import ViewSetAction
    from rest_framework.request import Request

PROTECTED_ATTRIBUTES = (
    "get_queryset",
    "get_project_queryset",
    "get_permissions",
    "permission_classes",
    "project",
    "caller",
)
# Scope level of the built-in actions; extra actions declare `required_scopes` themselves.
BUILTIN_ACTION_LEVELS = {
    "list": "read",
    "retrieve": "read",
    "metadata": "read",
    "create": "write",
    "update": "write",
    "partial_update": "write",
    "destroy": "write",
}


M = TypeVar("M", bound=Model)  # the model of a viewset's rows


class ProjectScopedViewSet(viewsets.GenericViewSet[M]):
    scope_object: ClassVar[str]
    # Every route lets only authenticated callers in (IsAuthenticated, below).
    request: AuthenticatedRequest
    # Narrows the project's rows to those the caller may see, annotating what they may do with each
    # (wrapped in staticmethod); get_queryset and get_project_queryset both apply it. (Set on the
    # class; a ClassVar cannot name the model's type.)
    visibility: staticmethod[[QuerySet[M], Caller], QuerySet[M]] | None = None
    # What every queryset handed out starts from (each subclass sets it; GenericAPIView's is None).
    queryset: QuerySet[M] | None
    # Per-viewset changes to BUILTIN_ACTION_LEVELS, e.g. running a query (`create`) only reads.
    action_levels: ClassVar[dict[str, str]] = {}
    # Field on the model naming its project (the final, unavoidable filter).
    project_field: ClassVar[str] = "project_id"
    permission_classes = [permissions.IsAuthenticated, APIScopePermission, ProjectAccessPermission]

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        for name in PROTECTED_ATTRIBUTES:
            if name in cls.__dict__:
                raise TypeError(f"{cls.__name__} must not override {name}; see ProjectScopedViewSet.")
        # The stubs type the extra actions as plain views; they are @action's, with its `kwargs`.
        for extra in cast("list[ViewSetAction[Callable[..., HttpResponseBase]]]", cls.get_extra_actions()):
            scopes = extra.kwargs.get("required_scopes")
            if not scopes or len(scopes) != 1:
                raise TypeError(
                    f"{cls.__name__}.{extra.__name__} must declare required_scopes=[<one scope>]."
                )

    def initial(self, request: Request, *args: object, **kwargs: object) -> None:
        # A method with no route here (DELETE on insights) is a 405 before anything else is checked.
        if self.action is None and request.method != "OPTIONS":
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)

    def check_throttles(self, request: Request) -> None:
        """Every budget of the request counted in one Redis round trip (DRF asks each throttle in turn)."""
        waits = throttle_waits(self.get_throttles(), request, self)
        if waits:
            longest = max((wait for wait in waits if wait is not None), default=None)
            # As DRF's `throttled`, whose stubs want a wait: DRF itself passes None when no throttle knows.
            raise exceptions.Throttled(longest)

    # Set per extra action by @action(required_scopes=[...]).
    required_scopes: list[str] | None = None

    def required_scope(self) -> str:
        if self.required_scopes:
            return self.required_scopes[0]
        level = {**BUILTIN_ACTION_LEVELS, **self.action_levels}.get(self.action or "")
        if level is None:  # an unknown action is never let through
            raise exceptions.PermissionDenied("This action is not available to API keys.")
        return f"{self.scope_object}:{level}"

    @cached_property
    def project(self) -> Project:
        """The URL's project, if the caller may act on it. An API key's request resolved it with the
        key (PersonalAPIKeyAuthentication); a session's resolves it here."""
        project_id = url_project_id(self.request)
        key = self.request.auth
        if (
            key is not None
            and key.scoped_project_ids is not None
            and project_id not in key.scoped_project_ids
        ):
            raise exceptions.PermissionDenied("API key does not have access to this project.")
        resolved = getattr(key, "url_project", None)
        if resolved is not None and resolved.id == project_id:
            project = resolved.project
        else:
            project = (
                Project.objects.select_related("organization")
                .filter(id=project_id, organization__memberships__user_id=self.request.user.pk)
                # The same membership row. The plugin refuses annotating a name the model declares;
                # Django refuses only a field's.
                .annotate(caller_level=F("organization__memberships__level"))  # type: ignore[no-redef]
                .first()
                if project_id is not None
                else None
            )
        if project is None:
            raise exceptions.NotFound("Project not found.")
        return project

    @cached_property
    def caller(self) -> Caller:
        return Caller(
            user_id=self.request.user.pk,
            is_admin=self.project.caller_level >= OrganizationMembership.Level.ADMIN,
        )

    def safely_get_queryset(self, queryset: QuerySet[M]) -> QuerySet[M]:
        """Narrow or annotate the base queryset; the project filter is applied afterwards regardless."""
        return queryset

    def get_queryset(self) -> QuerySet[M]:
        assert self.queryset is not None, f"{type(self).__name__} must set queryset"
        if getattr(self, "swagger_fake_view", False):  # schema generation has no request or project
            return self.queryset.none()
        queryset = self.safely_get_queryset(self.queryset.all())
        return self._visible(queryset.filter(**{self.project_field: self.project.id}))

    def get_project_queryset(self) -> QuerySet[M]:
        """The project's rows the caller may see, without `safely_get_queryset`'s annotations: for
        checks that need only a row's existence or a column or two, where building the annotations
        would cost more than the statement itself."""
        assert self.queryset is not None, f"{type(self).__name__} must set queryset"
        return self._visible(self.queryset.filter(**{self.project_field: self.project.id}))

    def _visible(self, queryset: QuerySet[M]) -> QuerySet[M]:
        return queryset if self.visibility is None else self.visibility(queryset, self.caller)

    def get_serializer_context(self) -> dict[str, object]:
        if getattr(self, "swagger_fake_view", False):
            return dict(super().get_serializer_context())
        return {**super().get_serializer_context(), "project": self.project}
