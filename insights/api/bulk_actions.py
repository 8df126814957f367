"""`bulk_delete` and `bulk_restore` (docs/insight-hygiene.md#bulk-delete-and-restore): soft-delete or
restore many insights in one call, with bulk_update_tags' semantics."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.authentication import request_user
from infra.logs import current_request_uuid
from insights.access import insights_editable
from insights.api.base import SKIP_REASON, InsightViewSetBase
from insights.api.bulk_serializers import (
    BulkDeleteResultSerializer,
    BulkDeleteSerializer,
    DryRunQuerySerializer,
)
from insights.services import insights_bulk_delete

SEMANTICS = (
    "Up to 500 `ids`, in one transaction: all land or none do. Ids that are not insights of this "
    "project, or that the caller may not change (docs/access-control.md), are `skipped` with one "
    "reason. `updated` follows the request's order; an insight already {state} counts as updated and "
    "changes nothing. Each changed insight gets one activity entry (`{activity}`, field `deleted`; one "
    "request id for the call) and a new last-modified stamp. Concurrent bulk writes of a project "
    "(tags included) are serialised, so the outcome equals some serial order. `?dry_run=true` answers "
    "the same without writing."
)


def _example(deleted: bool) -> list[OpenApiExample]:
    return [
        OpenApiExample("Two insights", value={"ids": [42, 43]}, request_only=True),
        OpenApiExample(
            "One updated, one skipped",
            value={
                "updated": [{"id": 42, "deleted": deleted}],
                "skipped": [{"id": 43, "reason": SKIP_REASON}],
            },
            response_only=True,
        ),
    ]


class InsightBulkDeleteActions(InsightViewSetBase):
    @extend_schema(
        summary="Soft-delete many insights",
        description="Soft-deletes many insights at once (restore them with `bulk_restore`). "
        + SEMANTICS.format(state="deleted", activity="deleted"),
        request=BulkDeleteSerializer,
        parameters=[DryRunQuerySerializer],
        responses={200: BulkDeleteResultSerializer},
        examples=_example(True),
        tags=["insights"],
    )
    @action(detail=False, methods=["post"], required_scopes=["insight:write"])
    def bulk_delete(self, request: Request, project_id: str) -> Response:
        return self._bulk_delete(request, deleted=True)

    @extend_schema(
        summary="Restore many soft-deleted insights",
        description="Restores many soft-deleted insights at once. "
        + SEMANTICS.format(state="live", activity="restored"),
        request=BulkDeleteSerializer,
        parameters=[DryRunQuerySerializer],
        responses={200: BulkDeleteResultSerializer},
        examples=_example(False),
        tags=["insights"],
    )
    @action(detail=False, methods=["post"], required_scopes=["insight:write"])
    def bulk_restore(self, request: Request, project_id: str) -> Response:
        return self._bulk_delete(request, deleted=False)

    def _bulk_delete(self, request: Request, *, deleted: bool) -> Response:
        options = DryRunQuerySerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        payload = BulkDeleteSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = insights_bulk_delete(
            project=self.project,
            user=request_user(request),
            insight_ids=payload.validated_data["ids"],
            deleted=deleted,
            dry_run=options.validated_data["dry_run"],
            request_id=current_request_uuid(),
            editable=insights_editable(self.get_project_queryset()),
        )
        return Response(
            {
                "updated": [{"id": insight_id, "deleted": deleted} for insight_id in result.updated],
                "skipped": [{"id": insight_id, "reason": SKIP_REASON} for insight_id in result.skipped],
            }
        )
