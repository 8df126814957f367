"""`POST …/insights/viewed/` and `GET …/insights/my_last_viewed/` (docs/insight-actions.md#my_last_viewed, docs/insight-actions.md#viewed)."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from insights.models import Insight, InsightAccessOverride
from viewtracking.models import InsightViewed, ViewEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewed(owner_api, insights_url):
    return lambda body, client=owner_api: client.post(f"{insights_url}viewed", body, format="json")


@pytest.fixture
def my_last_viewed(owner_api, insights_url):
    return lambda client=owner_api: client.get(f"{insights_url}my_last_viewed/")


def test_viewed_answers_201_with_an_empty_body_and_records_views(viewed, make_insight, owner):
    first, second = make_insight(), make_insight()

    response = viewed({"insight_ids": [first.id, second.id, first.id]})

    assert response.status_code == 201
    assert response.content == b""
    assert sorted(ViewEvent.objects.values_list("insight_id", flat=True)) == sorted([first.id, second.id])
    assert InsightViewed.objects.filter(user=owner, insight__in=[first, second]).count() == 2


def test_foreign_missing_and_deleted_ids_are_dropped_silently(viewed, make_insight, stranger_project):
    mine = make_insight()
    foreign = make_insight(in_project=stranger_project)
    deleted = make_insight(deleted=True)

    response = viewed({"insight_ids": [foreign.id, deleted.id, 424242, mine.id]})

    assert response.status_code == 201
    assert list(ViewEvent.objects.values_list("insight_id", flat=True)) == [mine.id]
    assert not InsightViewed.objects.filter(
        insight__in=[foreign, deleted], user__email="owner@acme.test"
    ).exists()


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"insight_ids": []},
        {"insight_ids": "1"},
        {"insight_ids": [1, "x"]},
        {"insight_ids": [None]},
        {"insight_ids": [2**64]},
        {"insight_ids": list(range(2501))},
        [1, 2],
    ],
)
def test_bad_bodies_are_400_and_write_nothing(viewed, make_insight, body):
    make_insight()

    response = viewed(body)

    assert response.status_code == 400
    assert not ViewEvent.objects.exists()


@pytest.mark.parametrize("caller", ["owner", "member with overrides"])
def test_viewed_is_one_statement_whatever_the_number_of_ids(
    viewed, make_insight, django_assert_num_queries, client_for, owner, teammate, insights_url, caller
):
    reader = client_for(owner if caller == "owner" else teammate)
    insights = [make_insight() for _ in range(50)]
    Insight.objects.update(access_level="none")
    InsightAccessOverride.objects.bulk_create(
        InsightAccessOverride(insight=insight, user=teammate, access_level="viewer")
        for insight in insights[::2]
    )
    reader.get(insights_url)  # the key's first use writes last_used_at

    # key with project, the view upsert + event insert (visibility is part of it)
    with django_assert_num_queries(2):
        viewed({"insight_ids": [insights[0].id]}, client=reader)
    with django_assert_num_queries(2):
        viewed({"insight_ids": [insight.id for insight in insights]}, client=reader)
    expected = 50 if caller == "owner" else 25
    assert InsightViewed.objects.filter(user=owner if caller == "owner" else teammate).count() == expected


def test_my_last_viewed_lists_my_five_latest_views_most_recent_first(viewed, my_last_viewed, make_insight):
    insights = [make_insight(name=f"i{n}") for n in range(7)]
    for insight in insights:
        viewed({"insight_ids": [insight.id]})
    viewed({"insight_ids": [insights[1].id]})  # viewing again moves it to the front

    body = my_last_viewed().json()

    assert [row["id"] for row in body] == [insights[n].id for n in (1, 6, 5, 4, 3)]
    assert all(row["last_viewed_at"] for row in body)


def test_my_last_viewed_uses_my_views_not_my_teammates(
    viewed, my_last_viewed, make_insight, client_for, teammate
):
    mine, theirs = make_insight(name="mine"), make_insight(name="theirs", created_by=teammate)
    teammate_client = client_for(teammate)
    viewed({"insight_ids": [theirs.id]}, client=teammate_client)
    viewed({"insight_ids": [mine.id]})
    viewed({"insight_ids": [mine.id]}, client=teammate_client)

    own = InsightViewed.objects.get(insight=mine, user__email="owner@acme.test").last_viewed_at
    body = my_last_viewed().json()

    assert [row["id"] for row in body] == [mine.id]  # theirs was created and viewed by the teammate
    assert body[0]["last_viewed_at"] == own.isoformat().replace("+00:00", "Z")


def test_my_last_viewed_is_a_bare_array_in_the_basic_shape_without_deleted(
    viewed, my_last_viewed, make_insight, owner_api, insights_url
):
    kept, dropped = make_insight(tags=["t"]), make_insight()
    viewed({"insight_ids": [kept.id, dropped.id]})
    owner_api.patch(f"{insights_url}{dropped.id}/", {"deleted": True}, format="json")

    body = my_last_viewed().json()

    assert isinstance(body, list)
    assert [row["id"] for row in body] == [kept.id]
    assert body[0]["tags"] == ["t"] and "deleted" not in body[0]


def test_nothing_viewed_is_an_empty_array(my_last_viewed):
    assert my_last_viewed().json() == []


@pytest.mark.parametrize("caller", ["owner", "member with overrides"])
def test_my_last_viewed_runs_a_fixed_number_of_statements(
    viewed, my_last_viewed, make_insight, django_assert_num_queries, client_for, owner, teammate, caller
):
    reader = client_for(owner if caller == "owner" else teammate)
    insights = [make_insight(tags=["a"]) for _ in range(6)]
    Insight.objects.update(access_level="viewer")
    InsightAccessOverride.objects.create(insight=insights[0], user=teammate, access_level="none")
    viewed({"insight_ids": [insight.id for insight in insights]}, client=reader)

    # key with project, my last viewed insights (with their tags, dashboards and the caller's level)
    with django_assert_num_queries(2):
        assert len(my_last_viewed(client=reader).json()) == 5


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_viewers_of_the_same_insights_are_all_counted(
    client_for, owner, insights_url, make_insight
):
    insights = [make_insight() for _ in range(3)]
    ids = [insight.id for insight in insights]
    clients = [client_for(owner) for _ in range(50)]
    statuses: list[int] = []
    barrier = threading.Barrier(len(clients), timeout=30)

    def view(client) -> None:
        barrier.wait()
        try:
            statuses.append(
                client.post(f"{insights_url}viewed/", {"insight_ids": ids}, format="json").status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=view, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [201] * 50
    assert ViewEvent.objects.count() == 150
    assert InsightViewed.objects.filter(user=owner).count() == 3
