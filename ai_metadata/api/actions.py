"""`generate_metadata` (docs/insight-actions.md#generate_metadata): a suggested name and description for a query."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from ai_metadata.api.serializers import (
    MISSING_QUERY,
    GenerateMetadataSerializer,
    MetadataSuggestionSerializer,
)
from ai_metadata.services import metadata_suggest
from apikit.schema import error_response
from apikit.throttling import AIProjectThrottle, BurstThrottle, SustainedThrottle
from insights.api.base import InsightViewSetBase
from insights.query_nodes import InvalidQuery, query_parse


class InsightMetadataActions(InsightViewSetBase):
    @extend_schema(
        summary="Suggest an insight name and description",
        description=(
            "Suggests a Title Case name (at most 100 characters) and a one-sentence description (at "
            "most 200) for the body's `query`: any node an insight may hold (the six insight kinds, "
            "tables, SQL insights, Hog) and the person and group lists behind an insight's points "
            "(`ActorsQuery` over an `InsightActorsQuery` or `FunnelsActorsQuery`, `GroupsQuery`). "
            "Nothing is written. The provider is configured: "
            "`heuristic` (default, offline, needs no approval), or `openai`/`anthropic`, which run on a "
            "Celery worker and need the organization's approval of AI data processing (else 403). If the "
            "model fails, answers badly or misses the deadline, the heuristic answers with "
            "`fallback: true`. Throttled per project (429)."
        ),
        request=GenerateMetadataSerializer,
        responses={
            200: MetadataSuggestionSerializer,
            400: error_response("`query` missing or empty, or not a valid query node."),
            403: error_response(
                "Missing scope, a key limited to other projects, CSRF failure, or a model provider is "
                "configured and the organization has not approved AI data processing."
            ),
            429: error_response("Throttled, per caller or by the project's AI budget; see `Retry-After`."),
        },
        tags=["insights"],
    )
    @action(
        detail=False,
        methods=["post"],
        required_scopes=["insight:write"],
        throttle_classes=[BurstThrottle, SustainedThrottle, AIProjectThrottle],
    )
    def generate_metadata(self, request: Request, project_id: str) -> Response:
        payload = GenerateMetadataSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        query = payload.validated_data["query"]
        if not query:  # `{}`
            raise exceptions.ValidationError({"query": [MISSING_QUERY]})
        try:
            query_parse(query)
        except InvalidQuery:
            raise exceptions.ValidationError({"query": ["Invalid query format"]}) from None
        suggestion = metadata_suggest(project=self.project, query=query)  # 403 unless AI is approved
        return Response(suggestion.as_json())
