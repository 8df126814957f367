"""The project's tags: `GET …/tags/`, `POST …/tags/rename/`, `POST …/tags/delete/`
(docs/insight-hygiene.md#tags)."""

from __future__ import annotations

import csv
import io

import pytest
from rest_framework.fields import DateTimeField

from accounts.models import OrganizationMembership
from insights.models import AccessLevel, ActivityLog, Insight
from tagging.models import Tag, TaggedItem
from tests.db_failures import refuse_activity_log
from viewtracking.models import InsightViewed

pytestmark = pytest.mark.django_db


@pytest.fixture
def tags_url(project) -> str:
    return f"/api/projects/{project.id}/tags/"


@pytest.fixture
def change(owner_api, tags_url):
    """POST to rename/ or delete/ as the owner (an admin), or as `client`."""

    def call(route: str, body: dict, client=None, **params):
        query = "?" + "&".join(f"{key}={value}" for key, value in params.items()) if params else ""
        return (client or owner_api).post(f"{tags_url}{route}/{query}", body, format="json")

    return call


def drf_datetime(value) -> str:
    return DateTimeField().to_representation(value)


def tags_of(insight) -> list[str]:
    return sorted(TaggedItem.objects.filter(insight=insight).values_list("tag__name", flat=True))


def project_tags() -> list[str]:
    return sorted(Tag.objects.values_list("name", flat=True))


# --- The list ---------------------------------------------------------------------------------------


def test_the_list_is_the_sorted_names_on_live_insights(owner_api, tags_url, make_insight, stranger_project):
    make_insight(tags=["kpi", "growth"])
    make_insight(tags=["growth"])
    make_insight(tags=["archived only"], deleted=True)
    make_insight(in_project=stranger_project, tags=["theirs"])

    response = owner_api.get(tags_url)

    assert response.status_code == 200
    assert response.json() == ["growth", "kpi"]


def test_usage_counts_the_insights_and_their_latest_view(owner_api, tags_url, insights_url, make_insight):
    viewed, other = make_insight(tags=["growth", "kpi"]), make_insight(tags=["growth"])
    make_insight(tags=["stale"])
    owner_api.post(f"{insights_url}viewed/", {"insight_ids": [viewed.id]}, format="json")
    owner_api.post(f"{insights_url}viewed/", {"insight_ids": [other.id]}, format="json")
    views = dict(InsightViewed.objects.values_list("insight_id", "last_viewed_at"))

    body = owner_api.get(tags_url, {"usage": "true"}).json()

    assert body == [
        {"name": "growth", "insights": 2, "last_used_at": drf_datetime(max(views.values()))},
        {"name": "kpi", "insights": 1, "last_used_at": drf_datetime(views[viewed.id])},
        {"name": "stale", "insights": 1, "last_used_at": None},
    ]


def test_an_insight_hidden_from_a_member_is_never_counted_or_named(
    client_for, teammate, tags_url, make_insight
):
    hidden = make_insight(tags=["secret", "shared"])
    make_insight(tags=["shared"])
    Insight.objects.filter(id=hidden.id).update(access_level=AccessLevel.NONE)
    as_teammate = client_for(teammate)

    assert as_teammate.get(tags_url).json() == ["shared"]
    assert [
        (row["name"], row["insights"]) for row in as_teammate.get(tags_url, {"usage": "true"}).json()
    ] == [("shared", 1)]


def test_the_list_answers_under_both_prefixes_and_as_csv(owner_api, project, tags_url, make_insight):
    make_insight(tags=["growth", "=cmd"])

    environments = owner_api.get(f"/api/environments/{project.id}/tags")
    names_csv = owner_api.get(tags_url, {"format": "csv"})
    usage_csv = owner_api.get(tags_url, {"usage": "true", "format": "csv"})

    assert environments.json() == ["=cmd", "growth"]
    assert names_csv.content.decode().splitlines() == ["value", "'=cmd", "growth"]
    assert names_csv["Content-Disposition"] == 'attachment; filename="tags.csv"'
    assert usage_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(usage_csv.content.decode())))
    assert [(row["name"], row["insights"], row["last_used_at"]) for row in rows] == [
        ("'=cmd", "1", ""),  # a formula is escaped
        ("growth", "1", ""),
    ]


def test_a_bad_usage_flag_is_a_400(owner_api, tags_url):
    response = owner_api.get(tags_url, {"usage": "lots"})

    assert response.status_code == 400
    assert response.json()["attr"] == "usage"


