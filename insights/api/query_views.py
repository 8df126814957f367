"""`POST /api/projects/{id}/query/` runs a query node; `GET …/query/{query_id}/` follows an async run."""

from __future__ import annotations

import re

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.authentication import request_user
from accounts.api.viewsets import ProjectScopedViewSet
from apikit.coalescing import label
from apikit.schema import error_response
from insights.api.result_routes import RESULT_DOCS, RESULT_ERRORS, result_request
from insights.api.serializers import QueryResponseSerializer, QueryRunSerializer, QueryStatusSerializer
from insights.cancellation import query_cancel
from insights.models import Insight
from insights.query_nodes import InvalidQuery, query_parse
from insights.query_runner import query_check_runnable
from insights.results import query_status, result_answer

TAGS = ["query"]
QUERY_ID = re.compile(r"^[0-9a-f]{32}$")  # a `query_status.id`


class QueryViewSet(ProjectScopedViewSet[Insight]):
    scope_object = "insight"
    queryset = Insight.objects.none()  # no model of its own; the base viewset still scopes by project
    serializer_class = QueryRunSerializer  # what OPTIONS describes (DRF's metadata needs one)
    lookup_field = "query_id"
    # A `query_status.id` to follow (32 hex digits), or a `client_query_id` to cancel.
    lookup_value_regex = r"[A-Za-z0-9_.:\-]{1,128}"
    coalesced_actions = ("create",)
    # Running a query changes nothing (docs/tenancy-and-errors.md); nor does cancelling one's own.
    action_levels = {"create": "read", "destroy": "read"}

    @extend_schema(
        summary="Run a query",
        description=(
            "Runs a query node (a TrendsQuery, or an InsightVizNode wrapping one; other kinds answer 400 "
            "`unsupported_query_kind`) over the project's events and answers `results`: "
            "one entry per series and breakdown value with `label`, `count`, `data`, `days`, `labels` and "
            "`breakdown_value`. Results are cached per normalised query; `refresh` decides when to "
            "compute. Identical concurrent requests run once (`X-Coalesced: leader|follower|off`). A "
            "cancel of `client_query_id` ends this request with 400 `query_cancelled`." + RESULT_DOCS
        ),
        request=QueryRunSerializer,
        responses={
            200: OpenApiResponse(
                QueryResponseSerializer, description="Results (computed, or from the cache)."
            ),
            202: OpenApiResponse(
                QueryResponseSerializer,
                description="`refresh: async`: started on a worker; `query_status.id` names it for polling.",
            ),
            400: error_response(
                "Invalid body or query node; or `code` `unsupported_query_kind`, `unsupported_math`, "
                "`query_cancelled` (a cancel of `client_query_id`) or `query_timeout`."
            ),
            **RESULT_ERRORS,
        },
        tags=TAGS,
    )
    def create(self, request: Request, project_id: str) -> Response:
        payload = QueryRunSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        try:
            node = query_parse(payload.validated_data["query"])
        except InvalidQuery as exc:
            raise exceptions.ValidationError({"query": [str(exc)]}) from None
        query_check_runnable(node)  # an UnsupportedQuery is the caller's 400
        answer = result_answer(
            result_request(request, project=self.project, node=node, params=payload.validated_data),
            render=lambda fields: fields,
        )
        label(request._request, answer.role)
        return Response(
            answer.body, status=status.HTTP_202_ACCEPTED if answer.started else status.HTTP_200_OK
        )

    @extend_schema(
        summary="Status of an asynchronous query",
        description=(
            "The status of a run started with `refresh: async` (or `force_async`): `complete`, and "
            "when complete either `results` or `error` with `error_message`. Kept for an hour."
        ),
        responses={200: QueryStatusSerializer},
        tags=TAGS,
    )
    def retrieve(self, request: Request, project_id: str, query_id: str) -> Response:
        found = (
            query_status(project_id=self.project.id, query_id=query_id) if QUERY_ID.match(query_id) else None
        )
        if found is None:
            raise exceptions.NotFound("Query not found.")
        return Response(found)

    @extend_schema(
        summary="Cancel a running query by its client query id",
        description=(
            "What `POST …/insights/cancel/` does, in the form PostHog's newer frontend uses: cancels the "
            "caller's running query started in this project with exactly this `client_query_id`. "
            "Answers 204 whether or not one was running (idempotent)."
        ),
        responses={204: OpenApiResponse(description="Cancelled, or nothing of that id was running.")},
        tags=TAGS,
    )
    def destroy(self, request: Request, project_id: str, query_id: str) -> Response:
        query_cancel(project_id=self.project.id, user_id=request_user(request).pk, client_query_id=query_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
