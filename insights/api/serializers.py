"""Insight API shapes: input serializers validate, output serializers render pre-loaded data."""

from __future__ import annotations

from typing import Any, Protocol, TypedDict, Unpack

from django.core.validators import RegexValidator
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.api.serializers import UserBasicSerializer
from apikit.fields import (
    DatabaseIdField,
    FieldOptions,
    JSONListParam,
    ParamsSerializer,
    StrictBooleanField,
    StrictCharField,
    default_only,
)
from insights.access import LEVEL, activity_changes_shown
from insights.api.query_schema import query_node_components
from insights.cancellation import CLIENT_QUERY_ID
from insights.models import AccessLevel, ActivityLog, Dashboard, Insight
from insights.query_nodes import InvalidQuery, query_parse
from insights.query_runner import REFRESH_MODES
from insights.selectors import INSIGHT_TYPES, ORDER_CHOICES, TAGS_MATCH
from tagging.api.fields import MAX_TAGS, TagListField
from tagging.normalization import MAX_TAG_LENGTH

MAX_DASHBOARDS = 100
INT32 = 2**31 - 1


class QueryNodeField(serializers.JSONField):
    """A query node: a JSON object with a `kind`, documented as the `QueryNode` schema (or, with
    `runnable=True`, the `RunnableQueryNode` schema), generated from the models that validate it."""

    def __init__(self, *, runnable: bool = False, **kwargs: Any) -> None:
        self.component = "RunnableQueryNode" if runnable else "QueryNode"
        super().__init__(**kwargs)


class QueryNodeFieldSchema(OpenApiSerializerFieldExtension):
    target_class = QueryNodeField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        for name, schema in query_node_components().items():
            auto_schema.registry.register_on_missing(
                ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
            )
        return {"$ref": f"#/components/schemas/{self.target.component}"}


def _validate_query(value: object) -> object:
    if value is None:
        return value
    try:
        query_parse(value)
    except InvalidQuery as exc:
        raise serializers.ValidationError(str(exc)) from None
    return value


class InsightWriteSerializer(serializers.Serializer):
    """Body of create and PATCH. Every field is optional (a PATCH with none changes nothing)."""

    name = StrictCharField(max_length=400, allow_null=True, allow_blank=True, required=False)
    derived_name = StrictCharField(max_length=400, allow_null=True, allow_blank=True, required=False)
    description = StrictCharField(max_length=400, allow_null=True, allow_blank=True, required=False)
    query = QueryNodeField(required=False, allow_null=True, validators=[_validate_query])
    order = serializers.IntegerField(min_value=-INT32, max_value=INT32, allow_null=True, required=False)
    favorited = StrictBooleanField(required=False)
    saved = StrictBooleanField(
        required=False, help_text="`false` marks a draft, left out of `saved=true` lists. Default `true`."
    )
    tags = TagListField(required=False)
    dashboards = serializers.ListField(child=DatabaseIdField(), max_length=MAX_DASHBOARDS, required=False)
    deleted = StrictBooleanField(
        required=False, help_text="`true` soft-deletes the insight, `false` restores it (update only)."
    )
    _create_in_folder = StrictCharField(
        max_length=400,
        required=False,
        allow_blank=True,
        help_text="Accepted for compatibility with PostHog clients; this service has no folders and ignores it.",
    )

    def validate_dashboards(self, value: list[int]) -> list[int]:
        wanted = sorted(set(value))
        found = set(
            Dashboard.objects.filter(
                project=self.context["project"], id__in=wanted, deleted=False
            ).values_list("id", flat=True)
        )
        missing = [dashboard_id for dashboard_id in wanted if dashboard_id not in found]
        if missing:
            raise serializers.ValidationError(f"Dashboard {missing[0]} does not exist in this project.")
        return wanted


class InsightReplaceSerializer(InsightWriteSerializer):
    """Body of PUT: the insight's fields, at least one of them (omitted ones reset to their defaults;
    a body naming none of them, an empty one say, is a 400 rather than a wipe)."""


class InsightReplaceSerializerSchema(OpenApiSerializerExtension):
    """The schema says what PUT refuses: an object with no property (the view refuses one without
    any of the insight's fields, unknown keys being ignored)."""

    target_class = InsightReplaceSerializer

    def map_serializer(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "minProperties": 1}


