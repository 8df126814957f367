"""The shapes of `bulk_update_tags`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from rest_framework import serializers

from apikit.fields import BigIntField
from tagging.api.fields import TagListField

BULK_MAX_IDS = 500
BULK_MAX_PAIRS = 10_000


class BulkUpdateTagsSerializer(serializers.Serializer):
    ids = serializers.ListField(child=BigIntField(), min_length=1, max_length=BULK_MAX_IDS)
    action = serializers.ChoiceField(choices=["add", "remove", "set"])
    tags = TagListField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["action"] in ("add", "remove") and not attrs["tags"]:
            raise serializers.ValidationError(
                {"tags": f"tags must not be empty for action '{attrs['action']}'."}
            )
        if len(set(attrs["ids"])) * len(attrs["tags"]) > BULK_MAX_PAIRS:
            raise serializers.ValidationError(
                {
                    "tags": f"At most {BULK_MAX_PAIRS} insight-tag pairs per request (distinct ids times distinct tags)."
                }
            )
        return attrs


class BulkUpdateTagsQuerySerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Answer as if applied, without writing anything."
    )


class TaggedInsightSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    tags = serializers.ListField(child=serializers.CharField())


class SkippedInsightSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()


class BulkUpdateTagsResultSerializer(serializers.Serializer):
    updated = TaggedInsightSerializer(many=True)
    skipped = SkippedInsightSerializer(many=True)


class BulkUpdateTagsSchema(OpenApiSerializerExtension):
    """`add` and `remove` need at least one tag that is not blank, which the schema says too."""

    target_class = BulkUpdateTagsSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {
            **schema,
            "if": {"properties": {"action": {"enum": ["add", "remove"]}}, "required": ["action"]},
            "then": {
                "properties": {"tags": {"minItems": 1, "contains": {"type": "string", "pattern": r"\S"}}}
            },
        }
