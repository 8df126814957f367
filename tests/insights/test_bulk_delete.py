"""`POST …/insights/bulk_delete/` and `…/bulk_restore/` (docs/insight-hygiene.md#bulk-delete-and-restore)."""

from __future__ import annotations

import csv
import io

import pytest

from insights.models import AccessLevel, ActivityLog, Insight
from tests.db_failures import refuse_activity_log

pytestmark = pytest.mark.django_db

SKIP = "Not found or no edit access"


@pytest.fixture
def bulk(owner_api, insights_url):
    def call(route: str, body: dict, client=None, **params):
        query = "?" + "&".join(f"{key}={value}" for key, value in params.items()) if params else ""
        return (client or owner_api).post(f"{insights_url}{route}/{query}", body, format="json")

    return call


def deleted_of(*insights) -> list[bool]:
    states = dict(Insight.objects.filter(id__in=[i.id for i in insights]).values_list("id", "deleted"))
    return [states[insight.id] for insight in insights]


def test_bulk_delete_soft_deletes_and_answers_in_request_order(bulk, make_insight, insights_url, owner_api):
    first, second, kept = make_insight(), make_insight(), make_insight(name="Kept")

    response = bulk("bulk_delete", {"ids": [second.id, first.id]})

    assert response.status_code == 200
    assert response.json() == {
        "updated": [{"id": second.id, "deleted": True}, {"id": first.id, "deleted": True}],
        "skipped": [],
    }
    assert deleted_of(first, second, kept) == [True, True, False]
    assert [row["id"] for row in owner_api.get(insights_url).json()["results"]] == [kept.id]


def test_bulk_restore_brings_deleted_insights_back(bulk, make_insight):
    gone, live = make_insight(deleted=True), make_insight()

    body = bulk("bulk_restore", {"ids": [gone.id, live.id]}).json()

    assert body == {
        "updated": [{"id": gone.id, "deleted": False}, {"id": live.id, "deleted": False}],
        "skipped": [],
    }
    assert deleted_of(gone, live) == [False, False]


def test_foreign_missing_and_hidden_ids_are_skipped_with_one_reason(
    bulk, make_insight, stranger_project, client_for, teammate, owner
):
    mine = make_insight(created_by=teammate)
    foreign = make_insight(in_project=stranger_project)
    hidden = make_insight(name="Hidden")
    read_only = make_insight(name="Read only")
    Insight.objects.filter(id=hidden.id).update(access_level=AccessLevel.NONE)
    Insight.objects.filter(id=read_only.id).update(access_level=AccessLevel.VIEWER)

    body = bulk(
        "bulk_delete",
        {"ids": [foreign.id, mine.id, 999_999, hidden.id, read_only.id, -4]},
        client=client_for(teammate),
    ).json()

    assert body["updated"] == [{"id": mine.id, "deleted": True}]
    assert body["skipped"] == [
        {"id": i, "reason": SKIP} for i in (foreign.id, 999_999, hidden.id, read_only.id, -4)
    ]
    assert deleted_of(foreign, hidden, read_only) == [False, False, False]


def test_an_insight_already_in_the_state_counts_as_updated_and_logs_nothing(bulk, make_insight):
    already = make_insight(deleted=True)

    body = bulk("bulk_delete", {"ids": [already.id, already.id]}).json()

    assert body == {"updated": [{"id": already.id, "deleted": True}], "skipped": []}
    assert not ActivityLog.objects.filter(activity__in=["deleted", "restored"]).exists()


def test_each_changed_insight_gets_one_activity_entry_sharing_a_request_id(bulk, make_insight, owner):
    first, second = make_insight(), make_insight()

    bulk("bulk_delete", {"ids": [first.id, second.id]})
    bulk("bulk_restore", {"ids": [second.id]})

    deleted = list(ActivityLog.objects.filter(activity="deleted").order_by("insight_id"))
    restored = list(ActivityLog.objects.filter(activity="restored"))
    assert [entry.insight_id for entry in deleted] == [first.id, second.id]
    assert len({entry.request_id for entry in deleted}) == 1
    assert deleted[0].user_id == owner.id
    assert deleted[0].detail["changes"] == [
        {"type": "Insight", "action": "changed", "field": "deleted", "before": False, "after": True}
    ]
    assert [(entry.insight_id, entry.detail["changes"][0]["after"]) for entry in restored] == [
        (second.id, False)
    ]
    assert Insight.objects.get(id=first.id).last_modified_by_id == owner.id