@extend_schema_field(
    {
        "anyOf": [
            {"type": "string", "format": "date"},
            {"type": "string", "format": "date-time"},
            {"type": "string", "pattern": r"^-\d{1,4}[hdwmy]$"},
        ]
    }
)
class DateParamField(serializers.CharField):
    """A date parameter in the one grammar of every route (insights/dates.py): a date, a datetime,
    hours, days, weeks, calendar months, quarters or years back (`-24h`, `-7d`, `-3m`, `-1q`), or the
    start of the current day, week, month, quarter or year (`mStart`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=40, required=False, **kwargs)


class InsightListQuerySerializer(ParamsSerializer):
    """Query parameters of the insight list."""

    search = serializers.CharField(
        max_length=200, required=False, help_text="Matches name, description or tags."
    )
    tags = JSONListParam(
        child=serializers.CharField(max_length=MAX_TAG_LENGTH),
        max_length=MAX_TAGS,
        required=False,
        help_text='JSON array of tag names; insights with any of them match, e.g. `["growth"]`.',
    )
    favorited = serializers.BooleanField(required=False, allow_null=True, default=None)
    created_by = JSONListParam(
        child=DatabaseIdField(), max_length=100, required=False, help_text="JSON array of user ids."
    )
    user = serializers.BooleanField(
        required=False, default=False, help_text="Only insights the caller created."
    )
    dashboards = JSONListParam(
        child=DatabaseIdField(),
        max_length=20,
        required=False,
        help_text="JSON array of dashboard ids; an insight must be on all of them.",
    )
    short_id = serializers.CharField(max_length=12, required=False)
    date_from = DateParamField(
        help_text="Last modified on or after: `YYYY-MM-DD`, an ISO 8601 datetime or `-7d`."
    )
    date_to = DateParamField(
        help_text="Last modified on or before: `YYYY-MM-DD`, an ISO 8601 datetime or `-7d`."
    )
    order = serializers.ChoiceField(choices=ORDER_CHOICES, required=False, default="-last_modified_at")
    basic = serializers.BooleanField(required=False, default=False, help_text="Return the basic shape.")
    saved = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="`true`: saved insights only; `false`: drafts only.",
    )
    insight = serializers.ChoiceField(
        choices=INSIGHT_TYPES,
        required=False,
        help_text=(
            "Only insights of this type: an insight kind (`TRENDS` for TrendsQuery, …), `SQL` "
            "(DataVisualizationNode), `HOG` (HogQuery) or `JSON` (any other query)."
        ),
    )
    tags_match = serializers.ChoiceField(
        choices=TAGS_MATCH,
        required=False,
        default="any",
        help_text="How `tags` matches: `any` (default, as PostHog) or `all` of them.",
    )
    on_dashboard = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="`true`: on at least one live dashboard; `false`: on none (orphaned).",
    )
    not_viewed_in_days = serializers.IntegerField(
        min_value=1,
        max_value=3650,
        required=False,
        help_text=(
            "Only insights nobody viewed since the start of the day N days ago (project time zone), "
            "never-viewed ones included: the stale ones."
        ),
    )


class DashboardTileBasicSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The tile's id.")
    dashboard_id = serializers.IntegerField()
    deleted = serializers.BooleanField(help_text="Always `false`: tiles of deleted dashboards are left out.")


# PostHog's legacy dashboard permission levels: 21 view, 37 edit.
LEGACY_LEVELS = ((21, "can view"), (37, "can edit"))


class ShownInsight(Protocol):
    """What the shapes' method fields read of an insight: a row of insights.selectors.insight_rows, or
    an insight annotated as those rows are."""

    @property
    def results_fingerprint(self) -> str | None: ...
    @property
    def live_tiles(self) -> list[dict[str, int]]: ...  # [{"id", "dashboard_id"}] of live dashboards
    @property
    def tag_names(self) -> list[str]: ...
    @property
    def user_access_level(self) -> str: ...  # insights.access.LEVEL


class InsightBasicSerializer(serializers.Serializer):
    """An insight's basic shape: what lists show."""

    # Renders the rows of insights.selectors.insight_rows (or insights annotated as they are: with
    # `tag_names`, `live_tiles`, `last_viewed_at` and `user_access_level`), so rendering a page runs no
    # SQL statement; the context's `last_refresh` (results fingerprint → time) comes from Redis. The
    # API writes these shapes with their precompiled writers (apikit.json_rows): the method
    # fields read only `self.context` and the row.

    id = serializers.IntegerField(read_only=True)
    short_id = serializers.CharField(read_only=True)
    name = serializers.CharField(allow_null=True, read_only=True)
    derived_name = serializers.CharField(allow_null=True, read_only=True)
    filters = serializers.SerializerMethodField(
        help_text="Always `{}`: PostHog's legacy filters; an insight is described by `query`."
    )
    query = QueryNodeField(allow_null=True, read_only=True)
    dashboards = serializers.SerializerMethodField()
    dashboard_tiles = serializers.SerializerMethodField()
    description = serializers.CharField(allow_null=True, read_only=True)
    last_refresh = serializers.SerializerMethodField(
        help_text="When the cached results of the insight's query were computed; null when none are cached."
    )
    refreshing = serializers.SerializerMethodField(
        help_text="Always `false`: results are computed on request (an async run reports on `query_status`)."
    )
    saved = serializers.BooleanField(read_only=True)
    tags = serializers.SerializerMethodField()
    favorited = serializers.BooleanField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    created_by = UserBasicSerializer(allow_null=True, read_only=True)
    last_modified_at = serializers.DateTimeField(read_only=True)
    last_modified_by = UserBasicSerializer(allow_null=True, read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    user_access_level = serializers.SerializerMethodField(
        help_text="The caller's effective access level to this insight: `editor`, `viewer` (read only)."
    )
    last_viewed_at = serializers.DateTimeField(allow_null=True, read_only=True, default=None)

    @extend_schema_field(
        {"type": "object", "additionalProperties": False, "maxProperties": 0, "description": "Always `{}`."}
    )
    def get_filters(self, insight: Insight) -> dict[str, Any]:
        return {}

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_dashboards(self, insight: ShownInsight) -> list[int]:
        return [tile["dashboard_id"] for tile in insight.live_tiles]

    @extend_schema_field(DashboardTileBasicSerializer(many=True))
    def get_dashboard_tiles(self, insight: ShownInsight) -> list[dict[str, Any]]:
        return [{**tile, "deleted": False} for tile in insight.live_tiles]

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_last_refresh(self, insight: ShownInsight) -> str | None:
        return self.context.get("last_refresh", {}).get(insight.results_fingerprint)

    @extend_schema_field(serializers.BooleanField())
    def get_refreshing(self, insight: Insight) -> bool:
        return False

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_tags(self, insight: ShownInsight) -> list[str]:
        return insight.tag_names

    @extend_schema_field(serializers.ChoiceField(choices=AccessLevel.choices))
    def get_user_access_level(self, insight: ShownInsight) -> str:
        return insight.user_access_level  # annotated by the viewset's visibility (insights.access)


def _absent(field: type[serializers.Field], help_text: str, **kwargs: Any) -> serializers.Field:
    """A field PostHog's schema requires on an insight that this service leaves null (or `default`):
    no row has a column for it."""
    kwargs.setdefault("default", None)
    return default_only(field, allow_null=kwargs["default"] is None, help_text=help_text, **kwargs)


class InsightSerializer(InsightBasicSerializer):
    """An insight's full shape: the basic shape, `order`, `deleted`, and the result fields (filled on
    retrieve; null or fixed elsewhere, as PostHog's clients expect them present)."""

    order = serializers.IntegerField(allow_null=True, read_only=True)
    deleted = serializers.BooleanField(read_only=True)
    result = _absent(serializers.JSONField, "The query's results: on retrieve only (see there).")
    is_cached = _absent(serializers.BooleanField, "On retrieve only; `false` elsewhere.", default=False)
    query_status = _absent(serializers.JSONField, "An async run's status, on retrieve only.")
    timezone = serializers.SerializerMethodField(help_text="The project's time zone, which results are in.")
    cache_target_age = _absent(serializers.DateTimeField, "Always null: freshness depends on the interval.")
    next_allowed_client_refresh = _absent(serializers.DateTimeField, "Always null: refresh at any time.")
    hasMore = _absent(serializers.BooleanField, "Always null (PostHog's paged results; Trends has none).")
    columns = _absent(serializers.JSONField, "Always null (PostHog's table results).")
    hogql = _absent(serializers.CharField, "Always null (PostHog's generated SQL).")
    types = _absent(serializers.JSONField, "Always null (PostHog's column types).")
    resolved_date_range = _absent(serializers.JSONField, "Always null.")
    is_sample = _absent(serializers.BooleanField, "Always `false`: no sample insights here.", default=False)
    alerts = _absent(
        serializers.ListField, "Always `[]`: no alerts here.", default=list, child=serializers.JSONField()
    )
    effective_restriction_level = _absent(
        serializers.ChoiceField,
        "PostHog's legacy dashboard restriction: always 21 (everyone in the project may edit).",
        default=21,
        choices=LEGACY_LEVELS,
    )
    effective_privilege_level = serializers.SerializerMethodField(
        help_text="PostHog's legacy privilege: 37 (can edit) for an editor, 21 (can view) otherwise."
    )

    @extend_schema_field(serializers.CharField())
    def get_timezone(self, insight: Insight) -> str:
        return self.context["project"].timezone

    @extend_schema_field(serializers.ChoiceField(choices=LEGACY_LEVELS))
    def get_effective_privilege_level(self, insight: ShownInsight) -> int:
        return caller_access_fields(insight.user_access_level)["effective_privilege_level"]


class CallerAccess(TypedDict):
    user_access_level: str
    effective_privilege_level: int


def caller_access_fields(level: str) -> CallerAccess:
    """The fields of an insight's shapes that depend on who asks, for the caller's `level`."""
    return {
        "user_access_level": level,
        "effective_privilege_level": 37 if level == AccessLevel.EDITOR else 21,
    }


class InsightListItemSerializer(InsightSerializer):
    """A row of the insight list: the full shape, or with `basic=true` the basic shape (without the
    fields marked "Absent with `basic=true`")."""

    # Schema only: the list renders InsightSerializer or InsightBasicSerializer.

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for name in fields.keys() - InsightBasicSerializer().get_fields().keys():
            fields[name].read_only, fields[name].required = False, False
            fields[name].help_text = f"{fields[name].help_text or ''} Absent with `basic=true`.".strip()
        return fields


class ActivityChangeSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["Insight"], help_text="What changed: always an insight.")
    action = serializers.ChoiceField(choices=["changed"])
    field = serializers.CharField(
        help_text="The changed field: `name`, `query`, `tags`, `access_controls`, …"
    )
    before = serializers.JSONField(allow_null=True)
    after = serializers.JSONField(allow_null=True)


