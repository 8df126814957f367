"""The insight list: filters, ordering, shapes, and a statement count that ignores page size."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from insights.models import Insight
from viewtracking.models import InsightViewed

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


def test_list_shows_live_insights_of_the_project_newest_modified_first(owner_api, insights_url, make_insight):
    older, newer = make_insight(name="Older"), make_insight(name="Newer")
    make_insight(name="Gone", deleted=True)

    assert ids(owner_api.get(insights_url)) == [newer.id, older.id]


def test_search_matches_name_description_and_tags_case_insensitively(owner_api, insights_url, make_insight):
    by_name = make_insight(name="Revenue by country")
    by_description = make_insight(name="x", description="Shows REVENUE weekly")
    by_tag = make_insight(name="y", tags=["revenue-team"])
    make_insight(name="Unrelated")

    found = ids(owner_api.get(insights_url, {"search": "revenue"}))

    assert sorted(found) == sorted([by_name.id, by_description.id, by_tag.id])


def test_tags_filter_matches_any_of_the_given_tags(owner_api, insights_url, make_insight):
    growth = make_insight(tags=["growth"])
    kpi = make_insight(tags=["kpi", "other"])
    make_insight(tags=["other"])

    found = ids(owner_api.get(insights_url, {"tags": json.dumps(["Growth", "kpi"])}))

    assert sorted(found) == sorted([growth.id, kpi.id])


def test_favorited_filter(owner_api, insights_url, make_insight):
    starred = make_insight(favorited=True)
    plain = make_insight()

    assert ids(owner_api.get(insights_url, {"favorited": "true"})) == [starred.id]
    assert ids(owner_api.get(insights_url, {"favorited": "false"})) == [plain.id]


def test_created_by_and_user_filters(owner_api, insights_url, make_insight, teammate, owner):
    mine = make_insight()
    theirs = make_insight(created_by=teammate)

    assert ids(owner_api.get(insights_url, {"created_by": json.dumps([teammate.id])})) == [theirs.id]
    assert ids(owner_api.get(insights_url, {"user": "true"})) == [mine.id]


def test_dashboards_filter_requires_every_given_dashboard(
    owner_api, insights_url, make_insight, make_dashboard
):
    one, two = make_dashboard("one"), make_dashboard("two")
    on_both = make_insight(dashboards=[one, two])
    make_insight(dashboards=[one])

    assert ids(owner_api.get(insights_url, {"dashboards": json.dumps([one.id, two.id])})) == [on_both.id]


def test_short_id_filter(owner_api, insights_url, make_insight):
    wanted = make_insight()
    make_insight()

    assert ids(owner_api.get(insights_url, {"short_id": wanted.short_id})) == [wanted.id]


def test_date_filters_bound_the_last_modification(owner_api, insights_url, make_insight):
    old, recent = make_insight(name="old"), make_insight(name="recent")
    Insight.objects.filter(id=old.id).update(last_modified_at=timezone.now() - timedelta(days=30))

    assert ids(owner_api.get(insights_url, {"date_from": "-7d"})) == [recent.id]
    week_ago = (timezone.now() - timedelta(days=7)).date().isoformat()
    assert ids(owner_api.get(insights_url, {"date_to": week_ago})) == [old.id]


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"order": "password"}, "order"),
        ({"tags": "[not json"}, "tags"),
        ({"created_by": '["abc"]'}, "created_by__0"),
        ({"date_from": "yesterday-ish"}, "date_from"),
        ({"date_from": "2024-02-30"}, "date_from"),
        ({"search": "s" * 201}, "search"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-5"}, "offset"),
        ({"favorited": "sometimes"}, "favorited"),
        ({"saved": "maybe"}, "saved"),
        ({"insight": "PIE"}, "insight"),
    ],
)
def test_bad_list_parameters_are_a_400_naming_the_parameter(owner_api, insights_url, params, attr):
    response = owner_api.get(insights_url, params)

    assert response.status_code == 400
    assert response.json()["attr"] == attr


def test_order_by_name_both_ways(owner_api, insights_url, make_insight):
    b, a, c = make_insight(name="b"), make_insight(name="a"), make_insight(name="c")

    assert ids(owner_api.get(insights_url, {"order": "name"})) == [a.id, b.id, c.id]
    assert ids(owner_api.get(insights_url, {"order": "-name"})) == [c.id, b.id, a.id]


def test_order_by_last_viewed_puts_never_viewed_last(owner_api, insights_url, make_insight, owner, project):
    never, long_ago, just_now = make_insight(), make_insight(), make_insight()
    now = timezone.now()
    InsightViewed.objects.all().delete()  # forget the creator's own views from creation
    for insight, when in ((long_ago, now - timedelta(days=3)), (just_now, now)):
        InsightViewed.objects.create(project=project, user=owner, insight=insight, last_viewed_at=when)

    assert ids(owner_api.get(insights_url, {"order": "-last_viewed_at"})) == [
        just_now.id,
        long_ago.id,
        never.id,
    ]
    assert ids(owner_api.get(insights_url, {"order": "last_viewed_at"})) == [
        long_ago.id,
        just_now.id,
        never.id,
    ]


def test_each_row_carries_the_latest_view_by_anyone(
    owner_api, insights_url, make_insight, teammate, project, owner
):
    insight = make_insight()
    latest = timezone.now() + timedelta(minutes=5)
    InsightViewed.objects.create(project=project, user=teammate, insight=insight, last_viewed_at=latest)

    row = owner_api.get(insights_url).json()["results"][0]

    assert row["last_viewed_at"] == latest.isoformat().replace("+00:00", "Z")


def test_basic_shape_has_exactly_the_basic_fields(owner_api, insights_url, make_insight):
    make_insight(tags=["t"])

    row = owner_api.get(insights_url, {"basic": "true"}).json()["results"][0]

    # PostHog's basic shape, and `last_modified_by`.
    assert set(row) == {
        "id", "short_id", "name", "derived_name", "filters", "query", "dashboards", "dashboard_tiles",
        "description", "last_refresh", "refreshing", "saved", "tags", "updated_at", "created_by", "created_at",
        "last_modified_at", "last_modified_by", "favorited", "user_access_level", "last_viewed_at",
    }  # fmt: skip
    assert (row["filters"], row["refreshing"], row["saved"], row["user_access_level"]) == (
        {},
        False,
        True,
        "editor",
    )


def test_rows_list_their_tiles_on_live_dashboards_only(owner_api, insights_url, make_insight, make_dashboard):
    shown, hidden = make_dashboard("Shown"), make_dashboard("Deleted")
    make_insight(dashboards=[hidden, shown])
    hidden.deleted = True
    hidden.save()

    row = owner_api.get(insights_url, {"basic": "true"}).json()["results"][0]

    assert [(tile["dashboard_id"], tile["deleted"]) for tile in row["dashboard_tiles"]] == [(shown.id, False)]
    assert row["dashboards"] == [shown.id]


def test_last_refresh_is_when_the_insights_results_were_computed(owner_api, insights_url, make_insight):
    trends = {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode"}]}}
    computed = make_insight(name="Computed", query=trends)
    make_insight(name="Never computed", query={**trends, "source": {**trends["source"], "interval": "week"}})
    make_insight(
        name="Table", query={"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["*"]}}
    )

    before = {row["name"]: row["last_refresh"] for row in owner_api.get(insights_url).json()["results"]}
    result = owner_api.get(f"{insights_url}{computed.id}/", {"refresh": "force_blocking"}).json()
    after = {row["name"]: row["last_refresh"] for row in owner_api.get(insights_url).json()["results"]}

    assert before == {"Computed": None, "Never computed": None, "Table": None}
    assert result["last_refresh"] is not None
    assert after == {"Computed": result["last_refresh"], "Never computed": None, "Table": None}


def test_saved_filter_separates_saved_insights_from_drafts(owner_api, insights_url, make_insight):
    saved = make_insight(name="Saved")
    draft = owner_api.post(insights_url, {"name": "Draft", "saved": False}, format="json").json()

    assert ids(owner_api.get(insights_url, {"saved": "true", "basic": "true"})) == [saved.id]
    assert ids(owner_api.get(insights_url, {"saved": "false"})) == [draft["id"]]
    assert draft["saved"] is False


@pytest.mark.parametrize(
    ("insight_type", "expected"),
    [
        ("TRENDS", ["bare trends", "trends"]),
        ("FUNNELS", ["funnel"]),
        ("SQL", ["sql"]),
        ("HOG", ["hog"]),
        ("JSON", ["table"]),
        ("LIFECYCLE", []),
    ],
)
def test_insight_filter_picks_one_type_as_posthogs_saved_insights_page_does(
    owner_api, insights_url, make_insight, insight_type, expected
):
    series = [{"kind": "EventsNode", "event": "$pageview"}]
    for name, query in {
        "trends": {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": series}},
        "bare trends": {"kind": "TrendsQuery", "series": series},
        "funnel": {"kind": "InsightVizNode", "source": {"kind": "FunnelsQuery", "series": series * 2}},
        "sql": {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "select 1"}},
        "hog": {"kind": "HogQuery", "code": "return 1"},
        "table": {"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["*"]}},
        "no query": None,
    }.items():
        make_insight(name=name, query=query)

    response = owner_api.get(insights_url, {"insight": insight_type, "order": "name"})

    assert response.status_code == 200
    assert [row["name"] for row in response.json()["results"]] == expected


def test_pagination_envelope_links_pages(owner_api, insights_url, make_insight):
    for n in range(5):
        make_insight(name=f"i{n}")

    page = owner_api.get(insights_url, {"limit": 2, "offset": 2}).json()

    assert page["count"] == 5 and len(page["results"]) == 2
    assert "offset=4" in page["next"]
    assert "limit=2" in page["previous"] and "offset" not in page["previous"]


def test_list_statement_count_does_not_grow_with_page_size(
    owner_api, insights_url, make_insight, make_dashboard, teammate, django_assert_num_queries
):
    dashboard = make_dashboard()
    make_insight(tags=["a"], dashboards=[dashboard])
    owner_api.get(insights_url)  # the key's last_used_at is written on first use only

    # the key with its project access, then the page (creators, tags and dashboards in the same
    # statement); a page short of `limit` is the end of the list, so it needs no COUNT
    with django_assert_num_queries(2):
        assert len(owner_api.get(insights_url, {"limit": 100}).json()["results"]) == 1
    for n in range(30):
        make_insight(name=f"n{n}", tags=["a", f"t{n}"], dashboards=[dashboard], created_by=teammate)
    with django_assert_num_queries(2):
        assert len(owner_api.get(insights_url, {"limit": 100}).json()["results"]) == 31
    # a full page cannot tell how many follow: one COUNT more
    with django_assert_num_queries(3):
        full = owner_api.get(insights_url, {"limit": 10, "offset": 10}).json()
    assert (full["count"], len(full["results"])) == (31, 10)
    with django_assert_num_queries(2):
        last = owner_api.get(insights_url, {"limit": 10, "offset": 30}).json()
    assert (last["count"], len(last["results"]), last["next"]) == (31, 1, None)
    with django_assert_num_queries(3):
        beyond = owner_api.get(insights_url, {"limit": 10, "offset": 40}).json()
    assert (beyond["count"], beyond["results"]) == (31, [])
