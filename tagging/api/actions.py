"""`bulk_update_tags` (docs/insight-actions.md#bulk_update_tags): add, remove or set the tags of many insights in one call."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.authentication import request_user
from infra.logs import current_request_uuid
from insights.access import insights_editable
from insights.api.base import SKIP_REASON, InsightViewSetBase
from insights.api.bulk_serializers import DryRunQuerySerializer
from tagging.api.serializers import BulkUpdateTagsResultSerializer, BulkUpdateTagsSerializer
from tagging.services import tags_bulk_update


class InsightTagActions(InsightViewSetBase):
    @extend_schema(
        summary="Bulk update insight tags",
        description=(
            "Adds, removes or sets `tags` on up to 500 insights `ids` in one transaction: all updates "
            "land or none do. Tags are normalised (trimmed, lowercased, de-duplicated); `add`/`remove` "
            "need at least one tag, `set` with `[]` clears. At most 10,000 distinct id-tag pairs. Ids "
            "that are not live insights of this project, or that the caller may not change, are "
            "`skipped` with one reason. `updated` "
            "follows the request's order with each insight's sorted tags. Tags left on nothing are "
            "deleted. Each changed insight gets one activity entry (shared request id). Concurrent "
            "calls are serialised per project, so the outcome equals some serial order. "
            "`?dry_run=true` answers the same without writing."
        ),
        request=BulkUpdateTagsSerializer,
        parameters=[DryRunQuerySerializer],
        responses={200: BulkUpdateTagsResultSerializer},
        tags=["insights"],
    )
    @action(detail=False, methods=["post"], required_scopes=["insight:write"])
    def bulk_update_tags(self, request: Request, project_id: str) -> Response:
        options = DryRunQuerySerializer(data=request.query_params)
        options.is_valid(raise_exception=True)
        payload = BulkUpdateTagsSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        result = tags_bulk_update(
            project=self.project,
            user=request_user(request),
            insight_ids=payload.validated_data["ids"],
            action=payload.validated_data["action"],
            names=payload.validated_data["tags"],
            dry_run=options.validated_data["dry_run"],
            request_id=current_request_uuid(),
            editable=insights_editable(self.get_project_queryset()),
        )
        return Response(
            {
                "updated": [{"id": insight_id, "tags": tags} for insight_id, tags in result.updated],
                "skipped": [{"id": insight_id, "reason": SKIP_REASON} for insight_id in result.skipped],
            }
        )