class ActivityDetailSerializer(serializers.Serializer):
    name = serializers.CharField(allow_null=True)
    short_id = serializers.CharField()
    changes = ActivityChangeSerializer(many=True)


class ActivityLogSerializer(serializers.ModelSerializer):
    user = UserBasicSerializer(allow_null=True, read_only=True)
    scope = serializers.SerializerMethodField()
    item_id = serializers.SerializerMethodField()
    detail = ActivityDetailSerializer(read_only=True)

    class Meta:
        model = ActivityLog
        fields = ["id", "user", "activity", "scope", "item_id", "detail", "request_id", "created_at"]
        read_only_fields = fields

    @extend_schema_field(serializers.ChoiceField(choices=["Insight"]))
    def get_scope(self, entry: ActivityLog) -> str:
        return "Insight"

    def get_item_id(self, entry: ActivityLog) -> str:
        return str(entry.insight_id)

    def to_representation(self, entry: ActivityLog) -> dict[str, Any]:
        # The caller's level on the entry's insight comes with the entry (`activity_list`); without
        # it, the entry is shown as to someone who is not an editor.
        shown = super().to_representation(entry)
        level = getattr(entry, LEVEL, None)
        shown["detail"]["changes"] = activity_changes_shown(shown["detail"]["changes"], level=level)
        return shown


