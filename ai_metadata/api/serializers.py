"""The shapes of `generate_metadata`."""

from __future__ import annotations

from rest_framework import serializers

from insights.api.serializers import QueryNodeField

MISSING_QUERY = "Missing 'query' field in request body"


class GenerateMetadataSerializer(serializers.Serializer):
    """An insight-shaped body; only `query` is used."""

    query = QueryNodeField(
        error_messages={"required": MISSING_QUERY, "null": MISSING_QUERY},
        help_text="The query node to name: any node an insight may hold, and the person and group lists.",
    )


class MetadataSuggestionSerializer(serializers.Serializer):
    name = serializers.CharField(help_text="Title Case, at most 100 characters.")
    description = serializers.CharField(help_text="One sentence, at most 200 characters.")
    provider = serializers.ChoiceField(choices=["heuristic", "openai", "anthropic"])
    fallback = serializers.BooleanField(
        help_text="True when the configured provider failed and the heuristic answered."
    )
