"""Insight CRUD, listing and the activity log under /api/projects/{project_id}/insights/: insights' own
routes. The viewset that serves them beside the other modules' actions is composed in the wiring
(insights_api/urls.py, with the table of every route and the module that implements it)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api.authentication import request_user
from apikit.coalescing import label
from apikit.pagination import LimitOffsetPagination
from apikit.schema import error_response
from infra.logs import current_request_uuid
from insights.api.base import InsightViewSetBase
from insights.api.editing import insight_create_with_tags, insight_update_with_tags
from insights.api.result_routes import RESULT_DOCS, RESULT_ERRORS, result_request
from insights.api.selectors import insights_by_id, insights_count, insights_page
from insights.api.serializers import (
    ActivityLogSerializer,
    InsightListItemSerializer,
    InsightListQuerySerializer,
    InsightReplaceSerializer,
    InsightRetrieveQuerySerializer,
    InsightRetrieveSerializer,
    InsightSerializer,
    InsightWriteSerializer,
    caller_access_fields,
)
from insights.dates import date_resolve
from insights.models import AccessLevel, Insight
from insights.query_nodes import AnyQueryNode, InvalidQuery, query_parse
from insights.query_runner import query_check_runnable
from insights.results import result_answer
from insights.selectors import FoundInsight, InsightFilters, activity_list, insight_found
from insights.trends import UnsupportedQuery
from tagging.normalization import normalize_tags
from viewtracking.usage import Window

TAGS = ["insights"]
# Who sees what of an access-control change in the activity log (docs/access-control.md).
ACTIVITY_ACCESS_DOCS = (
    "A change of the access controls (field `access_controls`) is shown whole to the insight's editors; "
    "anyone else sees that the access changed, with `before` and `after` null: no members, no levels."
)
# The result fields of an insight whose query this service cannot run.
NO_RESULTS = {"results": None, "is_cached": False, "last_refresh": None, "query_status": None}


class InsightRoutes(InsightViewSetBase):
    """Insights' own routes: the list, create, retrieve (with results), update and the activity log."""

    coalesced_actions = ("retrieve",)  # identical concurrent retrieves compute once (insights/results.py)
    serializer_class = InsightSerializer

    @extend_schema(
        summary="List insights",
        description=(
            "The project's insights (soft-deleted ones left out), filtered and paginated with "
            "`limit`/`offset`. Each row carries `last_viewed_at`, the latest view by anyone. "
            "`order` takes one of the listed fields, optionally prefixed with `-`; `last_viewed_at` "
            "sorts never-viewed insights last. `basic=true` gives the basic shape (without `order`, "
            "`deleted` and the result fields). Rows never carry results; `last_refresh` says when the "
            "query's cached result was computed. Hygiene filters: `not_viewed_in_days` (stale insights, "
            "never-viewed ones included), `on_dashboard` (`false`: orphaned) and `tags_match=all`; every "
            "filter combines with the others and with `order`."
        ),
        parameters=[InsightListQuerySerializer],
        responses={200: InsightListItemSerializer(many=True)},
        tags=TAGS,
    )
    def list(self, request: Request, project_id: str) -> Response:
        params = InsightListQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        filters = self._filters(params.validated_data)
        paginator = self.paginator
        assert isinstance(paginator, LimitOffsetPagination)  # settings' DEFAULT_PAGINATION_CLASS
        rows = paginator.paginate(
            request,
            page=lambda limit, offset: insights_page(
                project_id=self.project.id, caller=self.caller, filters=filters, limit=limit, offset=offset
            ),
            count=lambda: insights_count(project_id=self.project.id, caller=self.caller, filters=filters),
        )
        return self.get_paginated_response(self.render_insights(rows, basic=params.validated_data["basic"]))

    @extend_schema(
        summary="Retrieve an insight",
        description=(
            "One insight by numeric `id` or by `short_id` (a soft-deleted one answers 404), "
            "with its query's results under `result` (TrendsQuery insights; other kinds answer "
            "`result: null`). `refresh` works as on the query route. Identical concurrent requests run "
            "once (`X-Coalesced`), each caller's access checked first. A cancel of `client_query_id` ends "
            "this request with 400 `query_cancelled`." + RESULT_DOCS
        ),
        parameters=[InsightRetrieveQuerySerializer],
        responses={
            200: InsightRetrieveSerializer,
            400: error_response(
                "Invalid `refresh` or `client_query_id`; or `code` `query_cancelled` (a cancel of "
                "`client_query_id`) or `query_timeout`."
            ),
            **RESULT_ERRORS,
        },
        tags=TAGS,
    )
    def retrieve(self, request: Request, project_id: str, pk: str) -> Response:
        # The caller's own access check comes before any sharing. It loads only the id and the query:
        # a coalesced follower needs nothing more, and whoever renders loads the whole insight.
        found = self._found()
        params = InsightRetrieveQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        node = runnable_query(found.query)

        def with_results(results: dict[str, Any]) -> dict[str, Any]:
            rows = insights_by_id(project_id=self.project.id, caller=self.caller, ids=[found.id])
            if not rows:  # deleted for good since the check above
                raise exceptions.NotFound("Insight not found.")
            return {**self.render_insights(rows, results_known=True)[0], **_as_insight_result(results)}

        if node is None:  # a kind this service cannot run: nothing to compute or share
            label(request._request, "off")
            return Response(with_results(NO_RESULTS | {"timezone": self.project.timezone}))
        answer = result_answer(
            result_request(request, project=self.project, node=node, params=params.validated_data),
            render=with_results,
        )
        label(request._request, answer.role)
        # A body rendered for another waiter of the same execution carries their level: each caller
        # gets its own. (An insight is answered whether or not an asynchronous run of it started.)
        return Response({**answer.body, **caller_access_fields(found.user_access_level)})

    @extend_schema(
        summary="Create an insight",
        description=(
            "Creates an insight, optionally with `tags` (normalised: trimmed, lowercased, de-duplicated) "
            "and `dashboards` (ids of this project's dashboards). `query` may be any node PostHog's "
            "frontend saves (an `InsightVizNode` over one of the six insight kinds, a `DataTableNode`, a "
            "`DataVisualizationNode` over `HogQLQuery`, a `HogQuery`, or a bare kind), validated "
            "structurally. Creating it counts as the creator viewing it. `_create_in_folder` is "
            "accepted and ignored."
        ),
        request=InsightWriteSerializer,
        responses={201: InsightSerializer},
        tags=TAGS,
    )
    def create(self, request: Request, project_id: str) -> Response:
        payload = InsightWriteSerializer(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        insight = insight_create_with_tags(
            project=self.project,
            user=request_user(request),
            data=payload.validated_data,
            request_id=current_request_uuid(),
        )
        return Response(self._reloaded(insight), status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Replace an insight",
        description=(
            "Replaces the insight's editable content: omitted fields, tags and dashboards reset to their "
            "defaults. `deleted` changes only when given. A body without any of the insight's fields (an "
            "empty one, say) is a 400, never a wipe. A soft-deleted insight answers 404."
        ),
        request=InsightReplaceSerializer,
        responses={200: InsightSerializer},
        tags=TAGS,
    )
    def update(self, request: Request, project_id: str, pk: str) -> Response:
        return self._update(request, replace=True)

    @extend_schema(
        summary="Update an insight",
        description=(
            "Changes only the given fields. `tags` replaces the whole set (normalised); `dashboards` "
            "replaces the placements; `deleted: true` soft-deletes and `deleted: false` restores (the one "
            "request a soft-deleted insight answers; to any other it is a 404). Each change is written to "
            "the activity log; an empty body (`{}`) changes nothing and answers the insight as it is. "
            "(DELETE is not allowed: soft-delete instead.)"
        ),
        request=InsightWriteSerializer,
        responses={200: InsightSerializer},
        tags=TAGS,
    )
    def partial_update(self, request: Request, project_id: str, pk: str) -> Response:
        return self._update(request, replace=False)

    @extend_schema(
        summary="Activity of one insight",
        description=(
            "The insight's activity log, newest first: who changed which fields, with before and after values. "
            + ACTIVITY_ACCESS_DOCS
        ),
        responses={200: ActivityLogSerializer(many=True)},
        tags=TAGS,
    )
    @action(detail=True, methods=["get"], url_path="activity", required_scopes=["insight:read"])
    def activity(self, request: Request, project_id: str, pk: str) -> Response:
        insight = self.get_object()
        return self._activity_page(insight_id=insight.id)

    @extend_schema(
        summary="Activity of all insights",
        description=(
            "The activity log of every insight in the project the caller may see, newest first. "
            + ACTIVITY_ACCESS_DOCS
        ),
        responses={200: ActivityLogSerializer(many=True)},
        tags=TAGS,
    )
    @action(detail=False, methods=["get"], url_path="activity", required_scopes=["insight:read"])
    def all_activity(self, request: Request, project_id: str) -> Response:
        return self._activity_page(insight_id=None)

    def _update(self, request: Request, *, replace: bool) -> Response:
        data = request.data if isinstance(request.data, dict) else {}
        insight = self.get_object(restoring=not replace and data.get("deleted") is False)
        if insight.user_access_level != AccessLevel.EDITOR:
            raise exceptions.PermissionDenied("You may view this insight but not change it.")
        if replace and not set(data) & set(InsightWriteSerializer().fields):
            # A client bug (an empty body) must not wipe the insight's name, query and tags.
            raise exceptions.ValidationError(
                "PUT replaces the insight and needs its fields in the body; to change some of them, use PATCH."
            )
        body = InsightReplaceSerializer if replace else InsightWriteSerializer
        payload = body(data=request.data, context=self.get_serializer_context())
        payload.is_valid(raise_exception=True)
        insight_update_with_tags(
            project=self.project,
            user=request_user(request),
            insight=insight,
            data=payload.validated_data,
            replace=replace,
            request_id=current_request_uuid(),
        )
        return Response(self._reloaded(insight))

    def _reloaded(self, insight: Insight) -> dict[str, Any]:
        """The insight as just written (without results: writes never run its query)."""
        rows = insights_by_id(project_id=self.project.id, caller=self.caller, ids=[insight.pk])
        return self.render_insights(rows)[0]

    def _found(self) -> FoundInsight:
        """The URL's live insight (by id or short_id), if the caller may see it."""
        lookup = self.kwargs[self.lookup_field]
        found = insight_found(project_id=self.project.id, caller=self.caller, lookup=lookup)
        if found is None:
            raise exceptions.NotFound("Insight not found.")
        return found

    def _activity_page(self, *, insight_id: int | None) -> Response:
        """A page of the project's entries (of one insight, when given) on insights the caller may
        see, each as their level on its insight lets them see it (docs/access-control.md)."""
        entries = activity_list(project_id=self.project.id, caller=self.caller, insight_id=insight_id)
        paginator = self.paginator  # the viewset's own paginate_queryset takes insights only
        assert isinstance(paginator, LimitOffsetPagination)  # settings' DEFAULT_PAGINATION_CLASS
        page = paginator.paginate_queryset(entries, self.request, view=self)
        return self.get_paginated_response(ActivityLogSerializer(page, many=True).data)

    def _filters(self, params: dict[str, Any]) -> InsightFilters:
        tz = ZoneInfo(self.project.timezone)
        now = timezone.now()
        bounds = {}
        for name, end_of_day in (("date_from", False), ("date_to", True)):
            if params.get(name):
                try:
                    bounds[name] = date_resolve(params[name], now=now, tz=tz, end_of_day=end_of_day)
                except ValueError as exc:
                    raise exceptions.ValidationError({name: [str(exc)]}) from None
        return InsightFilters(
            search=params.get("search"),
            tags=normalize_tags(params.get("tags", [])),
            favorited=params.get("favorited"),
            created_by=params.get("created_by", []),
            mine=bool(params.get("user")),
            dashboards=params.get("dashboards", []),
            short_id=params.get("short_id"),
            modified_from=bounds.get("date_from"),
            modified_to=bounds.get("date_to"),
            saved=params.get("saved"),
            insight_type=params.get("insight"),
            tags_match=params["tags_match"],
            on_dashboard=params.get("on_dashboard"),
            not_viewed_since=(
                Window.last_days(params["not_viewed_in_days"], now=now, tz=tz).start
                if params.get("not_viewed_in_days")
                else None
            ),
            order=params["order"],
        )


def runnable_query(query: object) -> AnyQueryNode | None:
    """An insight's query if this service can compute it; other kinds retrieve with `result: null`."""
    try:
        node = query_parse(query)
        query_check_runnable(node)
    except (InvalidQuery, UnsupportedQuery):
        return None
    return node


def _as_insight_result(results: dict[str, Any]) -> dict[str, Any]:
    """Insights name their results `result` (the query route says `results`)."""
    return {
        "result": results["results"],
        **{name: value for name, value in results.items() if name != "results"},
    }