def ClientQueryIdField(**kwargs: Unpack[FieldOptions]) -> StrictCharField:
    """The caller's id for a query run: 1-128 characters of [A-Za-z0-9_.:-]."""
    message = "client_query_id must be 1-128 characters of A-Z, a-z, 0-9, _ . : -"
    return StrictCharField(max_length=128, validators=[RegexValidator(CLIENT_QUERY_ID, message)], **kwargs)


class CancelSerializer(serializers.Serializer):
    client_query_id = ClientQueryIdField()


class CancelResultSerializer(serializers.Serializer):
    cancelled = serializers.BooleanField()


# --- Query results -------------------------------------------------------------------------------------

REFRESH_HELP = (
    "`blocking` (default): the cached result while fresh, else compute now; `force_blocking`: always "
    "compute; `force_cache`: only the cache (null when missing); `async`/`force_async`: answer at once "
    "and compute on a worker (poll the query status route). "
    "PostHog's other spellings are accepted: `true` (= `force_blocking`), `false` (= `force_cache`), "
    "`lazy_async` (= `async`) and `async_except_on_cache_miss` (= `blocking`)."
)


# PostHog's other spellings of a refresh mode, and the mode each means here.
REFRESH_ALIASES = {
    "true": "force_blocking",
    "false": "force_cache",
    "lazy_async": "async",
    "async_except_on_cache_miss": "blocking",
}