@pytest.mark.parametrize("count", [1, 40])
def test_the_list_statement_count_does_not_depend_on_tags_or_insights(
    owner_api, tags_url, make_insight, django_assert_num_queries, count
):
    for n in range(count):
        make_insight(tags=[f"t{n}", f"u{n}"])
    owner_api.get(tags_url)  # first use of the key writes last_used_at once

    with django_assert_num_queries(2):  # key with project, the tags
        assert len(owner_api.get(tags_url, {"usage": "true"}).json()) == 2 * count


# --- Rename and merge -------------------------------------------------------------------------------


def test_rename_renames_the_tag_on_every_insight(change, make_insight):
    first, second = make_insight(tags=["q4", "kpi"]), make_insight(tags=["Q4"])
    deleted = make_insight(tags=["q4"], deleted=True)
    untouched = make_insight(tags=["kpi"])

    response = change("rename", {"from": "  Q4 ", "to": "Q4 Review"})

    assert response.status_code == 200
    assert response.json() == {"insights": 3}
    assert tags_of(first) == ["kpi", "q4 review"]
    assert tags_of(second) == tags_of(deleted) == ["q4 review"]
    assert tags_of(untouched) == ["kpi"]
    assert project_tags() == ["kpi", "q4 review"]


def test_renaming_into_an_existing_tag_merges_the_two(change, make_insight):
    both, only_old, only_new = (
        make_insight(tags=["q4", "review"]),
        make_insight(tags=["q4"]),
        make_insight(tags=["review"]),
    )

    response = change("rename", {"from": "q4", "to": "review"})

    assert response.json() == {"insights": 2}
    assert tags_of(both) == tags_of(only_old) == tags_of(only_new) == ["review"]
    assert project_tags() == ["review"]
    assert TaggedItem.objects.filter(insight=both).count() == 1


def test_each_changed_insight_gets_one_activity_entry_sharing_a_request_id(change, make_insight, owner):
    both, only_old = make_insight(tags=["q4", "review"]), make_insight(tags=["q4", "kpi"])
    make_insight(tags=["review"])

    change("rename", {"from": "q4", "to": "review"})

    entries = list(ActivityLog.objects.filter(activity="updated").order_by("insight_id"))
    assert [(entry.insight_id, entry.detail["changes"]) for entry in entries] == [
        (both.id, [{"type": "Insight", "action": "changed", "field": "tags", "before": ["q4", "review"], "after": ["review"]}]),
        (only_old.id, [{"type": "Insight", "action": "changed", "field": "tags", "before": ["kpi", "q4"], "after": ["kpi", "review"]}]),
    ]  # fmt: skip
    assert {entry.user_id for entry in entries} == {owner.id}
    assert len({entry.request_id for entry in entries}) == 1
    assert Insight.objects.get(id=only_old.id).last_modified_by_id == owner.id


@pytest.mark.parametrize(
    ("route", "body"),
    [("rename", {"from": "q4", "to": "review"}), ("delete", {"name": "q4"})],
)
def test_dry_run_answers_the_same_and_writes_nothing(change, make_insight, route, body):
    insight = make_insight(tags=["q4", "review"])

    dry = change(route, body, dry_run="true")

    assert dry.status_code == 200
    assert tags_of(insight) == ["q4", "review"]
    assert project_tags() == ["q4", "review"]
    assert not ActivityLog.objects.filter(activity="updated").exists()
    assert change(route, body).json() == dry.json() == {"insights": 1}


# --- Delete -----------------------------------------------------------------------------------------


def test_delete_takes_the_tag_off_everything_and_deletes_it(change, make_insight):
    first, deleted = make_insight(tags=["old", "kpi"]), make_insight(tags=["old"], deleted=True)

    response = change("delete", {"name": " OLD"})

    assert response.json() == {"insights": 2}
    assert tags_of(first) == ["kpi"]
    assert tags_of(deleted) == []
    assert project_tags() == ["kpi"]
    assert ActivityLog.objects.filter(activity="updated").count() == 2


# --- Refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("route", "body"),
    [("rename", {"from": "nope", "to": "x"}), ("delete", {"name": "nope"})],
)
def test_an_unknown_tag_is_a_404_and_changes_nothing(change, make_insight, stranger_project, route, body):
    make_insight(in_project=stranger_project, tags=["nope"])  # another project's tag of that name
    insight = make_insight(tags=["kept"])

    response = change(route, body)

    assert response.status_code == 404
    assert response.json()["type"] == "invalid_request"
    assert tags_of(insight) == ["kept"]


