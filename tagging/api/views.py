"""The project's tags across its insights (docs/insight-hygiene.md#tags): list, rename or merge, delete,
under /api/projects/{project_id}/tags/."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, PolymorphicProxySerializer, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.authentication import request_user
from infra.logs import current_request_uuid
from insights.api.base import InsightViewSetBase
from insights.api.bulk_serializers import DryRunQuerySerializer
from tagging.api.serializers import (
    TagChangeResultSerializer,
    TagDeleteSerializer,
    TagListQuerySerializer,
    TagRenameSerializer,
    TagUsageSerializer,
)
from tagging.selectors import project_tags_usage
from tagging.services import tag_delete, tag_rename

TAGS = ["tags"]
ADMINS_ONLY = (
    "Only the organization's admins and owners may (others 403; an API key needs `insight:write`). "
    "One transaction; every insight of the project counts, soft-deleted ones included, and each one "
    "that changed gets one activity entry (field `tags`) and a new last-modified stamp. Names are "
    "normalised as everywhere (trimmed, lowercased). An unknown tag is a 404. Concurrent tag writes of "
    "a project (`bulk_update_tags` included) are serialised. `?dry_run=true` answers the same without "
    "writing."
)
CHANGED_EXAMPLE = OpenApiExample("Three insights changed", value={"insights": 3}, response_only=True)


class TagViewSet(InsightViewSetBase):
    """The tags of the project's insights the caller can see (the insight viewset's visibility)."""

    serializer_class = TagUsageSerializer  # what OPTIONS describes; each action sets its own
    pagination_class = None  # a bare array, as PostHog's: a project has tens of tags, not thousands

    @extend_schema(
        summary="List the project's tags",
        description=(
            "The names of the tags on the project's live insights that the caller can see, sorted: a "
            "JSON array of strings, as PostHog's. `?usage=true` answers "
            "`[{name, insights, last_used_at}]` instead: how many of those insights carry each tag, "
            "and the latest view of any of them (null if none was viewed) — to find tags nobody uses."
        ),
        parameters=[TagListQuerySerializer],
        responses={
            200: PolymorphicProxySerializer(
                component_name="ProjectTags",
                # The objects first: a generated client tries the variants in order, and a list of
                # strings would pass for any list.
                serializers=[
                    TagUsageSerializer(many=True),
                    # The stubs know only serializers of objects here.
                    serializers.ListSerializer(child=serializers.CharField()),  # type: ignore[list-item]
                ],
                resource_type_field_name=None,
                many=False,
            )
        },
        examples=[
            OpenApiExample("Names", value=["growth", "kpi"], response_only=True),
            OpenApiExample(
                "With usage (`?usage=true`)",
                value=[
                    {"name": "growth", "insights": 4, "last_used_at": "2026-11-30T09:12:00Z"},
                    {"name": "kpi", "insights": 1, "last_used_at": None},
                ],
                response_only=True,
            ),
        ],
        tags=TAGS,
    )
    def list(self, request: Request, project_id: str) -> Response:
        params = TagListQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        usage = project_tags_usage(insights=self.get_queryset())
        if params.validated_data["usage"]:
            return Response(TagUsageSerializer(usage, many=True).data)
        return Response([tag.name for tag in usage])

    @extend_schema(
        summary="Rename or merge a tag",
        description=(
            "Renames tag `from` to `to` on every insight of the project; when `to` exists already the "
            "two merge, and no insight carries it twice. Answers how many insights changed. " + ADMINS_ONLY
        ),
        request=TagRenameSerializer,
        parameters=[DryRunQuerySerializer],
        responses={200: TagChangeResultSerializer},
        examples=[
            OpenApiExample("Rename", value={"from": "q4", "to": "q4 review"}, request_only=True),
            CHANGED_EXAMPLE,
        ],
        tags=TAGS,
    )
    @action(
        detail=False,
        methods=["post"],
        serializer_class=TagRenameSerializer,
        required_scopes=["insight:write"],
    )
    def rename(self, request: Request, project_id: str) -> Response:
        self._admins_only()
        dry_run = self._dry_run(request)
        payload = TagRenameSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        changed = tag_rename(
            project=self.project,
            user=request_user(request),
            old=payload.validated_data["from"],
            new=payload.validated_data["to"],
            dry_run=dry_run,
            request_id=current_request_uuid(),
        )
        return Response({"insights": changed})

    @extend_schema(
        summary="Delete a tag",
        description="Takes tag `name` off every insight of the project and deletes it. Answers how "
        "many insights changed. " + ADMINS_ONLY,
        request=TagDeleteSerializer,
        parameters=[DryRunQuerySerializer],
        responses={200: TagChangeResultSerializer},
        examples=[OpenApiExample("Delete", value={"name": "old"}, request_only=True), CHANGED_EXAMPLE],
        tags=TAGS,
    )
    # Not named `delete`, which a view takes for the handler of HTTP DELETE; the SDKs call it tags_delete_tag.
    @action(
        detail=False,
        methods=["post"],
        url_path="delete",
        url_name="delete",
        required_scopes=["insight:write"],
    )
    def delete_tag(self, request: Request, project_id: str) -> Response:
        self._admins_only()
        dry_run = self._dry_run(request)
        payload = TagDeleteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        changed = tag_delete(
            project=self.project,
            user=request_user(request),
            name=payload.validated_data["name"],
            dry_run=dry_run,
            request_id=current_request_uuid(),
        )
        return Response({"insights": changed})

    def _admins_only(self) -> None:
        if not self.caller.is_admin:
            raise exceptions.PermissionDenied(
                "Only the organization's admins and owners may rename or delete tags."
            )

    def _dry_run(self, request: Request) -> bool:
        options = DryRunQuerySerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        return bool(options.validated_data["dry_run"])
