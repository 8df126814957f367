"""The shapes of `bulk_delete` and `bulk_restore`, and what every bulk write shares: the limit on
`ids`, the `dry_run` parameter and the shape of a skipped id."""

from __future__ import annotations

from rest_framework import serializers

from apikit.fields import BigIntField

BULK_MAX_IDS = 500


class DryRunQuerySerializer(serializers.Serializer):
    dry_run = serializers.BooleanField(
        required=False, default=False, help_text="Answer as if applied, without writing anything."
    )


class BulkDeleteSerializer(serializers.Serializer):
    ids = serializers.ListField(child=BigIntField(), min_length=1, max_length=BULK_MAX_IDS)


class DeletedInsightSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    deleted = serializers.BooleanField()


class SkippedInsightSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reason = serializers.CharField()


class BulkDeleteResultSerializer(serializers.Serializer):
    updated = DeletedInsightSerializer(many=True)
    skipped = SkippedInsightSerializer(many=True)
