"""`GET …/insights/trending/` (docs/insight-actions.md#trending) over rollups plus fresh events (docs/view-tracking.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from insights.models import Insight, InsightAccessOverride
from viewtracking.models import InsightViewed
from viewtracking.services import views_record, views_rollup

pytestmark = pytest.mark.django_db


@pytest.fixture
def view(project):
    """Record a view at a chosen moment (the clock is the outside world, so it is a parameter)."""

    def record(*insights, user, ago: timedelta = timedelta(0), at=None) -> None:
        moment = at or timezone.now() - ago
        views_record(project=insights[0].project, user=user, insight_ids=[i.id for i in insights], at=moment)

    return record


@pytest.fixture
def trending(owner_api, insights_url):
    def call(**params):
        response = owner_api.get(f"{insights_url}trending", params)
        assert response.status_code == 200, response.content
        return response.json()

    return call


def test_view_count_counts_every_view_and_unique_viewers_counts_people(
    trending, make_insight, view, owner, teammate
):
    insight = make_insight()
    for _ in range(3):
        view(insight, user=owner)
    view(insight, user=teammate)

    [row] = trending()["results"]

    assert (row["id"], row["view_count"], row["unique_viewers"]) == (insight.id, 4, 2)


def test_ranking_is_by_views_then_latest_view_then_id(trending, make_insight, view, owner):
    popular, recent_tie, older_tie, id_tie_low, id_tie_high = (make_insight() for _ in range(5))
    for _ in range(3):
        view(popular, user=owner, ago=timedelta(hours=5))
    view(recent_tie, user=owner, ago=timedelta(hours=1))
    view(older_tie, user=owner, ago=timedelta(hours=2))
    view(id_tie_low, id_tie_high, user=owner, at=timezone.now() - timedelta(hours=3))  # the very same moment

    ranked = [row["id"] for row in trending()["results"]]

    assert ranked == [popular.id, recent_tie.id, older_tie.id, id_tie_high.id, id_tie_low.id]


def test_the_window_leaves_out_old_views_and_deleted_insights(trending, make_insight, view, owner):
    fresh, stale, deleted = make_insight(), make_insight(), make_insight()
    view(fresh, user=owner, ago=timedelta(days=2))
    view(stale, user=owner, ago=timedelta(days=30))
    view(deleted, user=owner)
    Insight.objects.filter(id=deleted.id).update(deleted=True)  # viewed, then soft-deleted

    assert [row["id"] for row in trending(days=7)["results"]] == [fresh.id]
    assert sorted(row["id"] for row in trending(days=60)["results"]) == sorted([fresh.id, stale.id])


def test_the_window_starts_at_midnight_utc_days_ago(trending, make_insight, view, owner):
    insight = make_insight()
    now = timezone.now()
    start_of_window = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    view(insight, user=owner, ago=now - start_of_window)  # exactly at the start: inside
    view(insight, user=owner, ago=now - start_of_window + timedelta(seconds=1))  # a second before: outside

    assert trending(days=1)["results"][0]["view_count"] == 1


def test_each_result_has_the_basic_shape_and_up_to_three_recent_viewers(
    trending, make_insight, view, owner, teammate, stranger, org
):
    from accounts.models import OrganizationMembership, User

    insight = make_insight(tags=["kpi"])
    extra = User.objects.create_user(email="fourth@acme.test", password="x")
    OrganizationMembership.objects.create(organization=org, user=extra)
    view(insight, user=extra, ago=timedelta(hours=4))
    view(insight, user=owner, ago=timedelta(hours=3))
    view(insight, user=teammate, ago=timedelta(hours=2))
    view(insight, user=owner, ago=timedelta(hours=1))

    [row] = trending()["results"]

    assert [viewer["email"] for viewer in row["viewers"]] == [owner.email, teammate.email, extra.email]
    assert set(row["viewers"][0]) == {"id", "uuid", "email", "first_name", "last_name", "hedgehog_config"}
    assert row["tags"] == ["kpi"] and row["last_modified_by"]["email"] == owner.email
    latest = InsightViewed.objects.filter(insight=insight).order_by("-last_viewed_at").first().last_viewed_at
    assert row["last_viewed_at"] == latest.isoformat().replace("+00:00", "Z")


def test_count_next_and_previous_page_through_the_whole_ranking(trending, make_insight, view, owner):
    insights = [make_insight() for _ in range(5)]
    for rank, insight in enumerate(insights):
        for _ in range(5 - rank):
            view(insight, user=owner)

    first = trending(limit=2)
    middle = trending(limit=2, offset=2)
    last = trending(limit=2, offset=4)
    beyond = trending(limit=2, offset=10)

    assert [first["count"], middle["count"], last["count"], beyond["count"]] == [5, 5, 5, 5]
    assert [row["id"] for row in first["results"] + middle["results"] + last["results"]] == [
        i.id for i in insights
    ]
    assert "offset=2" in first["next"] and first["previous"] is None
    assert "offset=4" in middle["next"] and "offset" not in middle["previous"]
    assert last["next"] is None and "offset=2" in last["previous"]
    assert beyond["results"] == []


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"days": "0"}, "days"),
        ({"days": "366"}, "days"),
        ({"days": "99999999999"}, "days"),
        ({"days": "week"}, "days"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "1.5"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "x"}, "offset"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(owner_api, insights_url, params, attr):
    response = owner_api.get(f"{insights_url}trending/", params)

    assert response.status_code == 400
    assert response.json()["attr"] == attr


def test_counts_stay_exact_across_a_rollup_and_include_a_view_made_a_moment_ago(
    trending, make_insight, view, owner, teammate, owner_api, insights_url
):
    insight = make_insight()
    view(insight, user=owner, ago=timedelta(days=3))
    view(insight, user=teammate, ago=timedelta(days=1))
    before = trending()["results"][0]["view_count"]

    views_rollup()
    after_rollup = trending()["results"][0]["view_count"]
    owner_api.post(f"{insights_url}viewed/", {"insight_ids": [insight.id]}, format="json")
    fresh = trending()["results"][0]

    assert before == after_rollup == 2
    assert (fresh["view_count"], fresh["unique_viewers"]) == (3, 2)


@pytest.mark.parametrize("caller", ["owner", "member with overrides"])
def test_statement_count_does_not_grow_with_limit(
    client_for, insights_url, make_insight, view, owner, teammate, django_assert_num_queries, caller
):
    reader = client_for(owner if caller == "owner" else teammate)
    for n in range(30):
        insight = make_insight(tags=["t"])
        view(insight, user=owner)
        # Every insight visible to the member, each by its own override (docs/access-control.md).
        Insight.objects.filter(id=insight.id).update(access_level="none")
        InsightAccessOverride.objects.create(
            insight=insight, user=teammate, access_level=("viewer", "editor")[n % 2]
        )
    reader.get(insights_url)

    # key with project, ranking, the page (insights with tags, dashboards, viewers and the caller's level)
    with django_assert_num_queries(3):
        assert len(reader.get(f"{insights_url}trending/", {"limit": 1}).json()["results"]) == 1
    with django_assert_num_queries(3):
        assert len(reader.get(f"{insights_url}trending/", {"limit": 100}).json()["results"]) == 30


def test_another_projects_views_never_count(trending, make_insight, view, owner, stranger, stranger_project):
    insight = make_insight()
    view(insight, user=owner)
    foreign = make_insight(in_project=stranger_project)

    assert [row["id"] for row in trending()["results"]] == [insight.id]
    assert foreign.id not in [row["id"] for row in trending()["results"]]
