from __future__ import annotations

from rest_framework import serializers

from accounts.models import OrganizationMembership, User
from apikit.fields import default_only


class UserBasicSerializer(serializers.ModelSerializer):
    """A user as shown next to things they did (created_by, viewers, activity)."""

    # Any address the server accepted (Django's validation, which allows names like `.test` that
    # strict `format: email` validators refuse).
    email = serializers.CharField(read_only=True)
    # PostHog's schema requires it (its avatars' settings); there are no avatars here.
    hedgehog_config = default_only(
        serializers.JSONField, allow_null=True, default=None, help_text="Always null."
    )

    class Meta:
        model = User
        fields = ["id", "uuid", "email", "first_name", "last_name", "hedgehog_config"]
        read_only_fields = fields


class LoginSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class MeProjectSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class MeOrganizationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    membership_level = serializers.ChoiceField(
        choices=[label for _, label in OrganizationMembership.Level.choices],
        help_text="The caller's role: admins and owners are editors of every insight.",
    )
    is_ai_data_processing_approved = serializers.BooleanField()
    projects = MeProjectSerializer(many=True)


class MeSerializer(UserBasicSerializer):
    """The signed-in user, with the organizations and projects they can act on."""

    organizations = MeOrganizationSerializer(many=True, read_only=True)

    class Meta(UserBasicSerializer.Meta):
        fields = [*UserBasicSerializer.Meta.fields, "organizations"]
        read_only_fields = fields
