"""`viewed`, `my_last_viewed` and `trending` (docs/insight-actions.md#viewed, #my_last_viewed, #trending): views recorded and read back."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.authentication import request_user
from apikit.pagination import page_links
from insights.api.base import InsightViewSetBase
from insights.api.selectors import my_last_viewed_list, trending_insights
from insights.api.serializers import InsightBasicSerializer
from viewtracking.api.serializers import TrendingInsightSerializer, TrendingQuerySerializer, ViewedSerializer
from viewtracking.selectors import trending_list
from viewtracking.services import views_record

TAGS = ["insights"]


class InsightViewActions(InsightViewSetBase):
    @extend_schema(
        summary="Record insight views",
        description=(
            "Records that the caller has just viewed these insights: their last-viewed time becomes "
            "now and one view event per insight is appended (these feed `trending`). Ids that are not "
            "live insights of this project the caller may see are dropped silently; duplicates count once. Always answers "
            "201 with an empty body. One SQL statement, whatever the number of ids."
        ),
        request=ViewedSerializer,
        responses={201: OpenApiResponse(description="Recorded (empty body).")},
        tags=TAGS,
    )
    @action(detail=False, methods=["post"], required_scopes=["insight:read"])
    def viewed(self, request: Request, project_id: str) -> Response:
        payload = ViewedSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        views_record(
            project=self.project,
            user=request_user(request),
            insight_ids=payload.validated_data["insight_ids"],
            visible=self.get_project_queryset(),
        )
        return Response(status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="My last viewed insights",
        description=(
            "The caller's five most recently viewed insights in this project, most recent first, as a "
            "bare array (not paginated) in the basic shape. `last_viewed_at` is the caller's own latest "
            "view. Soft-deleted insights are left out."
        ),
        responses={200: InsightBasicSerializer(many=True)},
        tags=TAGS,
    )
    @action(detail=False, methods=["get"], required_scopes=["insight:read"], pagination_class=None)
    def my_last_viewed(self, request: Request, project_id: str) -> Response:
        rows = my_last_viewed_list(project_id=self.project.id, caller=self.caller)
        return Response(self.render_insights(rows, basic=True))

    @extend_schema(
        summary="Trending insights",
        description=(
            "Insights ranked by views in the last `days` days: the window runs from 00:00 UTC `days` days "
            "ago until now (as Trends' `-7d`). `view_count` counts every recorded view in the window "
            "(exact and fresh: daily rollups plus views not rolled up yet); `unique_viewers` counts "
            "distinct users. Ranked by `view_count`, then most recent view, then id, all descending. "
            "Insights with no view in the window and deleted insights are left out. `viewers` holds up "
            "to three distinct users, most recent first. `count`, `next` and `previous` page through "
            "the whole ranking."
        ),
        parameters=[TrendingQuerySerializer],
        responses={
            200: inline_serializer(
                name="PaginatedTrendingInsightList",
                fields={
                    "count": serializers.IntegerField(),
                    "next": serializers.URLField(allow_null=True),
                    "previous": serializers.URLField(allow_null=True),
                    "results": TrendingInsightSerializer(many=True),
                },
            ),
        },
        tags=TAGS,
    )
    @action(detail=False, methods=["get"], required_scopes=["insight:read"], pagination_class=None)
    def trending(self, request: Request, project_id: str) -> Response:
        params = TrendingQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        days, limit, offset = (params.validated_data[name] for name in ("days", "limit", "offset"))
        page = trending_list(
            project_id=self.project.id, caller=self.caller, days=days, limit=limit, offset=offset
        )
        insights = trending_insights(project_id=self.project.id, caller=self.caller, page=page)
        ranked = {row.insight_id: row for row in page.rows}
        results = self.render_insights(
            insights, serializer_class=TrendingInsightSerializer, extra_context={"trending": ranked}
        )
        following, previous = page_links(request, count=page.total, limit=limit, offset=offset)
        return Response({"count": page.total, "next": following, "previous": previous, "results": results})
