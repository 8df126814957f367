"""`GET/PUT …/insights/{id}/access_controls/` (docs/access-control.md): an insight's level and its members' overrides."""

from __future__ import annotations

from typing import TypedDict

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.authentication import request_user
from accounts.models import OrganizationMembership
from apikit.fields import DatabaseIdField
from infra.logs import current_request_uuid
from insights.access import AccessControls, access_controls_get, access_controls_set
from insights.api.base import InsightViewSetBase
from insights.models import AccessLevel, Insight

MAX_MEMBERS = 1000
EXAMPLE = {"access_level": "viewer", "members": [{"user_id": 7, "access_level": "editor"}]}


class MemberAccess(TypedDict):
    user_id: int
    access_level: str


class MemberAccessSerializer(serializers.Serializer):
    user_id = DatabaseIdField(help_text="A member of the project's organization.")
    access_level = serializers.ChoiceField(choices=AccessLevel.choices)


class AccessControlsSerializer(serializers.Serializer):
    access_level = serializers.ChoiceField(
        choices=AccessLevel.choices, help_text="The level of every member without an override."
    )
    members = serializers.ListField(
        child=MemberAccessSerializer(),
        max_length=MAX_MEMBERS,
        required=False,
        default=list,
        help_text="Per-member overrides; a PUT replaces them all (omitted: none).",
    )

    def validate_members(self, members: list[MemberAccess]) -> list[MemberAccess]:
        user_ids = [member["user_id"] for member in members]
        if len(set(user_ids)) != len(user_ids):
            raise serializers.ValidationError("Each member may appear once.")
        organization = self.context["project"].organization_id
        known = set(
            OrganizationMembership.objects.filter(
                organization_id=organization, user_id__in=user_ids
            ).values_list("user_id", flat=True)
        )
        strangers = [user_id for user_id in user_ids if user_id not in known]
        if strangers:
            raise serializers.ValidationError(f"User {strangers[0]} is not a member of this organization.")
        return members


ABOUT = (
    "A member's effective level on an insight: `editor` for its creator and the organization's "
    "admins and owners; otherwise their override here, if any; otherwise `access_level`. `none` "
    "hides the insight from them everywhere (404), `viewer` lets them read but not change it (403)."
)


class InsightAccessActions(InsightViewSetBase):
    @extend_schema(
        summary="Read an insight's access controls",
        description=f"The insight's level and its members' overrides. Only its editors may read them. {ABOUT}",
        responses={200: AccessControlsSerializer},
        examples=[OpenApiExample("A read-only insight with one editor", value=EXAMPLE, response_only=True)],
        tags=["insights"],
    )
    @action(detail=True, methods=["get"], url_path="access_controls", required_scopes=["insight:read"])
    def access_controls(self, request: Request, project_id: str, pk: str) -> Response:
        insight = self._controlled_insight(change=False)
        return Response(access_controls_get(insight).as_json())

    @extend_schema(
        summary="Change an insight's access controls",
        description=(
            "Replaces the insight's level and its members' overrides (omitted `members`: none). Only "
            "its creator and the organization's admins and owners may (others 403); each member named "
            f"must belong to the organization (else 400). The change goes to the activity log. {ABOUT}"
        ),
        request=AccessControlsSerializer,
        responses={200: AccessControlsSerializer},
        examples=[OpenApiExample("Read-only, with one editor", value=EXAMPLE)],
        tags=["insights"],
    )
    @access_controls.mapping.put
    def access_controls_update(self, request: Request, project_id: str, pk: str) -> Response:
        insight = self._controlled_insight(change=True)
        payload = AccessControlsSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        wanted = AccessControls(
            payload.validated_data["access_level"],
            {member["user_id"]: member["access_level"] for member in payload.validated_data["members"]},
        )
        changed = access_controls_set(
            insight=insight, user=request_user(request), controls=wanted, request_id=current_request_uuid()
        )
        return Response(changed.as_json())

    def required_scope(self) -> str:
        return "insight:write" if self.action == "access_controls_update" else super().required_scope()

    def _controlled_insight(self, *, change: bool) -> Insight:
        insight = self.get_object()
        if change and not (self.caller.is_admin or insight.created_by_id == self.caller.user_id):
            raise exceptions.PermissionDenied(
                "Only the insight's creator and the organization's admins may change its access controls."
            )
        if insight.user_access_level != AccessLevel.EDITOR:
            raise exceptions.PermissionDenied("Only the insight's editors may read its access controls.")
        return insight
