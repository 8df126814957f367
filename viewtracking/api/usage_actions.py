"""`views`, `viewers` and `usage` (docs/usage-analytics.md): who looks at which insight, and how often."""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from apikit.pagination import LimitOffsetPagination
from insights.api.base import InsightViewSetBase
from insights.dates import date_resolve
from viewtracking.api.usage_serializers import (
    InsightUsageSerializer,
    InsightViewerSerializer,
    InsightViewsQuerySerializer,
    InsightViewsSerializer,
    UsageQuerySerializer,
    WindowDaysQuerySerializer,
)
from viewtracking.usage import (
    Counts,
    Window,
    insight_viewers,
    insight_viewers_count,
    insight_views_series,
    usage_summary,
)

TAGS = ["insights"]
EXACT = (
    " Exact and fresh: per-user daily rollups plus the views not rolled up yet; days are the project's "
    "(its time zone)."
)
_USER = {"id": 7, "uuid": "0190a5f2-7c1e-7b3a-9d2e-4f1a2b3c4d5e", "email": "ada@example.com",
         "first_name": "Ada", "last_name": "Lovelace", "hedgehog_config": None}  # fmt: skip
VIEWS_EXAMPLE = {
    "interval": "week", "date_from": "2026-11-16", "date_to": "2026-11-29", "timezone": "Europe/Paris",
    "total": {"view_count": 41, "unique_viewers": 6},
    "series": [{"date": "2026-11-16", "view_count": 25, "unique_viewers": 5},
               {"date": "2026-11-23", "view_count": 16, "unique_viewers": 4}],
}  # fmt: skip
VIEWER_EXAMPLE = {"user": _USER, "view_count": 12, "last_viewed_at": "2026-11-29T08:41:07.512Z"}
USAGE_EXAMPLE = {
    "days": 1, "date_from": "2026-11-28", "timezone": "UTC", "insights": 120, "viewed": 31,
    "not_viewed_in_window": 89, "never_viewed": 12, "views": 412, "viewers": 9,
    "series": [{"date": "2026-11-28", "view_count": 230, "unique_viewers": 8},
               {"date": "2026-11-29", "view_count": 182, "unique_viewers": 7}],
    "top_viewers": [{"user": _USER, "view_count": 97}],
}  # fmt: skip


def _counts(counts: Counts) -> dict[str, int]:
    return {"view_count": counts.view_count, "unique_viewers": counts.unique_viewers}


def _series(series: list[tuple[date, Counts]]) -> list[dict[str, str | int]]:
    return [{"date": day.isoformat(), **_counts(counts)} for day, counts in series]


