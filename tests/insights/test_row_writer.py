"""The insight pages are written by precompiled writers from the rows of one prepared statement;
what they write is, byte for byte, what the serializers write from the same rows and wrote from
model instances before."""

from __future__ import annotations

import collections
import zoneinfo
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer

from accounts.api.serializers import UserBasicSerializer
from accounts.caller import Caller
from apikit.fields import default_only
from apikit.json_rows import MissingColumn, RowWriter, UnwritableField
from infra.db.compiled import Markers, prepare
from insights.access import insights_visible
from insights.api.selectors import insights_shown
from insights.api.serializers import InsightBasicSerializer, InsightSerializer
from insights.models import AccessLevel, Insight, InsightAccessOverride
from insights.selectors import insight_rows
from viewtracking.api.serializers import TrendingInsightSerializer
from viewtracking.selectors import insights_annotate_recent_viewers, trending_rank
from viewtracking.services import views_record

pytestmark = pytest.mark.django_db

TRENDS = {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}}  # fmt: skip


@pytest.fixture
def varied(make_insight, make_dashboard, owner, teammate, project):
    """Insights that differ in every way a row can: creators (none too), tags, live and deleted
    dashboards, views, queries, descriptions and the teammate's access."""
    live, gone = make_dashboard("live"), make_dashboard("gone")
    insights = [
        make_insight(name="tagged", tags=["b", "a"], dashboards=[live, gone], query=TRENDS, description="d"),
        make_insight(name=None, derived_name="derived", created_by=teammate, favorited=True),
        make_insight(name="orphan", saved=False),
        make_insight(name="restricted", order=3),
        make_insight(name="viewer-only", dashboards=[live]),
    ]
    gone.deleted = True
    gone.save()
    Insight.objects.filter(id=insights[2].id).update(created_by=None, last_modified_by=None)
    Insight.objects.filter(id=insights[3].id).update(access_level=AccessLevel.NONE)
    InsightAccessOverride.objects.create(insight=insights[3], user=teammate, access_level=AccessLevel.VIEWER)
    Insight.objects.filter(id=insights[4].id).update(access_level=AccessLevel.VIEWER)
    views_record(
        project=project, user=owner, insight_ids=[i.id for i in insights[:3]], visible=Insight.objects.all()
    )
    views_record(project=project, user=teammate, insight_ids=[insights[0].id], visible=Insight.objects.all())
    return insights


def shown(project, user) -> object:
    return insights_visible(
        insights_shown().filter(project_id=project.id), Caller(user_id=user.pk, is_admin=False)
    )


def as_bytes(data) -> bytes:
    return JSONRenderer().render(data)


@pytest.mark.parametrize("serializer_class", [InsightSerializer, InsightBasicSerializer])
@pytest.mark.parametrize("who", ["owner", "teammate"])
def test_the_writer_writes_the_rows_as_the_serializer_does_and_as_model_instances_did(
    varied, project, serializer_class, who, request
):
    user = request.getfixturevalue(who)
    context = {"project": project, "last_refresh": {varied[0].results_fingerprint: "2026-12-01T10:00:00Z"}}
    rows = insight_rows(shown(project, user).order_by("id"), Markers()).rows()
    instances = list(shown(project, user).order_by("id"))
    assert len(rows) == len(instances) == 5  # the restricted one through the teammate's override

    written = as_bytes(RowWriter.write_rows(serializer_class, rows, context))

    assert written == as_bytes(serializer_class(rows, many=True, context=context).data)
    assert written == as_bytes(serializer_class(instances, many=True, context=context).data)
    assert b'"last_refresh":"2026-12-01T10:00:00Z"' in written and b'"created_by":null' in written


def test_the_trending_writer_writes_viewers_and_counts_as_the_serializer_does(varied, project, owner):
    ranked = {row.insight_id: row for row in trending_rank(project=project, days=7, limit=10, offset=0).rows}
    queryset = insights_annotate_recent_viewers(
        shown(project, owner).filter(id__in=list(ranked)).order_by("id")
    )
    rows = insight_rows(queryset, Markers(), "recent_viewers").rows()
    context = {"project": project, "last_refresh": {}, "trending": ranked}

    written = as_bytes(RowWriter.write_rows(TrendingInsightSerializer, rows, context))

    assert written == as_bytes(TrendingInsightSerializer(rows, many=True, context=context).data)
    assert written == as_bytes(TrendingInsightSerializer(list(queryset), many=True, context=context).data)
    assert b'"unique_viewers":2' in written and b'"hedgehog_config":null' in written


class Shape(serializers.Serializer):
    """Every rule of DRF's a writer must follow, on a serializer of its own."""

    id = serializers.IntegerField()
    at = serializers.DateTimeField(allow_null=True)
    nullable = serializers.CharField(read_only=True, allow_null=True)
    listed = serializers.ListField(child=serializers.IntegerField())
    formatted = serializers.DateTimeField(format="%Y-%m-%d", read_only=True, source="at")
    nested = UserBasicSerializer(allow_null=True, read_only=True)
    described = serializers.CharField(read_only=True, source="describe")  # a method: DRF calls it
    always = default_only(serializers.CharField, default="fallback")
    always_listed = default_only(serializers.ListField, child=serializers.IntegerField(), default=list)


