"""`POST …/insights/bulk_update_tags/` (docs/insight-actions.md#bulk_update_tags)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from insights.models import ActivityLog
from tagging.models import Tag, TaggedItem
from tests.db_failures import refuse_activity_log

pytestmark = pytest.mark.django_db

SKIP = "Not found or no edit access"


@pytest.fixture
def bulk(owner_api, insights_url):
    def call(body: dict, **params):
        query = "?" + "&".join(f"{key}={value}" for key, value in params.items()) if params else ""
        return owner_api.post(f"{insights_url}bulk_update_tags/{query}", body, format="json")

    return call


def tags_of(insight) -> list[str]:
    return sorted(TaggedItem.objects.filter(insight=insight).values_list("tag__name", flat=True))


def test_add_unions_the_tags_and_answers_in_request_order(bulk, make_insight):
    first, second = make_insight(tags=["kpi"]), make_insight()

    response = bulk({"ids": [second.id, first.id], "action": "add", "tags": ["  Growth ", "KPI"]})

    assert response.status_code == 200
    assert response.json() == {
        "updated": [
            {"id": second.id, "tags": ["growth", "kpi"]},
            {"id": first.id, "tags": ["growth", "kpi"]},
        ],
        "skipped": [],
    }
    assert tags_of(first) == tags_of(second) == ["growth", "kpi"]


def test_remove_takes_tags_away_and_an_absent_tag_is_a_no_op_that_still_counts(bulk, make_insight):
    tagged, untagged = make_insight(tags=["a", "b"]), make_insight()

    body = bulk({"ids": [tagged.id, untagged.id], "action": "remove", "tags": ["b"]}).json()

    assert body["updated"] == [{"id": tagged.id, "tags": ["a"]}, {"id": untagged.id, "tags": []}]


def test_set_replaces_and_an_empty_set_clears(bulk, make_insight):
    insight = make_insight(tags=["a", "b"])

    assert bulk({"ids": [insight.id], "action": "set", "tags": ["c", "a"]}).json()["updated"] == [
        {"id": insight.id, "tags": ["a", "c"]}
    ]
    assert bulk({"ids": [insight.id], "action": "set", "tags": []}).json()["updated"] == [
        {"id": insight.id, "tags": []}
    ]
    assert tags_of(insight) == []


def test_foreign_missing_and_deleted_ids_are_skipped_with_one_reason(bulk, make_insight, stranger_project):
    mine = make_insight()
    foreign = make_insight(in_project=stranger_project, tags=["theirs"])
    deleted = make_insight(deleted=True)

    body = bulk(
        {"ids": [foreign.id, mine.id, 999_999, deleted.id, -4], "action": "add", "tags": ["x"]}
    ).json()

    assert body["updated"] == [{"id": mine.id, "tags": ["x"]}]
    assert body["skipped"] == [{"id": i, "reason": SKIP} for i in (foreign.id, 999_999, deleted.id, -4)]
    assert tags_of(foreign) == ["theirs"]


def test_everything_skipped_is_still_a_200(bulk):
    response = bulk({"ids": [123456], "action": "set", "tags": []})

    assert response.status_code == 200
    assert response.json() == {"updated": [], "skipped": [{"id": 123456, "reason": SKIP}]}


def test_duplicate_ids_are_answered_once(bulk, make_insight):
    insight = make_insight()

    assert bulk({"ids": [insight.id, insight.id], "action": "add", "tags": ["x"]}).json()["updated"] == [
        {"id": insight.id, "tags": ["x"]}
    ]


def test_tags_left_on_nothing_are_deleted(bulk, make_insight):
    insight = make_insight(tags=["lonely", "shared"])
    make_insight(tags=["shared"])

    bulk({"ids": [insight.id], "action": "remove", "tags": ["lonely", "shared"]})

    assert list(Tag.objects.values_list("name", flat=True)) == ["shared"]


@pytest.mark.parametrize(
    ("body", "attr", "detail"),
    [
        ({"action": "add", "tags": ["x"]}, "ids", None),
        ({"ids": [], "action": "add", "tags": ["x"]}, "ids", None),
        ({"ids": list(range(1, 502)), "action": "add", "tags": ["x"]}, "ids", None),
        ({"ids": [1, "two"], "action": "add", "tags": ["x"]}, "ids__1", None),
        ({"ids": [1, 2**64], "action": "add", "tags": ["x"]}, "ids__1", None),
        ({"ids": "1,2", "action": "add", "tags": ["x"]}, "ids", None),
        ({"ids": [1], "tags": ["x"]}, "action", None),
        ({"ids": [1], "action": "merge", "tags": ["x"]}, "action", None),
        ({"ids": [1], "action": "add"}, "tags", None),
        ({"ids": [1], "action": "add", "tags": []}, "tags", "tags must not be empty for action 'add'."),
        (
            {"ids": [1], "action": "remove", "tags": ["  "]},
            "tags",
            "tags must not be empty for action 'remove'.",
        ),
        ({"ids": [1], "action": "add", "tags": [f"t{i}" for i in range(101)]}, "tags", None),
        ({"ids": [1], "action": "set", "tags": ["same"] * 101}, "tags", "At most 100 tags."),
        ({"ids": [1], "action": "add", "tags": ["x" * 256]}, "tags", None),
        ({"ids": [1], "action": "add", "tags": "x"}, "tags", None),
        ({"ids": list(range(1, 201)), "action": "add", "tags": [f"t{i}" for i in range(51)]}, "tags", None),
    ],
)
def test_bad_requests_are_400_naming_the_field_and_change_nothing(bulk, make_insight, body, attr, detail):
    insight = make_insight(tags=["keep"])

    response = bulk(body)

    assert response.status_code == 400
    assert response.json()["attr"] == attr
    if detail:
        assert response.json()["detail"] == detail
    assert tags_of(insight) == ["keep"]


def test_a_tag_of_255_characters_after_normalisation_is_accepted(bulk, make_insight):
    insight = make_insight()

    body = bulk({"ids": [insight.id], "action": "add", "tags": ["  " + "A" * 255 + "  "]}).json()

    assert body["updated"][0]["tags"] == ["a" * 255]


def test_exactly_ten_thousand_pairs_is_allowed(bulk, make_insight):
    insights = [make_insight() for _ in range(2)]
    ids = [insight.id for insight in insights] + list(range(10**9, 10**9 + 198))

    response = bulk({"ids": ids, "action": "add", "tags": [f"t{i}" for i in range(50)]})

    assert response.status_code == 200
    assert len(response.json()["updated"]) == 2


def test_dry_run_answers_the_same_and_writes_nothing(bulk, make_insight):
    insight = make_insight(tags=["a"])

    dry = bulk({"ids": [insight.id], "action": "add", "tags": ["b"]}, dry_run="true").json()

    assert dry == {"updated": [{"id": insight.id, "tags": ["a", "b"]}], "skipped": []}
    assert tags_of(insight) == ["a"]
    assert not Tag.objects.filter(name="b").exists()
    assert bulk({"ids": [insight.id], "action": "add", "tags": ["b"]}).json() == dry


def test_each_changed_insight_gets_one_activity_entry_sharing_a_request_id(bulk, make_insight):
    changed, unchanged = make_insight(tags=["a"]), make_insight(tags=["b"])

    bulk({"ids": [changed.id, unchanged.id], "action": "add", "tags": ["b"]})

    entries = list(ActivityLog.objects.filter(activity="updated"))
    assert [entry.insight_id for entry in entries] == [changed.id]
    assert entries[0].detail["changes"] == [
        {"type": "Insight", "action": "changed", "field": "tags", "before": ["a"], "after": ["a", "b"]}
    ]


def test_the_request_id_is_shared_by_all_entries_of_one_call(bulk, make_insight):
    insights = [make_insight() for _ in range(3)]

    bulk({"ids": [insight.id for insight in insights], "action": "add", "tags": ["t"]})

    assert ActivityLog.objects.filter(activity="updated").values("request_id").distinct().count() == 1


def test_one_call_is_one_transaction(bulk, make_insight):
    insight = make_insight(tags=["a"])
    # A real database failure at the last write of the call (the activity log), injected with a
    # trigger; the test's own transaction drops it again.
    refuse_activity_log()

    response = bulk({"ids": [insight.id], "action": "set", "tags": ["z"]})

    assert response.status_code == 500
    assert response.json()["type"] == "server_error"
    assert tags_of(insight) == ["a"]
    assert not Tag.objects.filter(name="z").exists()


@pytest.mark.parametrize(("count", "tags"), [(1, 1), (300, 20)])
def test_statement_count_does_not_depend_on_ids_or_tags(
    bulk, make_insight, django_assert_num_queries, owner_api, insights_url, count, tags
):
    ids = [make_insight(tags=["old"]).id for _ in range(count)]
    owner_api.get(insights_url)  # first use of the key writes last_used_at once

    # key with project, lock, insights, current tags, upsert tags, attach, detach, orphans,
    # last-modified stamp, activity log, savepoint/commit
    with django_assert_num_queries(12):
        response = bulk({"ids": ids, "action": "set", "tags": [f"n{i}" for i in range(tags)]})
    assert response.status_code == 200


def test_stranger_cannot_use_it_on_a_foreign_project(client_for, stranger, insights_url, make_insight):
    insight = make_insight(tags=["a"])

    response = client_for(stranger).post(
        f"{insights_url}bulk_update_tags/", {"ids": [insight.id], "action": "set", "tags": []}, format="json"
    )

    assert response.status_code == 404
    assert tags_of(insight) == ["a"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_overlapping_ids_lose_nothing_and_leave_no_orphans(
    client_for, owner, insights_url, make_insight
):
    # Adds of distinct tags and removes of one common tag commute, so every serial order of these 16
    # requests ends in the same state; a lost update or a double-applied removal would show.
    insights = [make_insight(tags=["gone"]) for _ in range(8)]
    ids = [insight.id for insight in insights]
    adds = [{"ids": ids[i : i + 3], "action": "add", "tags": [f"a{i}"]} for i in range(8)]
    removes = [{"ids": ids[i : i + 4], "action": "remove", "tags": ["gone"]} for i in range(0, 8, 2)] * 2
    requests = adds + removes
    statuses: list[int] = []
    barrier = threading.Barrier(len(requests), timeout=30)

    def writer(client, body: dict) -> None:
        barrier.wait()
        try:
            statuses.append(client.post(f"{insights_url}bulk_update_tags/", body, format="json").status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(client_for(owner), body)) for body in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [200] * len(requests)
    for position, insight in enumerate(insights):
        added = {f"a{i}" for i in range(8) if i <= position < i + 3}
        assert set(tags_of(insight)) == added, position
    assert set(Tag.objects.values_list("name", flat=True)) == {f"a{i}" for i in range(8)}
    removal_entries = [
        entry
        for entry in ActivityLog.objects.filter(activity="updated")
        if "gone" in entry.detail["changes"][0]["before"]
        and "gone" not in entry.detail["changes"][0]["after"]
    ]
    assert sorted(entry.insight_id for entry in removal_entries) == sorted(ids)  # each removed exactly once
    assert ActivityLog.objects.filter(activity="updated").count() == 8 + sum(
        len(body["ids"]) for body in adds
    )