class InsightUsageActions(InsightViewSetBase):
    @extend_schema(
        summary="Views of an insight over time",
        description=(
            "The insight's views and distinct viewers per day, week (from Monday) or month, every bucket "
            "present (zeros included), oldest first, and over the whole window under `total`. The window "
            "is whole days of the project's time zone, from `date_from`'s day to `date_to`'s (default: "
            "the last 90 days until now); a first or last partial week or month counts only its days in "
            "the window. `unique_viewers` is the number of distinct users in each bucket and in the "
            "whole window — never a sum of smaller buckets — for any window inside the rollups' "
            f"retention ({settings.VIEW_ROLLUP_RETENTION_DAYS} days; a longer window, or a `date_to` before "
            "`date_from`, is a 400)." + EXACT
        ),
        parameters=[InsightViewsQuerySerializer],
        responses={200: InsightViewsSerializer},
        examples=[OpenApiExample("Two weeks, by week", value=VIEWS_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    @action(detail=True, methods=["get"], required_scopes=["insight:read"])
    def views(self, request: Request, project_id: str, pk: str) -> Response:
        insight = self.get_object()
        params = InsightViewsQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        window = self._window(params.validated_data)
        interval = params.validated_data["interval"]
        found = insight_views_series(insight=insight, window=window, interval=interval)
        return Response(
            {
                "interval": interval,
                "date_from": window.first_day.isoformat(),
                "date_to": window.last_day.isoformat(),
                "timezone": window.tz.key,
                "total": _counts(found.total),
                "series": _series(found.series),
            }
        )

    @extend_schema(
        summary="Viewers of an insight",
        description=(
            "Who viewed the insight in the last `days` days (from the start of the day `days` days ago, "
            "in the project's time zone, until now), most recent viewer first (then by user id), each "
            "with their number of views in the window and their latest view. Paginated with "
            "`limit`/`offset`; `?format=csv` gives one row per viewer." + EXACT
        ),
        parameters=[WindowDaysQuerySerializer],
        responses={200: InsightViewerSerializer(many=True)},
        examples=[OpenApiExample("The most recent viewer", value=VIEWER_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    @action(detail=True, methods=["get"], required_scopes=["insight:read"])
    def viewers(self, request: Request, project_id: str, pk: str) -> Response:
        insight = self.get_object()
        params = WindowDaysQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        window = Window.last_days(params.validated_data["days"], now=timezone.now(), tz=self._tz())
        paginator = self.paginator
        assert isinstance(paginator, LimitOffsetPagination)  # settings' DEFAULT_PAGINATION_CLASS
        rows = paginator.paginate(
            request,
            page=lambda limit, offset: insight_viewers(
                insight=insight, window=window, limit=limit, offset=offset
            ),
            count=lambda: insight_viewers_count(insight=insight, window=window),
        )
        return self.get_paginated_response(
            [
                {"user": row.user, "view_count": row.view_count, "last_viewed_at": row.last_viewed_at}
                for row in rows
            ]
        )

    @extend_schema(
        summary="Usage of the project's insights",
        description=(
            "The project at a glance over the last `days` days (from the start of the day `days` days "
            "ago, in the project's time zone, until now), counting only insights the caller can see: "
            "`insights` (live ones), `viewed` (with a view in the window), `not_viewed_in_window` (the "
            "rest), `never_viewed` (no view ever; a subset of the rest), `views` and `viewers` (view "
            "events and distinct users in the window), `series` (one point a day, zeros included) and "
            "`top_viewers` (up to five users, most views first). An insight the caller cannot see, or a "
            "deleted one, is never counted, listed or named." + EXACT
        ),
        parameters=[UsageQuerySerializer],
        responses={200: InsightUsageSerializer},
        examples=[OpenApiExample("Two days", value=USAGE_EXAMPLE, response_only=True)],
        tags=TAGS,
    )
    @action(detail=False, methods=["get"], required_scopes=["insight:read"], pagination_class=None)
    def usage(self, request: Request, project_id: str) -> Response:
        params = UsageQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        days = params.validated_data["days"]
        window = Window.last_days(days, now=timezone.now(), tz=self._tz())
        usage = usage_summary(project_id=self.project.id, caller=self.caller, window=window)
        return Response(
            {
                "days": days,
                "date_from": window.first_day.isoformat(),
                "timezone": window.tz.key,
                "insights": usage.insights,
                "viewed": usage.viewed,
                "not_viewed_in_window": usage.insights - usage.viewed,
                "never_viewed": usage.never_viewed,
                "views": usage.views,
                "viewers": usage.viewers,
                "series": _series(usage.series),
                "top_viewers": [{"user": user, "view_count": views} for user, views in usage.top_viewers],
            }
        )

    def _tz(self) -> ZoneInfo:
        return ZoneInfo(self.project.timezone)

    def _window(self, params: dict[str, Any]) -> Window:
        """The whole days from `date_from`'s to `date_to`'s (or today), or a 400 naming the parameter."""
        tz, now = self._tz(), timezone.now()
        bounds = {}
        for name, end_of_day in (("date_from", False), ("date_to", True)):
            try:
                bounds[name] = (
                    date_resolve(params[name], now=now, tz=tz, end_of_day=end_of_day)
                    if params.get(name)
                    else now
                )
            except ValueError as exc:
                raise exceptions.ValidationError({name: [str(exc)]}) from None
        window = Window.between(bounds["date_from"], bounds["date_to"], tz)
        if window.last_day < window.first_day:
            raise exceptions.ValidationError({"date_to": ["date_to must not be before date_from."]})
        if (window.last_day - window.first_day).days >= settings.VIEW_ROLLUP_RETENTION_DAYS:
            raise exceptions.ValidationError(
                {
                    "date_from": [
                        f"A window is at most {settings.VIEW_ROLLUP_RETENTION_DAYS} days: views are kept that long."
                    ]
                }
            )
        return window
