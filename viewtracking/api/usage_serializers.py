"""The shapes of the usage routes: `views`, `viewers` and `usage` (docs/usage-analytics.md)."""

from __future__ import annotations

from rest_framework import serializers

from accounts.api.serializers import UserBasicSerializer
from apikit.fields import ParamsSerializer
from insights.api.serializers import DateParamField
from viewtracking.usage import INTERVALS

MAX_WINDOW_DAYS = 365


class InsightViewsQuerySerializer(ParamsSerializer):
    date_from = DateParamField(
        default="-90d",
        help_text="Start of the window (its whole day, in the project's time zone): `YYYY-MM-DD`, an ISO 8601 "
        "datetime or e.g. `-90d`, `-3m`, `-1y`. Default `-90d`.",
    )
    date_to = DateParamField(
        allow_blank=True,
        help_text="End of the window (the end of its day); empty or absent: now.",
    )
    interval = serializers.ChoiceField(
        choices=INTERVALS, default="day", help_text="Bucket size; weeks start on Monday."
    )


class ViewCountsSerializer(serializers.Serializer):
    view_count = serializers.IntegerField(help_text="View events (every recorded view counts).")
    unique_viewers = serializers.IntegerField(help_text="Distinct users (never a sum of smaller buckets).")


class ViewBucketSerializer(ViewCountsSerializer):
    date = serializers.DateField(help_text="The bucket's first day (a week's Monday, a month's first day).")


class InsightViewsSerializer(serializers.Serializer):
    interval = serializers.ChoiceField(choices=INTERVALS)
    date_from = serializers.DateField(help_text="The window's first day, in the project's time zone.")
    date_to = serializers.DateField(help_text="The window's last day, in the project's time zone.")
    timezone = serializers.CharField(help_text="The project's time zone, in which days are counted.")
    total = ViewCountsSerializer(help_text="The whole window: distinct users over all of it.")
    series = ViewBucketSerializer(
        many=True, help_text="Every bucket of the window, oldest first, zeros included."
    )


def _window_days(default: int) -> serializers.IntegerField:
    return serializers.IntegerField(
        min_value=1,
        max_value=MAX_WINDOW_DAYS,
        default=default,
        help_text="The window: from the start of the day `days` days ago (project time zone) until now.",
    )


class WindowDaysQuerySerializer(ParamsSerializer):
    days = _window_days(90)


class UsageQuerySerializer(ParamsSerializer):
    days = _window_days(30)


class InsightViewerSerializer(serializers.Serializer):
    user = UserBasicSerializer()
    view_count = serializers.IntegerField(help_text="The user's views of the insight in the window.")
    last_viewed_at = serializers.DateTimeField(help_text="The user's latest view of the insight.")


class TopViewerSerializer(serializers.Serializer):
    user = UserBasicSerializer()
    view_count = serializers.IntegerField(
        help_text="The user's views, of insights the caller can see, in the window."
    )


class InsightUsageSerializer(serializers.Serializer):
    days = serializers.IntegerField(help_text="The window's length in days, as asked.")
    date_from = serializers.DateField(help_text="The window's first day, in the project's time zone.")
    timezone = serializers.CharField()
    insights = serializers.IntegerField(help_text="Live insights the caller can see.")
    viewed = serializers.IntegerField(help_text="Of those, insights viewed in the window.")
    not_viewed_in_window = serializers.IntegerField(
        help_text="The rest: `viewed + not_viewed_in_window = insights`."
    )
    never_viewed = serializers.IntegerField(help_text="Insights nobody ever viewed (a subset of the rest).")
    views = serializers.IntegerField(help_text="View events of those insights in the window.")
    viewers = serializers.IntegerField(help_text="Distinct users who viewed them in the window.")
    series = ViewBucketSerializer(many=True, help_text="One point a day, oldest first, zeros included.")
    top_viewers = TopViewerSerializer(
        many=True, help_text="Up to five users with the most views, most first."
    )
