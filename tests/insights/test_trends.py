"""The Trends engine (docs/queries.md, docs/queries.md#results): results equal an independent count over known events."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from insights.models import Event
from insights.query_nodes import query_parse
from insights.trends import BREAKDOWN_NULL, BREAKDOWN_OTHER, UnsupportedQuery, trends_run

pytestmark = pytest.mark.django_db

NOW = datetime(2024, 3, 14, 15, 30, tzinfo=UTC)  # a Thursday; the clock is a parameter of the engine
UTC_ZONE = ZoneInfo("UTC")


def trends(project, *, now=NOW, tz=UTC_ZONE, **query):
    node = query_parse({"kind": "TrendsQuery", **query})
    return trends_run(node, project_id=project.id, tz=tz, now=now)


def series(event=None, **fields):
    return {"kind": "EventsNode", "event": event, **fields}


def add(project, when, event="$pageview", user="u1", **properties):
    return Event(project=project, timestamp=when, event=event, distinct_id=user, properties=properties)


@pytest.fixture
def stream(project):
    """600 seeded events over 20 days before NOW, with browsers, users and revenue."""
    rng = random.Random(7)
    rows = []
    for _ in range(600):
        when = NOW - timedelta(seconds=rng.randrange(20 * 24 * 3600))
        name = rng.choice(["$pageview", "$pageview", "purchase", "signup"])
        properties = {"$browser": rng.choice(["Chrome", "Chrome", "Safari", "Firefox", "Edge"])}
        if rng.random() < 0.1:
            properties.pop("$browser")
        if name == "purchase":
            properties["revenue"] = rng.choice([5, 10, 20.5])
        rows.append(add(project, when, name, f"user{rng.randrange(40)}", **properties))
    Event.objects.bulk_create(rows)
    return rows


def daily(rows, *, start_day, days, key=lambda row: 1, distinct=False):
    """The independent count: a plain Python tally per UTC day."""
    buckets = [start_day + timedelta(days=n) for n in range(days)]
    tally = defaultdict(set if distinct else int)
    for row in rows:
        day = row.timestamp.astimezone(UTC).date()
        if distinct:
            tally[day].add(row.distinct_id)
        else:
            tally[day] += key(row)
    return [len(tally[day]) if distinct else tally[day] for day in buckets]


def test_minus_7d_is_eight_daily_points_from_midnight_seven_days_ago(project, stream):
    [result] = trends(project, series=[series("$pageview")], dateRange={"date_from": "-7d"})

    start = NOW.date() - timedelta(days=7)
    in_window = [row for row in stream if row.event == "$pageview" and row.timestamp.date() >= start]
    assert result["days"] == [(start + timedelta(days=n)).isoformat() for n in range(8)]
    assert result["data"] == daily(in_window, start_day=start, days=8)
    assert result["count"] == sum(result["data"]) == len(in_window)
    assert result["labels"][0] == f"{start.day}-{start:%b-%Y}"


def test_dau_counts_distinct_users_per_day(project, stream):
    [result] = trends(project, series=[series("$pageview", math="dau")], dateRange={"date_from": "-14d"})

    start = NOW.date() - timedelta(days=14)
    rows = [row for row in stream if row.event == "$pageview" and row.timestamp.date() >= start]
    assert result["data"] == daily(rows, start_day=start, days=15, distinct=True)


def test_all_events_series_and_several_series_in_query_order(project, stream):
    everything, purchases = trends(
        project, series=[series(None), series("purchase")], dateRange={"date_from": "-3d"}
    )

    start = NOW.date() - timedelta(days=3)
    recent = [row for row in stream if row.timestamp.date() >= start]
    assert everything["data"] == daily(recent, start_day=start, days=4)
    assert purchases["data"] == daily([r for r in recent if r.event == "purchase"], start_day=start, days=4)
    assert (everything["label"], purchases["label"]) == ("All events", "purchase")


def test_an_absolute_range_covers_whole_days_at_both_ends(project):
    Event.objects.bulk_create(
        [
            add(project, datetime(2024, 3, 1, 0, 0, tzinfo=UTC)),
            add(project, datetime(2024, 3, 3, 23, 59, 59, tzinfo=UTC)),
            add(project, datetime(2024, 3, 4, 0, 0, tzinfo=UTC)),  # the day after date_to
            add(project, datetime(2024, 2, 29, 23, 59, tzinfo=UTC)),  # the day before date_from
        ]
    )

    [result] = trends(
        project, series=[series("$pageview")], dateRange={"date_from": "2024-03-01", "date_to": "2024-03-03"}
    )

    assert result["days"] == ["2024-03-01", "2024-03-02", "2024-03-03"]
    assert result["data"] == [1, 0, 1]


def test_hourly_buckets_are_labelled_with_the_hour(project):
    Event.objects.bulk_create(
        [add(project, NOW - timedelta(hours=2)), add(project, NOW - timedelta(minutes=1))]
    )

    [result] = trends(project, series=[series("$pageview")], interval="hour", dateRange={"date_from": "-3h"})

    assert result["days"][-1] == "2024-03-14 15:00:00"
    assert result["data"][-3:] == [1, 0, 1]


def test_weeks_start_on_monday_and_count_only_events_inside_the_range(project):
    monday = datetime(2024, 3, 4, tzinfo=UTC)
    Event.objects.bulk_create(
        [
            add(project, monday - timedelta(days=1)),  # Sunday before date_from: outside
            add(project, monday + timedelta(days=2)),  # Wednesday: inside, first (partial) week
            add(project, monday + timedelta(days=8)),  # next Tuesday
        ]
    )

    [result] = trends(
        project, series=[series("$pageview")], interval="week",
        dateRange={"date_from": "2024-03-06", "date_to": "2024-03-12"},
    )  # fmt: skip

    assert result["days"] == ["2024-03-04", "2024-03-11"]
    assert result["data"] == [1, 1]


def test_months_bucket_by_calendar_month(project):
    Event.objects.bulk_create(
        [add(project, datetime(2024, 1, 31, tzinfo=UTC)), add(project, datetime(2024, 2, 1, tzinfo=UTC)),
         add(project, datetime(2024, 2, 29, tzinfo=UTC))]
    )  # fmt: skip

    [result] = trends(
        project,
        series=[series("$pageview")],
        interval="month",
        dateRange={"date_from": "2024-01-01", "date_to": "2024-02-29"},
    )

    assert (result["days"], result["data"]) == (["2024-01-01", "2024-02-01"], [1, 2])


def test_days_follow_the_projects_time_zone(project):
    new_york = ZoneInfo("America/New_York")
    # 02:00 UTC on the 14th is still the 13th in New York.
    Event.objects.bulk_create([add(project, datetime(2024, 3, 14, 2, 0, tzinfo=UTC))])

    [result] = trends(project, tz=new_york, series=[series("$pageview")], dateRange={"date_from": "-2d"})

    assert dict(zip(result["days"], result["data"], strict=True))["2024-03-13"] == 1


def test_breakdown_keeps_the_top_values_and_groups_the_rest(project, stream):
    results = trends(
        project, series=[series("$pageview")], dateRange={"date_from": "-30d"},
        breakdownFilter={"breakdown": "$browser", "breakdown_limit": 2},
    )  # fmt: skip

    pageviews = [row for row in stream if row.event == "$pageview"]
    browsers = Counter(row.properties.get("$browser") for row in pageviews)
    top = [name for name, _ in Counter({k: v for k, v in browsers.items() if k}).most_common(2)]
    by_value = {result["breakdown_value"]: result["count"] for result in results}
    assert {value: by_value[value] for value in top} == {value: browsers[value] for value in top}
    assert by_value[BREAKDOWN_OTHER] == sum(
        count for name, count in browsers.items() if name and name not in top
    )
    assert by_value[BREAKDOWN_NULL] == browsers[None]
    assert sum(by_value.values()) == len(pageviews)
    assert results[0]["label"] == f"$pageview - {top[0]}"


def test_property_filters(project, stream):
    def count(*filters):
        [result] = trends(
            project, series=[series("purchase")], dateRange={"date_from": "-30d"}, properties=list(filters)
        )
        return result["count"]

    purchases = [row for row in stream if row.event == "purchase"]
    browser = lambda row: row.properties.get("$browser")  # noqa: E731
    assert count({"key": "$browser", "value": "Chrome"}) == sum(browser(r) == "Chrome" for r in purchases)
    assert count({"key": "$browser", "value": ["Safari", "Edge"]}) == sum(
        browser(r) in ("Safari", "Edge") for r in purchases
    )
    assert count({"key": "$browser", "value": "Chrome", "operator": "is_not"}) == sum(
        browser(r) != "Chrome" for r in purchases
    )
    assert count({"key": "$browser", "value": "fire", "operator": "icontains"}) == sum(
        browser(r) == "Firefox" for r in purchases
    )
    assert count({"key": "$browser", "operator": "is_set"}) == sum(browser(r) is not None for r in purchases)
    assert count({"key": "$browser", "operator": "is_not_set"}) == sum(browser(r) is None for r in purchases)
    assert count({"key": "revenue", "value": 9, "operator": "gt"}) == sum(
        r.properties["revenue"] > 9 for r in purchases
    )
    assert count({"key": "$browser", "value": "^(Ch|Sa)", "operator": "regex"}) == sum(
        (browser(r) or "").startswith(("Ch", "Sa")) for r in purchases
    )


def test_a_property_filter_value_with_like_wildcards_is_matched_literally(project):
    Event.objects.bulk_create([add(project, NOW, path="/a_b"), add(project, NOW, path="/axb")])

    [result] = trends(
        project,
        series=[series("$pageview")],
        properties=[{"key": "path", "value": "a_b", "operator": "icontains"}],
    )

    assert result["count"] == 1


def test_property_math_sums_numbers_and_ignores_other_values(project):
    Event.objects.bulk_create(
        [add(project, NOW, "purchase", revenue=10), add(project, NOW, "purchase", revenue=2.5),
         add(project, NOW, "purchase", revenue="lots"), add(project, NOW, "purchase")]
    )  # fmt: skip

    [total] = trends(
        project,
        series=[series("purchase", math="sum", math_property="revenue")],
        dateRange={"date_from": "dStart"},
    )
    [average] = trends(
        project,
        series=[series("purchase", math="avg", math_property="revenue")],
        dateRange={"date_from": "dStart"},
    )

    assert total["data"] == [12.5]
    assert average["data"] == [6.25]


def test_other_projects_events_never_count(project, stranger_project):
    Event.objects.bulk_create([add(project, NOW), add(stranger_project, NOW), add(stranger_project, NOW)])

    [result] = trends(project, series=[series("$pageview")], dateRange={"date_from": "dStart"})

    assert result["count"] == 1


def test_empty_intervals_are_zeros(project):
    [result] = trends(project, series=[series("nothing")], dateRange={"date_from": "-2d"})

    assert result["data"] == [0, 0, 0] and result["count"] == 0


def test_all_time_starts_at_the_projects_first_event(project):
    Event.objects.bulk_create([add(project, NOW - timedelta(days=3), "other"), add(project, NOW)])

    [result] = trends(project, series=[series("$pageview")], dateRange={"date_from": "all"})

    assert len(result["days"]) == 4 and result["data"] == [0, 0, 0, 1]


def test_one_query_node_is_one_sql_statement(project, stream):
    with CaptureQueriesContext(connection) as context:
        trends(project, series=[series("$pageview", math="dau"), series("purchase")],
               breakdownFilter={"breakdown": "$browser"}, properties=[{"key": "$browser", "operator": "is_set"}])  # fmt: skip

    assert len(context.captured_queries) == 1


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"series": [{"kind": "ActionsNode", "id": 1}]}, "unsupported_series"),
        ({"series": [series("a", math="weekly_active")]}, "unsupported_math"),
        (
            {"series": [series("a")], "properties": [{"key": "email", "value": "x", "type": "person"}]},
            "unsupported_property",
        ),
        (
            {"series": [series("a")], "breakdownFilter": {"breakdown": "email", "breakdown_type": "person"}},
            "unsupported_breakdown",
        ),
        (
            {"series": [series("a")], "interval": "minute", "dateRange": {"date_from": "-30d"}},
            "too_many_intervals",
        ),
        (
            {"series": [series("a")], "dateRange": {"date_from": "2024-03-10", "date_to": "2024-03-01"}},
            "invalid_date_range",
        ),
    ],
)
def test_what_the_engine_cannot_run_is_refused_with_a_code(project, query, code):
    with pytest.raises(UnsupportedQuery) as refused:
        trends(project, **query)

    assert refused.value.code == code


def test_a_breakdown_of_distinct_users_counts_each_user_once_per_folded_value(project):
    # u1 uses Chrome and Safari, both folded into "other" by a limit of 1 behind Firefox: counted once.
    Event.objects.bulk_create(
        [add(project, NOW, user="u1", **{"$browser": "Chrome"}), add(project, NOW, user="u1", **{"$browser": "Safari"}),
         *[add(project, NOW, user=f"f{n}", **{"$browser": "Firefox"}) for n in range(3)]]
    )  # fmt: skip

    results = trends(
        project, series=[series("$pageview", math="dau")], dateRange={"date_from": "dStart"},
        breakdownFilter={"breakdown": "$browser", "breakdown_limit": 1},
    )  # fmt: skip

    assert {result["breakdown_value"]: result["count"] for result in results} == {
        "Firefox": 3,
        BREAKDOWN_OTHER: 1,
    }
