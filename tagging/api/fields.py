"""The request field of a list of tag names (insight writes and bulk_update_tags)."""

from __future__ import annotations

from typing import Any, Unpack

from rest_framework import serializers

from apikit.fields import FieldOptions, StrictCharField
from tagging.normalization import MAX_TAG_LENGTH, normalize_tags

MAX_TAGS = 100


class TagListField(serializers.ListField):
    """Tag names, normalised (trimmed, lowercased, de-duplicated, sorted) on the way in."""

    def __init__(self, **kwargs: Unpack[FieldOptions]) -> None:
        super().__init__(
            child=StrictCharField(allow_blank=True, trim_whitespace=False),
            max_length=MAX_TAGS,
            **kwargs,
        )

    def to_internal_value(self, data: Any) -> list[str]:
        # The count limit is on the list as sent: DRF would check it after normalising.
        if isinstance(data, list) and len(data) > MAX_TAGS:
            raise serializers.ValidationError(f"At most {MAX_TAGS} tags.", code="max_length")
        names = normalize_tags(super().to_internal_value(data))
        too_long = [name for name in names if len(name) > MAX_TAG_LENGTH]
        if too_long:
            raise serializers.ValidationError(f"Each tag may be at most {MAX_TAG_LENGTH} characters.")
        return names
