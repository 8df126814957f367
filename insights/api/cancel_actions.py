"""`cancel` (docs/insight-actions.md#cancel): stop the caller's own running query, matched exactly."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.authentication import request_user
from insights.api.base import InsightViewSetBase
from insights.api.serializers import CancelResultSerializer, CancelSerializer
from insights.cancellation import query_cancel


class InsightCancelActions(InsightViewSetBase):
    @extend_schema(
        summary="Cancel a running query",
        description=(
            "Cancels the caller's running query started in this project with exactly this "
            "`client_query_id` (no prefix or wildcard matching; another user's query is never touched). "
            "The waiting request ends at once with 400 `query_cancelled`; the database work stops as "
            "soon as no other request waits for the same coalesced result. Answers 201 "
            '`{"cancelled": true}` when a running query was found, `{"cancelled": false}` otherwise. '
            "Idempotent."
        ),
        request=CancelSerializer,
        responses={201: CancelResultSerializer},
        tags=["insights"],
    )
    @action(detail=False, methods=["post"], required_scopes=["insight:read"])
    def cancel(self, request: Request, project_id: str) -> Response:
        payload = CancelSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        cancelled = query_cancel(
            project_id=self.project.id,
            user_id=request_user(request).pk,
            client_query_id=payload.validated_data["client_query_id"],
        )
        return Response({"cancelled": cancelled}, status=status.HTTP_201_CREATED)