class RefreshField(serializers.ChoiceField):
    """A refresh mode (`REFRESH_MODES`), or one of PostHog's other spellings of one."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            choices=[*REFRESH_MODES, *REFRESH_ALIASES], default="blocking", help_text=REFRESH_HELP, **kwargs
        )

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool):  # a JSON body's `"refresh": true`
            data = str(data).lower()
        value = super().to_internal_value(data)
        return REFRESH_ALIASES.get(value, value)


class BodyRefreshField(RefreshField):
    """`refresh` in a JSON body, where PostHog's older clients send a boolean."""


class BodyRefreshFieldSchema(OpenApiSerializerFieldExtension):
    target_class = BodyRefreshField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: str) -> dict[str, Any]:
        choices = auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)
        enum = ResolvedComponent(
            name="RefreshEnum",
            type=ResolvedComponent.SCHEMA,
            object="RefreshEnum",
            schema={"type": "string", "enum": choices["enum"]},
        )
        auto_schema.registry.register_on_missing(enum)
        boolean = {"type": "boolean", "description": "`true` means `force_blocking`, `false` `force_cache`."}
        return {"oneOf": [enum.ref, boolean], "description": choices.get("description", "")}


class TrendsSeriesActionSerializer(serializers.Serializer):
    order = serializers.IntegerField(help_text="The series' position in the query.")
    id = serializers.CharField(allow_null=True, help_text="The event name (null: all events).")
    name = serializers.CharField()
    custom_name = serializers.CharField(allow_null=True)
    math = serializers.CharField()


class TrendsSeriesSerializer(serializers.Serializer):
    """One series (per breakdown value) of a Trends result."""

    # Schema only: results are JSON computed by insights.trends.
    # (The stubs take `label` and `data` for the serializer's own attributes; DRF's SerializerMetaclass
    # takes declared fields off the class, so there is no clash.)

    label = serializers.CharField()  # type: ignore[assignment]
    count = serializers.FloatField(help_text="The sum of `data`.")
    data = serializers.ListField(child=serializers.FloatField(), help_text="One number per interval.")  # type: ignore[assignment]
    days = serializers.ListField(child=serializers.CharField(), help_text="Each interval's start.")
    labels = serializers.ListField(
        child=serializers.CharField(), help_text="Display labels of the intervals."
    )
    action = TrendsSeriesActionSerializer()
    breakdown_value = serializers.CharField(
        allow_null=True, required=False, help_text="Present when the query has a breakdown."
    )


class QueryStatusSerializer(serializers.Serializer):
    id = serializers.CharField()
    complete = serializers.BooleanField()
    error = serializers.BooleanField()
    error_message = serializers.CharField(allow_null=True)
    results = TrendsSeriesSerializer(many=True, allow_null=True)
    is_cached = serializers.BooleanField(required=False)
    last_refresh = serializers.DateTimeField(allow_null=True, required=False)
    timezone = serializers.CharField(required=False)


class QueryRunSerializer(serializers.Serializer):
    query = QueryNodeField(runnable=True, help_text="A TrendsQuery, or an InsightVizNode wrapping one.")
    client_query_id = ClientQueryIdField(
        required=False, help_text="Your id for this run, to cancel it with …/insights/cancel/."
    )
    refresh = BodyRefreshField()
    session_id = StrictCharField(
        required=False, max_length=200, help_text="Accepted for compatibility; unused."
    )


class InsightRetrieveQuerySerializer(ParamsSerializer):
    refresh = RefreshField()
    client_query_id = ClientQueryIdField(required=False)


class QueryResponseSerializer(serializers.Serializer):
    results = TrendsSeriesSerializer(
        many=True, allow_null=True, help_text="One entry per series (and breakdown value)."
    )
    is_cached = serializers.BooleanField()
    last_refresh = serializers.DateTimeField(allow_null=True)
    timezone = serializers.CharField()
    query_status = QueryStatusSerializer(allow_null=True)


class InsightRetrieveSerializer(InsightSerializer):
    """An insight with its query's results (`result`, as PostHog names it on insights)."""

    result = TrendsSeriesSerializer(many=True, allow_null=True, read_only=True)
    is_cached = serializers.BooleanField(read_only=True)
    # In place of the base's method fields: typed as class attributes by the stubs, which DRF's
    # SerializerMetaclass takes off the class, so the types need not match.
    last_refresh = serializers.DateTimeField(allow_null=True, read_only=True)  # type: ignore[assignment]
    timezone = serializers.CharField(read_only=True)  # type: ignore[assignment]
    query_status = QueryStatusSerializer(allow_null=True, read_only=True)
