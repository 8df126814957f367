"""Insight create, retrieve, update (PATCH and PUT), soft delete and restore."""

from __future__ import annotations

import pytest

from insights.models import ActivityLog, Insight
from tagging.models import Tag
from viewtracking.models import InsightViewed

pytestmark = pytest.mark.django_db

TRENDS = {
    "kind": "InsightVizNode",
    "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]},
}


def test_create_returns_the_insight_with_normalised_tags(owner_api, insights_url, owner):
    response = owner_api.post(
        insights_url,
        {"name": "Weekly signups", "query": TRENDS, "tags": ["  UPPER  ", "Mixed Case", "upper", " "]},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["name"] == "Weekly signups"
    assert body["tags"] == ["mixed case", "upper"]
    assert body["query"] == TRENDS
    assert body["created_by"]["email"] == owner.email
    assert len(body["short_id"]) == 8 and body["short_id"].isalnum() and not body["short_id"].isdigit()
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["mixed case", "upper"]


def test_creating_an_insight_counts_as_its_creator_viewing_it(owner_api, insights_url, owner):
    body = owner_api.post(insights_url, {"name": "Fresh"}, format="json").json()

    view = InsightViewed.objects.get(insight_id=body["id"])
    assert view.user == owner
    assert body["last_viewed_at"] is not None


def test_create_places_the_insight_on_the_given_dashboards(owner_api, insights_url, make_dashboard):
    first, second = make_dashboard("Growth"), make_dashboard("Ops")

    body = owner_api.post(
        insights_url, {"name": "On two", "dashboards": [second.id, first.id]}, format="json"
    ).json()

    assert body["dashboards"] == sorted([first.id, second.id])


def test_create_refuses_a_dashboard_of_another_project(
    owner_api, insights_url, make_dashboard, stranger_project
):
    foreign = make_dashboard(in_project=stranger_project)

    response = owner_api.post(insights_url, {"name": "x", "dashboards": [foreign.id]}, format="json")

    assert response.status_code == 400
    assert response.json()["attr"] == "dashboards"
    assert not Insight.objects.exists()


def test_create_accepts_and_ignores_create_in_folder(owner_api, insights_url):
    response = owner_api.post(
        insights_url, {"name": "x", "_create_in_folder": "Unfiled/Insights"}, format="json"
    )

    assert response.status_code == 201
    assert "_create_in_folder" not in response.json()


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"name": "n" * 401}, "name"),
        ({"description": "d" * 401}, "description"),
        ({"query": {"kind": "NotAThing"}}, "query"),
        ({"query": "select 1"}, "query"),
        ({"query": {"kind": "TrendsQuery", "x": "nul\u0000byte"}}, "query"),
        ({"order": 2**40}, "order"),
        ({"tags": "not-a-list"}, "tags"),
        ({"tags": ["x" * 256]}, "tags"),
        ({"tags": [f"t{i}" for i in range(101)]}, "tags"),
        ({"dashboards": [0]}, "dashboards__0"),
        ({"dashboards": [2**70]}, "dashboards__0"),
        ({"favorited": "perhaps"}, "favorited"),
    ],
)
def test_create_rejects_bad_fields_naming_the_field(owner_api, insights_url, payload, attr):
    response = owner_api.post(insights_url, payload, format="json")

    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert response.json()["attr"] == attr
    assert not Insight.objects.exists()


def test_retrieve_finds_an_insight_by_id_and_by_short_id(owner_api, insights_url, make_insight):
    insight = make_insight(name="Findable", tags=["kpi"])

    by_id = owner_api.get(f"{insights_url}{insight.id}/").json()
    by_short_id = owner_api.get(f"{insights_url}{insight.short_id}").json()

    assert by_id == by_short_id
    assert by_id["name"] == "Findable" and by_id["tags"] == ["kpi"]