@pytest.mark.parametrize(
    ("route", "body", "attr"),
    [
        ("rename", {"to": "x"}, "from"),
        ("rename", {"from": "kept"}, "to"),
        ("rename", {"from": "  ", "to": "x"}, "from"),
        ("rename", {"from": "kept", "to": 7}, "to"),
        ("rename", {"from": "kept", "to": ["x"]}, "to"),
        ("rename", {"from": "kept", "to": "x" * 256}, "to"),
        ("rename", {"from": "Kept", "to": " kept "}, "to"),
        ("rename", {"from": None, "to": "x"}, "from"),
        ("delete", {}, "name"),
        ("delete", {"name": ""}, "name"),
        ("delete", {"name": {"a": 1}}, "name"),
    ],
)
def test_bad_requests_are_400_naming_the_field_and_change_nothing(change, make_insight, route, body, attr):
    insight = make_insight(tags=["kept"])

    response = change(route, body)

    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert response.json()["attr"] == attr
    assert tags_of(insight) == ["kept"]


def test_a_bad_dry_run_flag_is_a_400(change, make_insight):
    make_insight(tags=["kept"])

    response = change("delete", {"name": "kept"}, dry_run="maybe")

    assert (response.status_code, response.json()["attr"]) == (400, "dry_run")
    assert project_tags() == ["kept"]


def test_only_admins_and_owners_rename_or_delete(change, make_insight, client_for, teammate, org):
    insight = make_insight(tags=["q4"])
    member = client_for(teammate)

    refusals = [
        change("rename", {"from": "q4", "to": "x"}, client=member),
        change("delete", {"name": "q4"}, client=member),
    ]
    OrganizationMembership.objects.filter(user=teammate).update(level=OrganizationMembership.Level.ADMIN)
    as_admin = change("rename", {"from": "q4", "to": "x"}, client=client_for(teammate))

    assert [response.status_code for response in refusals] == [403, 403]
    assert (
        refusals[0].json()["detail"] == "Only the organization's admins and owners may rename or delete tags."
    )
    assert as_admin.json() == {"insights": 1}
    assert tags_of(insight) == ["x"]


def test_a_stranger_gets_404_on_every_tags_route(client_for, stranger, tags_url, make_insight):
    insight = make_insight(tags=["q4"])
    as_stranger = client_for(stranger)

    responses = [
        as_stranger.get(tags_url),
        as_stranger.post(f"{tags_url}rename/", {"from": "q4", "to": "x"}, format="json"),
        as_stranger.post(f"{tags_url}delete/", {"name": "q4"}, format="json"),
    ]

    assert [response.status_code for response in responses] == [404, 404, 404]
    assert tags_of(insight) == ["q4"]


def test_one_call_is_one_transaction(change, make_insight):
    first, second = make_insight(tags=["q4"]), make_insight(tags=["q4", "review"])
    refuse_activity_log()

    response = change("rename", {"from": "q4", "to": "review"})

    assert response.status_code == 500
    assert tags_of(first) == ["q4"] and tags_of(second) == ["q4", "review"]
    assert project_tags() == ["q4", "review"]


@pytest.mark.parametrize("count", [1, 200])
@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("rename", {"from": "q4", "to": "fresh"}),
        ("rename", {"from": "q4", "to": "review"}),
        ("delete", {"name": "q4"}),
    ],
    ids=["rename", "merge", "delete"],
)
def test_statement_count_does_not_depend_on_the_number_of_insights_or_tags(
    change, make_insight, owner_api, tags_url, django_assert_num_queries, route, body, count
):
    for n in range(count):
        make_insight(tags=["q4", "review", f"own {n}"])
    owner_api.get(tags_url)  # first use of the key writes last_used_at once

    # key with project, savepoint, lock, resolve names, insights with their tags, rename or merge,
    # last-modified stamp, activity log, release savepoint
    with django_assert_num_queries(9):
        response = change(route, body)
    assert response.json() == {"insights": count}


def test_the_tags_routes_and_the_bulk_writes_count_against_the_callers_budget(
    client_for, owner, tags_url, insights_url, make_insight, settings
):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "burst": "3/minute"}
    insight = make_insight(tags=["q4"])
    client = client_for(owner)

    statuses = [
        client.get(tags_url).status_code,
        client.post(
            f"{insights_url}bulk_delete/?dry_run=true", {"ids": [insight.id]}, format="json"
        ).status_code,
        client.post(f"{tags_url}delete/?dry_run=true", {"name": "q4"}, format="json").status_code,
    ]
    refused = client.post(f"{tags_url}rename/", {"from": "q4", "to": "x"}, format="json")

    assert statuses == [200, 200, 200]
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert tags_of(insight) == ["q4"]