def test_dry_run_answers_the_same_and_writes_nothing(bulk, make_insight):
    insight = make_insight()

    dry = bulk("bulk_delete", {"ids": [insight.id, 5]}, dry_run="true").json()

    assert deleted_of(insight) == [False]
    assert not ActivityLog.objects.filter(activity="deleted").exists()
    assert bulk("bulk_delete", {"ids": [insight.id, 5]}).json() == dry


@pytest.mark.parametrize("route", ["bulk_delete", "bulk_restore"])
@pytest.mark.parametrize(
    ("body", "params", "attr"),
    [
        ({}, {}, "ids"),
        ({"ids": []}, {}, "ids"),
        ({"ids": list(range(1, 502))}, {}, "ids"),
        ({"ids": [1, "two"]}, {}, "ids__1"),
        ({"ids": [1, 2**64]}, {}, "ids__1"),
        ({"ids": "1,2"}, {}, "ids"),
        ({"ids": None}, {}, "ids"),
        ({"ids": [1]}, {"dry_run": "perhaps"}, "dry_run"),
    ],
)
def test_bad_requests_are_400_naming_the_field_and_change_nothing(
    bulk, make_insight, route, body, params, attr
):
    insight = make_insight(deleted=route == "bulk_restore")
    if "ids" in body and isinstance(body["ids"], list) and body["ids"][:1] == [1]:
        body = {"ids": [insight.id, *body["ids"][1:]]}

    response = bulk(route, body, **params)

    assert response.status_code == 400
    assert response.json()["type"] == "validation_error"
    assert response.json()["attr"] == attr
    assert deleted_of(insight) == [route == "bulk_restore"]


def test_one_call_is_one_transaction(bulk, make_insight):
    insights = [make_insight(), make_insight()]
    # A real database failure at the call's last write (the activity log); the test's transaction drops it.
    refuse_activity_log()

    response = bulk("bulk_delete", {"ids": [insight.id for insight in insights]})

    assert response.status_code == 500
    assert response.json()["type"] == "server_error"
    assert deleted_of(*insights) == [False, False]


@pytest.mark.parametrize("route", ["bulk_delete", "bulk_restore"])
@pytest.mark.parametrize("count", [1, 300])
def test_statement_count_does_not_depend_on_the_number_of_ids(
    bulk, make_insight, django_assert_num_queries, owner_api, insights_url, route, count
):
    ids = [make_insight(deleted=route == "bulk_restore").id for _ in range(count)]
    owner_api.get(insights_url)  # first use of the key writes last_used_at once

    # key with project, savepoint, lock, insights (locked), flip, activity log, release savepoint
    with django_assert_num_queries(7):
        response = bulk(route, {"ids": [*ids, 10**9]})
    assert response.status_code == 200
    assert len(response.json()["updated"]) == count


def test_stranger_gets_404_and_changes_nothing(client_for, stranger, insights_url, make_insight):
    insight = make_insight()

    for route in ("bulk_delete", "bulk_restore"):
        response = client_for(stranger).post(f"{insights_url}{route}/", {"ids": [insight.id]}, format="json")
        assert response.status_code == 404
    assert deleted_of(insight) == [False]


def test_both_url_prefixes_answer(bulk, make_insight, owner_api, project):
    insight = make_insight()

    response = owner_api.post(
        f"/api/environments/{project.id}/insights/bulk_delete", {"ids": [insight.id]}, format="json"
    )

    assert response.status_code == 200
    assert deleted_of(insight) == [True]


def test_csv_answers_the_result_as_one_row_of_dotted_columns(make_insight, owner_api, insights_url):
    first, second = make_insight(), make_insight()

    response = owner_api.post(
        f"{insights_url}bulk_delete/?format=csv", {"ids": [first.id, second.id, 7]}, format="json"
    )

    assert response.status_code == 200
    [row] = csv.DictReader(io.StringIO(response.content.decode()))
    assert row == {
        "updated.0.id": str(first.id),
        "updated.0.deleted": "true",
        "updated.1.id": str(second.id),
        "updated.1.deleted": "true",
        "skipped.0.id": "7",
        "skipped.0.reason": SKIP,
    }