class Row:
    def __init__(self, **values):
        self.__dict__.update(values)

    def describe(self) -> str:
        return f"row {self.id}"


USER = {"id": 7, "uuid": "u", "email": "e", "first_name": "f", "last_name": "l"}


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/St_Johns"])
def test_the_writer_follows_drfs_rules_for_nulls_defaults_methods_and_time_zones(zone):
    at = datetime(2026, 3, 8, 6, 30, 15, 123456, tzinfo=UTC)
    rows = [
        Row(id=1, at=at, nullable="n", listed=[], nested=USER),
        Row(id=2, at=None, nullable=None, listed=[1, 2], nested=None),
        Row(id=3, at=at + timedelta(days=200), nullable="n", listed=[3], nested=None),
    ]
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        written = RowWriter.write_rows(Shape, rows, {})
        expected = Shape(rows, many=True).data

    assert as_bytes(written) == as_bytes(expected)
    assert (written[0]["always"], written[0]["always_listed"], written[0]["described"]) == (
        "fallback",
        [],
        "row 1",
    )
    assert (written[1]["nullable"], written[1]["at"], written[1]["nested"]) == (None, None, None)
    assert written[0]["nested"]["hedgehog_config"] is None  # default-only in the nested shape too


def test_rows_without_a_column_of_the_shape_are_refused_not_written_as_its_default(varied, project, owner):
    rows = insight_rows(shown(project, owner).order_by("id"), Markers()).rows()
    Lacking = collections.namedtuple(
        "Lacking", [name for name in rows[0]._fields if name != "last_viewed_at"]
    )
    lacking = [Lacking(*(getattr(row, name) for name in Lacking._fields)) for row in rows]

    # The statement's rows lack a column: refused before any row is written.
    with pytest.raises(MissingColumn, match="last_viewed_at"):
        RowWriter.write_rows(InsightSerializer, lacking, {"project": project, "last_refresh": {}})
    # An object without the attribute, a JSON object without the key: refused as they are written.
    with pytest.raises(MissingColumn, match=r"'nullable' for Shape\.nullable"):
        RowWriter.write_rows(Shape, [Row(id=1, at=None, listed=[], nested=None)], {})
    with pytest.raises(MissingColumn, match=r"'email' for UserBasicSerializer\.email"):
        RowWriter.write_rows(
            Shape, [Row(id=1, at=None, nullable=None, listed=[], nested={"id": 7, "uuid": "u"})], {}
        )


class OwnRepresentation(serializers.Serializer):
    id = serializers.IntegerField()

    def to_representation(self, instance):
        return {"id": instance.id * 2}


class NestsOwnRepresentation(serializers.Serializer):
    inner = OwnRepresentation(source="*")


class ListsOwnRepresentation(serializers.Serializer):
    inner = OwnRepresentation(many=True)


class OwnGetAttribute(serializers.CharField):
    def get_attribute(self, instance):
        return "read its own way"


class ReadsOwnWay(serializers.Serializer):
    name = OwnGetAttribute()


class DefaultOnlyColumn(serializers.Serializer):
    always = default_only(serializers.CharField, default="fallback")


@pytest.mark.parametrize(
    ("shape", "refused"),
    [
        (OwnRepresentation, "OwnRepresentation is written by its own to_representation"),
        (NestsOwnRepresentation, "NestsOwnRepresentation.inner is written by its own to_representation"),
        (ListsOwnRepresentation, "OwnRepresentation is written by its own to_representation"),
        (ReadsOwnWay, "ReadsOwnWay.name reads its value with its own get_attribute"),
        (DefaultOnlyColumn, "DefaultOnlyColumn.always is always its default, yet the rows have 'always'"),
    ],
)
def test_a_shape_the_writer_would_write_otherwise_than_drf_is_refused_when_compiled(shape, refused):
    Columns = collections.namedtuple("Columns", ["id", "inner", "name", "always"])

    with pytest.raises(UnwritableField, match=refused):
        RowWriter.write_rows(shape, [Columns(1, [], "n", "a")], {})


def test_a_prepared_statement_runs_with_each_requests_values_and_keeps_its_fixed_ones(
    make_insight, project, stranger_project
):
    ours = make_insight(name="tracked")
    make_insight(name="other")  # the fixed value (the name) holds on every run
    theirs = make_insight(name="tracked", in_project=stranger_project)
    markers = Markers()
    statement = prepare(
        Insight.objects.filter(project_id=markers.number("project"), name="tracked").values_list("id"),
        markers,
    )

    assert [row.id for row in statement.rows(project=project.id)] == [ours.id]
    assert [row.id for row in statement.rows(project=stranger_project.id)] == [theirs.id]


def test_a_stand_in_the_statement_inlines_is_refused(db):
    markers = Markers()
    queryset = Insight.objects.values_list("id")[: -markers.number("limit")]  # slicing inlines LIMIT

    with pytest.raises(ValueError, match="'limit'"):
        prepare(queryset, markers)
