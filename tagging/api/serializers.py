"""The shapes of `bulk_update_tags` and of the project's tags routes."""

from __future__ import annotations

from typing import Any, TypedDict, Unpack

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from apikit.fields import BigIntField, FieldOptions, StrictCharField
from insights.api.bulk_serializers import BULK_MAX_IDS, SkippedInsightSerializer
from tagging.api.fields import TagListField
from tagging.normalization import MAX_TAG_LENGTH, normalize_tags

BULK_MAX_PAIRS = 10_000


class BulkUpdateTags(TypedDict):
    ids: list[int]
    action: str
    tags: list[str]


class BulkUpdateTagsSerializer(serializers.Serializer):
    ids = serializers.ListField(child=BigIntField(), min_length=1, max_length=BULK_MAX_IDS)
    action = serializers.ChoiceField(choices=["add", "remove", "set"])
    tags = TagListField()

    def validate(self, attrs: BulkUpdateTags) -> BulkUpdateTags:
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


class TaggedInsightSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    tags = serializers.ListField(child=serializers.CharField())


class BulkUpdateTagsResultSerializer(serializers.Serializer):
    updated = TaggedInsightSerializer(many=True)
    skipped = SkippedInsightSerializer(many=True)


class BulkUpdateTagsSchema(OpenApiSerializerExtension):
    """`add` and `remove` need at least one tag that is not blank, which the schema says too."""

    target_class = BulkUpdateTagsSerializer

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {
            **schema,
            "if": {"properties": {"action": {"enum": ["add", "remove"]}}, "required": ["action"]},
            "then": {
                "properties": {"tags": {"minItems": 1, "contains": {"type": "string", "pattern": r"\S"}}}
            },
        }


class TagNameField(StrictCharField):
    """One tag name, normalised as everywhere (trimmed, lowercased); blank after that is a 400."""

    def __init__(self, **kwargs: Unpack[FieldOptions]) -> None:
        super().__init__(trim_whitespace=False, **kwargs)

    def to_internal_value(self, data: object) -> str:
        names = normalize_tags([super().to_internal_value(data)])
        if not names:
            self.fail("blank")
        if len(names[0]) > MAX_TAG_LENGTH:
            raise serializers.ValidationError(f"A tag may be at most {MAX_TAG_LENGTH} characters.")
        return names[0]


TagRename = TypedDict("TagRename", {"from": str, "to": str})  # `from` is a keyword


class TagRenameSerializer(serializers.Serializer):
    to = TagNameField(help_text="The new name; if the project has this tag already, the two merge.")

    def get_fields(self) -> dict[str, serializers.Field]:
        # `from` is a Python keyword, so it cannot be declared as a class attribute.
        return {"from": TagNameField(help_text="The tag to rename."), **super().get_fields()}

    def validate(self, attrs: TagRename) -> TagRename:
        if attrs["from"] == attrs["to"]:
            raise serializers.ValidationError({"to": "`to` names the same tag as `from`."})
        return attrs


class TagDeleteSerializer(serializers.Serializer):
    name = TagNameField(help_text="The tag to take off every insight and delete.")


class TagListQuerySerializer(serializers.Serializer):
    usage = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Answer objects with each tag's insight count and latest view instead of bare names.",
    )


class TagUsageSerializer(serializers.Serializer):
    name = serializers.CharField()
    insights = serializers.IntegerField(help_text="Live insights carrying the tag that the caller can see.")
    last_used_at = serializers.DateTimeField(
        allow_null=True, help_text="The latest view of any of those insights; null if none was viewed."
    )


class TagChangeResultSerializer(serializers.Serializer):
    insights = serializers.IntegerField(help_text="How many insights changed (or would, on a dry run).")
