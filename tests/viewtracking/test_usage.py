"""`views`, `viewers` and `usage` (docs/usage-analytics.md): every figure against an independent count
over the raw view events, in the project's time zone, across the rollup boundary."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from insights.models import Insight, InsightAccessOverride
from viewtracking.models import InsightLastView, InsightViewed, PendingView, ViewEvent
from viewtracking.services import views_record, views_rollup
from viewtracking.usage import bucket_of

pytestmark = pytest.mark.django_db

# Five and a half hours ahead of UTC: a local midnight is no UTC hour, let alone a UTC midnight.
KOLKATA = ZoneInfo("Asia/Kolkata")


@pytest.fixture
def kolkata(project):
    project.timezone = KOLKATA.key
    project.save(update_fields=["timezone"])
    return project


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=KOLKATA)


def view(insight, user, at: datetime) -> None:
    views_record(project=insight.project, user=user, insight_ids=[insight.id], at=at)


def unviewed(*insights) -> None:
    """Forget the views of creating these insights (each counted as its creator's view)."""
    ids = [insight.id for insight in insights]
    PendingView.objects.filter(insight_id__in=ids).delete()
    ViewEvent.objects.filter(insight_id__in=ids).delete()
    InsightViewed.objects.filter(insight_id__in=ids).delete()
    InsightLastView.objects.filter(insight_id__in=ids).delete()


def statements(call) -> int:
    with CaptureQueriesContext(connection) as captured:
        call()
    return len(captured.captured_queries)


def expected(insights, *, first: date, last: date, interval: str = "day", tz=KOLKATA):
    """The figures counted again from the raw events: per bucket and in total, views and the set of users."""
    per_bucket: dict[date, list] = defaultdict(lambda: [0, set()])
    total = [0, set()]
    for event in ViewEvent.objects.filter(insight_id__in=[i.id for i in insights]):
        day = event.viewed_at.astimezone(tz).date()
        if first <= day <= last:
            for counted in (per_bucket[bucket_of(day, interval)], total):
                counted[0] += 1
                counted[1].add(event.user_id)
    return (
        {"view_count": total[0], "unique_viewers": len(total[1])},
        {bucket.isoformat(): (views, len(users)) for bucket, (views, users) in per_bucket.items()},
    )


@pytest.fixture
def today():
    return timezone.now().astimezone(KOLKATA).date()


@pytest.fixture
def overlapping_week(kolkata, make_insight, owner, teammate, today):
    """Two weeks ago: owner on Monday and Tuesday, teammate on Tuesday (just after a local midnight)
    and Sunday (just before one); rolled up. This week: views still queued, across today's midnight."""
    insight = make_insight()
    unviewed(insight)
    monday = bucket_of(today, "week") - timedelta(days=14)
    view(insight, owner, local(monday, 9))
    view(insight, owner, local(monday + timedelta(days=1), 0, 10))
    view(insight, teammate, local(monday + timedelta(days=1), 0, 20))
    view(insight, teammate, local(monday + timedelta(days=6), 23, 50))
    views_rollup()
    view(insight, owner, local(today, 0, 1))  # after today's local midnight (before UTC's)
    view(insight, teammate, local(today, 0, 2))
    return insight


def test_a_weeks_unique_viewers_are_distinct_people_not_a_sum_of_days(
    owner_api, insights_url, overlapping_week, today
):
    answer = owner_api.get(
        f"{insights_url}{overlapping_week.id}/views/", {"date_from": "-21d", "interval": "week"}
    )

    assert answer.status_code == 200, answer.content
    body = answer.json()
    total, buckets = expected(
        [overlapping_week], first=today - timedelta(days=21), last=today, interval="week"
    )
    assert body["total"] == total == {"view_count": 6, "unique_viewers": 2}
    got = {point["date"]: (point["view_count"], point["unique_viewers"]) for point in body["series"]}
    assert {day: counts for day, counts in got.items() if counts != (0, 0)} == buckets
    two_weeks_ago = (bucket_of(today, "week") - timedelta(days=14)).isoformat()
    assert got[two_weeks_ago] == (4, 2)  # three days with 1, 1 and 1 viewers: still two people
    assert [point["date"] for point in body["series"]] == sorted(got)  # every week, oldest first


def test_daily_buckets_follow_the_projects_midnight_across_the_rollup_boundary(
    owner_api, insights_url, overlapping_week, today
):
    body = owner_api.get(f"{insights_url}{overlapping_week.id}/views/", {"date_from": "-21d"}).json()

    total, buckets = expected([overlapping_week], first=today - timedelta(days=21), last=today)
    got = {point["date"]: (point["view_count"], point["unique_viewers"]) for point in body["series"]}
    assert body["total"] == total
    assert {day: counts for day, counts in got.items() if counts != (0, 0)} == buckets
    assert got[today.isoformat()] == (2, 2)  # queued, in today's local day though yesterday in UTC
    assert len(body["series"]) == 22 and body["date_from"] == (today - timedelta(days=21)).isoformat()
    assert body["timezone"] == "Asia/Kolkata"


def test_a_window_of_a_month_by_month_counts_only_its_own_days(
    owner_api, insights_url, overlapping_week, today
):
    first = today - timedelta(days=3)
    body = owner_api.get(
        f"{insights_url}{overlapping_week.id}/views/", {"date_from": first.isoformat(), "interval": "month"}
    ).json()

    total, _ = expected([overlapping_week], first=first, last=today, interval="month")
    assert body["total"] == total == {"view_count": 2, "unique_viewers": 2}
    assert [point["date"] for point in body["series"]] == sorted({bucket_of(first, "month").isoformat(),
                                                                  bucket_of(today, "month").isoformat()})  # fmt: skip


def test_views_statements_do_not_grow_with_buckets_or_users(
    owner_api, insights_url, make_insight, owner, teammate, stranger, django_assert_num_queries
):
    insight = make_insight()
    url = f"{insights_url}{insight.id}/views/"
    owner_api.get(url)  # the key's first use is recorded once
    few = statements(lambda: owner_api.get(url, {"date_from": "-7d"}))
    for n, user in enumerate((owner, teammate, stranger)):
        for days in range(0, 300, 7):
            view(insight, user, timezone.now() - timedelta(days=days, hours=n))
    with django_assert_num_queries(few):
        answer = owner_api.get(url, {"date_from": "-365d"})
    assert len(answer.json()["series"]) == 366


@pytest.mark.parametrize(
    ("params", "attr"),
    [
        ({"interval": "hour"}, "interval"),
        ({"date_from": "yesterday"}, "date_from"),
        ({"date_from": "-3d", "date_to": "-5d"}, "date_to"),
        ({"date_from": "-20y"}, "date_from"),
    ],
)
def test_bad_views_parameters_are_a_400_naming_the_parameter(
    owner_api, insights_url, make_insight, params, attr
):
    answer = owner_api.get(f"{insights_url}{make_insight().id}/views/", params)

    assert answer.status_code == 400
    assert answer.json()["attr"] == attr


def test_viewers_are_listed_most_recent_first_with_their_views_in_the_window(
    owner_api, insights_url, make_insight, owner, teammate, stranger
):
    insight = make_insight()
    now = timezone.now()
    view(insight, teammate, now - timedelta(days=40))  # outside a 30-day window
    view(insight, teammate, now - timedelta(days=3))
    view(insight, teammate, now - timedelta(days=2))
    views_rollup()
    view(insight, owner, now - timedelta(hours=1))  # queued

    body = owner_api.get(f"{insights_url}{insight.id}/viewers/", {"days": 30}).json()

    assert body["count"] == 2
    assert [(row["user"]["email"], row["view_count"]) for row in body["results"]] == [
        (owner.email, 1),
        (teammate.email, 2),
    ]
    latest = datetime.fromisoformat(body["results"][1]["last_viewed_at"])
    assert abs(latest - (now - timedelta(days=2))) < timedelta(milliseconds=1)


def test_viewers_page_and_export_one_row_per_viewer(owner_api, insights_url, make_insight, owner, teammate):
    insight = make_insight()
    view(insight, owner, timezone.now() - timedelta(hours=1))
    view(insight, teammate, timezone.now())

    page = owner_api.get(f"{insights_url}{insight.id}/viewers/", {"limit": 1}).json()
    csv = owner_api.get(f"{insights_url}{insight.id}/viewers/", {"format": "csv"})

    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"]
    assert page["results"][0]["user"]["email"] == teammate.email
    lines = csv.content.decode().strip().splitlines()
    assert len(lines) == 3 and "user.email" in lines[0] and csv["X-Total-Count"] == "2"


def test_viewers_statements_do_not_grow_with_the_page(
    owner_api, insights_url, make_insight, owner, teammate, stranger, django_assert_num_queries
):
    insight = make_insight()
    url = f"{insights_url}{insight.id}/viewers/"
    owner_api.get(url)  # the key's first use is recorded once
    one = statements(lambda: owner_api.get(url, {"limit": 5}))
    for user in (teammate, stranger):
        view(insight, user, timezone.now())
    with django_assert_num_queries(one):
        assert len(owner_api.get(url, {"limit": 5}).json()["results"]) == 2


def test_usage_counts_match_the_raw_events(
    kolkata, owner_api, insights_url, make_insight, owner, teammate, today
):
    busy, quiet, stale, never = (make_insight(name=n) for n in ("busy", "quiet", "stale", "never"))
    unviewed(busy, quiet, stale, never)
    view(stale, owner, timezone.now() - timedelta(days=50))
    view(busy, owner, local(today - timedelta(days=2), 0, 5))
    view(busy, teammate, local(today - timedelta(days=2), 23, 55))
    view(quiet, teammate, local(today - timedelta(days=1), 12))
    views_rollup()
    view(busy, owner, local(today, 0, 1))

    body = owner_api.get(f"{insights_url}usage/", {"days": 7}).json()

    total, daily = expected([busy, quiet, stale, never], first=today - timedelta(days=7), last=today)
    assert {key: body[key] for key in ("insights", "viewed", "not_viewed_in_window", "never_viewed")} == {
        "insights": 4, "viewed": 2, "not_viewed_in_window": 2, "never_viewed": 1,
    }  # fmt: skip
    assert (body["views"], body["viewers"]) == (total["view_count"], total["unique_viewers"]) == (4, 2)
    series = {point["date"]: (point["view_count"], point["unique_viewers"]) for point in body["series"]}
    assert len(series) == 8 and {day: c for day, c in series.items() if c != (0, 0)} == daily
    assert [(row["user"]["email"], row["view_count"]) for row in body["top_viewers"]] == [
        (owner.email, 2), (teammate.email, 2)
    ] or [(row["user"]["email"], row["view_count"]) for row in body["top_viewers"]] == [
        (teammate.email, 2), (owner.email, 2)
    ]  # fmt: skip


def test_usage_never_counts_or_names_an_insight_the_caller_cannot_see(
    client_for, insights_url, make_insight, owner, teammate
):
    shown, hidden, deleted = (
        make_insight(name="shown"),
        make_insight(name="hidden"),
        make_insight(name="gone"),
    )
    Insight.objects.filter(id=hidden.id).update(access_level="none")
    unviewed(shown, hidden, deleted)
    for _ in range(3):
        view(hidden, owner, timezone.now() - timedelta(days=1))
    view(hidden, teammate, timezone.now() - timedelta(days=1))  # the same day as a visible view
    view(shown, teammate, timezone.now() - timedelta(days=1))
    view(deleted, teammate, timezone.now() - timedelta(days=1))
    views_rollup()  # rolled up: the hidden views are inside the project's daily totals now
    view(hidden, owner, timezone.now())
    view(shown, teammate, timezone.now())
    Insight.objects.filter(id=deleted.id).update(deleted=True)

    body = client_for(teammate).get(f"{insights_url}usage/", {"days": 3}).json()

    assert (body["insights"], body["views"], body["viewers"]) == (1, 2, 1)
    assert [(row["user"]["email"], row["view_count"]) for row in body["top_viewers"]] == [(teammate.email, 2)]
    assert [point["unique_viewers"] for point in body["series"][-2:]] == [1, 1]
    InsightAccessOverride.objects.create(insight=hidden, user=teammate, access_level="viewer")
    seen = client_for(teammate).get(f"{insights_url}usage/", {"days": 3}).json()
    assert (seen["insights"], seen["views"], seen["viewers"]) == (2, 2 + 5, 2)


def test_usage_statements_do_not_grow_with_insights_users_or_days(
    owner_api, insights_url, make_insight, owner, teammate, stranger, django_assert_num_queries
):
    make_insight()
    owner_api.get(f"{insights_url}usage/")  # the key's first use is recorded once
    few = statements(lambda: owner_api.get(f"{insights_url}usage/", {"days": 1}))
    insights = [make_insight() for _ in range(5)]
    for days in range(30):
        for user in (owner, teammate):
            views_record(project=insights[0].project, user=user, insight_ids=[i.id for i in insights],
                         at=timezone.now() - timedelta(days=days))  # fmt: skip
    views_rollup()
    with django_assert_num_queries(few):
        assert owner_api.get(f"{insights_url}usage/", {"days": 60}).json()["viewers"] == 2


def test_the_usage_routes_answer_under_environments_too(owner_api, project, make_insight):
    insight = make_insight()
    base = f"/api/environments/{project.id}/insights/"

    for path in (f"{insight.id}/views/", f"{insight.id}/viewers/", "usage/"):
        assert owner_api.get(base + path).status_code == 200, path


def test_another_projects_insight_is_a_404_on_the_usage_routes(
    client_for, owner, stranger, project, stranger_project, make_insight
):
    foreign = make_insight(in_project=stranger_project, created_by=stranger)
    base = f"/api/projects/{project.id}/insights/{foreign.id}/"

    for path in ("views/", "viewers/"):
        assert client_for(owner).get(base + path).status_code == 404, path


def test_views_and_usage_export_as_one_csv_row_with_dotted_columns(
    owner_api, insights_url, make_insight, owner
):
    insight = make_insight()
    view(insight, owner, timezone.now())

    views = owner_api.get(f"{insights_url}{insight.id}/views/", {"date_from": "-1d", "format": "csv"})
    usage = owner_api.get(f"{insights_url}usage/", {"days": 1, "format": "csv"})

    for answer in (views, usage):
        assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
        header, row = answer.content.decode().strip().splitlines()
        assert "series.1.view_count" in header.split(",") and row.count(",") == header.count(",")
