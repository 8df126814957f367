"""The list's hygiene filters (docs/usage-analytics.md#finding-stale-insights): stale, orphaned, tagged with all."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from insights.models import Dashboard, Insight
from viewtracking.services import views_record

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def viewed(project):
    """Views at chosen moments (insights made by the service, as here, have none of their own)."""

    def record(insight, user, at) -> None:
        views_record(project=project, user=user, insight_ids=[insight.id], at=at)

    return record


def midnight_days_ago(days: int) -> datetime:
    today = timezone.now().date()  # the project's time zone is UTC here
    return datetime.combine(today - timedelta(days=days), time.min, tzinfo=timezone.now().tzinfo)


def test_not_viewed_in_days_lists_the_stale_and_the_never_viewed(
    owner_api, insights_url, make_insight, viewed, owner, teammate
):
    fresh, edge, stale, never = (make_insight(name=n) for n in ("fresh", "edge", "stale", "never"))
    viewed(fresh, teammate, timezone.now() - timedelta(days=3))
    viewed(edge, owner, midnight_days_ago(30))  # the window's very first moment: viewed in it
    viewed(stale, owner, midnight_days_ago(30) - timedelta(seconds=1))
    make_insight(name="stale but deleted", deleted=True)

    listed = ids(owner_api.get(insights_url, {"not_viewed_in_days": 30, "order": "name"}))

    assert listed == [never.id, stale.id]


def test_not_viewed_in_days_agrees_with_usage(owner_api, insights_url, make_insight, viewed, owner):
    insights = [make_insight(name=f"i{n}") for n in range(6)]
    for n, insight in enumerate(insights[:4]):
        viewed(insight, owner, timezone.now() - timedelta(days=n * 5))

    stale = owner_api.get(insights_url, {"not_viewed_in_days": 7}).json()
    usage = owner_api.get(f"{insights_url}usage/", {"days": 7}).json()

    assert stale["count"] == usage["not_viewed_in_window"] == 4


def test_on_dashboard_separates_placed_insights_from_orphans(
    owner_api, insights_url, make_insight, make_dashboard
):
    live, gone = make_dashboard("Live"), make_dashboard("Gone")
    placed = make_insight(name="placed", dashboards=[live])
    only_on_deleted = make_insight(name="only on a deleted dashboard", dashboards=[gone])
    orphan = make_insight(name="orphan")
    Dashboard.objects.filter(id=gone.id).update(deleted=True)

    assert ids(owner_api.get(insights_url, {"on_dashboard": "true"})) == [placed.id]
    assert ids(owner_api.get(insights_url, {"on_dashboard": "false", "order": "name"})) == [
        only_on_deleted.id,
        orphan.id,
    ]


def test_tags_match_all_needs_every_tag_and_any_is_the_default(owner_api, insights_url, make_insight):
    both = make_insight(name="both", tags=["growth", "kpi"])
    one = make_insight(name="one", tags=["growth"])
    make_insight(name="none", tags=["other"])
    tags = '["growth", "KPI "]'

    assert ids(owner_api.get(insights_url, {"tags": tags, "tags_match": "all"})) == [both.id]
    assert ids(owner_api.get(insights_url, {"tags": tags, "order": "name"})) == [both.id, one.id]
    assert ids(owner_api.get(insights_url, {"tags": tags, "tags_match": "any", "order": "name"})) == [
        both.id,
        one.id,
    ]


def test_the_hygiene_filters_combine_with_every_other_filter_and_order(
    owner_api, insights_url, make_insight, make_dashboard, viewed, owner, teammate
):
    board = make_dashboard()
    wanted = [make_insight(name=f"Revenue {n}", tags=["kpi", "q4"], favorited=True) for n in "ba"]
    make_insight(name="Revenue viewed", tags=["kpi", "q4"], favorited=True)  # viewed recently
    make_insight(name="Revenue placed", tags=["kpi", "q4"], favorited=True, dashboards=[board])
    make_insight(name="Revenue one tag", tags=["kpi"], favorited=True)
    make_insight(name="Revenue unfavorited", tags=["kpi", "q4"])
    make_insight(name="Revenue by teammate", tags=["kpi", "q4"], favorited=True, created_by=teammate)
    make_insight(name="Costs", tags=["kpi", "q4"], favorited=True)
    viewed(Insight.objects.get(name="Revenue viewed"), owner, timezone.now())

    params = {
        "search": "revenue", "tags": '["kpi", "q4"]', "tags_match": "all", "favorited": "true",
        "created_by": f"[{owner.id}]", "on_dashboard": "false", "not_viewed_in_days": 90, "order": "name",
    }  # fmt: skip
    page = owner_api.get(insights_url, {**params, "limit": 1}).json()

    assert ids(owner_api.get(insights_url, params)) == [wanted[1].id, wanted[0].id]
    assert ids(owner_api.get(insights_url, {**params, "order": "-name"})) == [wanted[0].id, wanted[1].id]
    assert page["count"] == 2 and [row["id"] for row in page["results"]] == [wanted[1].id]


def test_the_hygiene_filters_hide_what_the_caller_cannot_see(
    client_for, insights_url, make_insight, viewed, teammate
):
    make_insight(name="secret")
    Insight.objects.filter(name="secret").update(access_level="none")
    shown = make_insight(name="shown")

    listed = ids(client_for(teammate).get(insights_url, {"not_viewed_in_days": 1, "on_dashboard": "false"}))

    assert listed == [shown.id]


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"not_viewed_in_days": "0"}, "not_viewed_in_days"),
        ({"not_viewed_in_days": "3651"}, "not_viewed_in_days"),
        ({"not_viewed_in_days": "a week"}, "not_viewed_in_days"),
        ({"on_dashboard": "perhaps"}, "on_dashboard"),
        ({"tags_match": "some"}, "tags_match"),
    ],
)
def test_bad_hygiene_filters_are_a_400_naming_the_parameter(owner_api, insights_url, params, attr):
    response = owner_api.get(insights_url, params)

    assert response.status_code == 400
    assert (response.json()["type"], response.json()["attr"]) == ("validation_error", attr)


@pytest.mark.parametrize("caller", ["owner", "teammate"])
def test_filtered_list_statements_do_not_grow_with_insights_or_views(
    client_for, insights_url, make_insight, make_dashboard, viewed, owner, teammate, caller,
    django_assert_num_queries,
):  # fmt: skip
    client = client_for(owner if caller == "owner" else teammate)
    params = {"not_viewed_in_days": 30, "on_dashboard": "false", "tags": '["a", "b"]', "tags_match": "all",
              "order": "-last_viewed_at", "limit": 10}  # fmt: skip
    make_insight(tags=["a", "b"])
    client.get(insights_url)  # the key's last_used_at is written on first use only
    with django_assert_num_queries(2):  # the key with its project access, then the page
        assert len(ids(client.get(insights_url, params))) == 1
    board = make_dashboard()
    for n in range(40):
        insight = make_insight(name=f"n{n}", tags=["a", "b"], dashboards=[board] if n % 4 == 0 else [])
        for user in (owner, teammate):
            viewed(insight, user, timezone.now() - timedelta(days=n * 2))
    with django_assert_num_queries(3):  # a full page: one COUNT more
        page = client.get(insights_url, params).json()
    assert page["count"] == 1 + len([n for n in range(40) if n % 4 and n * 2 > 30])