@pytest.mark.parametrize("lookup", ["999999", "nosuchid", "99999999999999999999999"])
def test_retrieve_of_a_missing_insight_is_404(owner_api, insights_url, lookup):
    response = owner_api.get(f"{insights_url}{lookup}/")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_patch_changes_only_the_given_fields(owner_api, insights_url, make_insight, teammate, client_for):
    insight = make_insight(name="Old", description="Keep me", tags=["a"])

    response = client_for(teammate).patch(f"{insights_url}{insight.id}/", {"name": "New"}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert (body["name"], body["description"], body["tags"]) == ("New", "Keep me", ["a"])
    assert body["last_modified_by"]["email"] == teammate.email


def test_patch_tags_replaces_the_set_and_deletes_orphaned_tags(owner_api, insights_url, make_insight):
    insight = make_insight(tags=["old", "shared"])
    make_insight(tags=["shared"])

    body = owner_api.patch(f"{insights_url}{insight.id}/", {"tags": ["New ", "shared"]}, format="json").json()

    assert body["tags"] == ["new", "shared"]
    assert sorted(Tag.objects.values_list("name", flat=True)) == ["new", "shared"]


def test_patch_deleted_soft_deletes_and_restores(owner_api, insights_url, make_insight):
    insight = make_insight(name="Temporary")

    deleted = owner_api.patch(f"{insights_url}{insight.id}/", {"deleted": True}, format="json")
    listed_while_deleted = owner_api.get(insights_url).json()["results"]
    restored = owner_api.patch(f"{insights_url}{insight.id}/", {"deleted": False}, format="json")

    assert deleted.json()["deleted"] is True
    assert listed_while_deleted == []
    assert restored.json()["deleted"] is False
    assert [row["id"] for row in owner_api.get(insights_url).json()["results"]] == [insight.id]
    assert list(
        ActivityLog.objects.filter(insight=insight).order_by("id").values_list("activity", flat=True)
    ) == [
        "created",
        "deleted",
        "restored",
    ]


def test_a_soft_deleted_insight_answers_404_to_everything_but_the_patch_that_restores_it(
    owner_api, insights_url, make_insight
):
    insight = make_insight(name="Gone for now", deleted=True)
    url = f"{insights_url}{insight.id}/"

    answers = {
        "retrieve": owner_api.get(url).status_code,
        "retrieve by short_id": owner_api.get(f"{insights_url}{insight.short_id}/").status_code,
        "activity": owner_api.get(f"{url}activity/").status_code,
        "put": owner_api.put(url, {"name": "Back?"}, format="json").status_code,
        "patch": owner_api.patch(url, {"name": "Back?"}, format="json").status_code,
        "patch deleting again": owner_api.patch(url, {"deleted": True}, format="json").status_code,
    }
    restored = owner_api.patch(url, {"deleted": False}, format="json")

    assert answers == dict.fromkeys(answers, 404)
    assert restored.status_code == 200 and restored.json()["deleted"] is False
    assert restored.json()["name"] == "Gone for now"  # the 404s changed nothing
    assert owner_api.get(url).status_code == 200


@pytest.mark.parametrize("body", [None, {}, {"unknown": "field"}])
def test_a_put_without_any_of_the_insights_fields_is_a_400_and_wipes_nothing(
    owner_api, insights_url, make_insight, body
):
    insight = make_insight(name="Keep me", description="and me", tags=["kept"])

    response = owner_api.put(f"{insights_url}{insight.id}/", body, format="json")

    assert response.status_code == 400 and response.json()["type"] == "validation_error"
    kept = owner_api.get(f"{insights_url}{insight.id}/").json()
    assert (kept["name"], kept["description"], kept["tags"]) == ("Keep me", "and me", ["kept"])


def test_put_replaces_the_editable_content(owner_api, insights_url, make_insight, make_dashboard):
    dashboard = make_dashboard()
    insight = make_insight(
        name="Old", description="Goes away", tags=["x"], favorited=True, dashboards=[dashboard]
    )

    body = owner_api.put(f"{insights_url}{insight.id}/", {"name": "Only this"}, format="json").json()

    assert body["name"] == "Only this"
    assert (body["description"], body["tags"], body["favorited"], body["dashboards"]) == (None, [], False, [])


def test_delete_is_not_allowed(owner_api, insights_url, make_insight):
    insight = make_insight()

    response = owner_api.delete(f"{insights_url}{insight.id}/")

    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
    assert Insight.objects.filter(id=insight.id, deleted=False).exists()


def test_every_change_is_logged_with_before_and_after(owner_api, insights_url, make_insight, owner):
    insight = make_insight(name="Before", tags=["one"])

    owner_api.patch(f"{insights_url}{insight.id}/", {"name": "After", "tags": ["two"]}, format="json")

    entry = owner_api.get(f"{insights_url}{insight.id}/activity/").json()["results"][0]
    assert entry["activity"] == "updated"
    assert entry["user"]["email"] == owner.email
    assert entry["item_id"] == str(insight.id)
    changes = {change["field"]: (change["before"], change["after"]) for change in entry["detail"]["changes"]}
    assert changes == {"name": ("Before", "After"), "tags": (["one"], ["two"])}


def test_a_patch_that_changes_nothing_logs_nothing(owner_api, insights_url, make_insight):
    insight = make_insight(name="Same", tags=["t"])

    owner_api.patch(f"{insights_url}{insight.id}/", {"name": "Same", "tags": ["T "]}, format="json")

    assert ActivityLog.objects.filter(insight=insight).count() == 1  # only "created"


@pytest.mark.parametrize("body", [{}, None], ids=["empty object", "no body"])
def test_an_empty_patch_changes_nothing_and_answers_the_insight(owner_api, insights_url, make_insight, body):
    insight = make_insight(name="Untouched", tags=["kept"])
    before = owner_api.get(f"{insights_url}{insight.id}/", {"refresh": "force_cache"}).json()

    response = owner_api.patch(
        f"{insights_url}{insight.id}/", body, format="json" if body is not None else None
    )

    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["tags"]) == ("Untouched", ["kept"])
    assert response.json()["last_modified_at"] == before["last_modified_at"]
    assert ActivityLog.objects.filter(insight=insight).count() == 1  # only "created"


def test_project_activity_lists_every_insight_newest_first(owner_api, insights_url, make_insight):
    first = make_insight(name="First")
    second = make_insight(name="Second")
    owner_api.patch(f"{insights_url}{first.id}/", {"favorited": True}, format="json")

    results = owner_api.get(f"{insights_url}activity/").json()["results"]

    assert [(row["item_id"], row["activity"]) for row in results] == [
        (str(first.id), "updated"),
        (str(second.id), "created"),
        (str(first.id), "created"),
    ]
