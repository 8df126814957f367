"""The shapes of `viewed`, `my_last_viewed` and `trending`."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import UserBasicSerializer
from apikit.fields import BigIntField, ParamsSerializer
from insights.api.serializers import InsightBasicSerializer
from insights.models import Insight

VIEWED_MAX_IDS = 2500


class ViewedSerializer(serializers.Serializer):
    insight_ids = serializers.ListField(child=BigIntField(), min_length=1, max_length=VIEWED_MAX_IDS)


class TrendingQuerySerializer(ParamsSerializer):
    days = serializers.IntegerField(min_value=1, max_value=365, default=7, help_text="Window length in days.")
    limit = serializers.IntegerField(min_value=1, max_value=100, default=10)
    offset = serializers.IntegerField(min_value=0, max_value=10**9, default=0)


class TrendingInsightSerializer(InsightBasicSerializer):
    """An insight's basic shape with its views in the window: counts and recent viewers."""

    # Needs the context's `trending` (insight id → TrendingRow) and insights annotated with
    # `recent_viewers`.

    view_count = serializers.SerializerMethodField()
    unique_viewers = serializers.SerializerMethodField()
    viewers = UserBasicSerializer(many=True, read_only=True, source="recent_viewers")

    @extend_schema_field(serializers.IntegerField())
    def get_view_count(self, insight: Insight) -> int:
        return self.context["trending"][insight.id].view_count

    @extend_schema_field(serializers.IntegerField())
    def get_unique_viewers(self, insight: Insight) -> int:
        return self.context["trending"][insight.id].unique_viewers
