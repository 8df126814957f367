"""One date grammar for every route (insights/dates.py; SPEC §4): PostHog's, calendar months included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from insights.dates import date_resolve
from insights.models import Insight
from insights.query_nodes import query_parse
from insights.trends import trends_window

NOW = datetime(2024, 5, 31, 15, 30, tzinfo=UTC)  # a Friday, the last day of a 31-day month
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("value", "means"),
    [
        ("-3m", datetime(2024, 2, 29)),  # three calendar months back, clamped to February's end
        ("-1m", datetime(2024, 4, 30)),
        ("-1q", datetime(2024, 2, 29)),
        ("-1y", datetime(2023, 5, 31)),
        ("-2w", datetime(2024, 5, 17)),
        ("-7d", datetime(2024, 5, 24)),
        ("wStart", datetime(2024, 5, 27)),  # Monday
        ("mStart", datetime(2024, 5, 1)),
        ("qStart", datetime(2024, 4, 1)),
        ("yStart", datetime(2024, 1, 1)),
        ("2024-03-10", datetime(2024, 3, 10)),
    ],
)
def test_relative_and_absolute_dates_start_a_day_in_the_projects_time_zone(value, means):
    assert date_resolve(value, now=NOW, tz=BERLIN) == means.replace(tzinfo=BERLIN)


def test_hours_count_back_from_now_and_a_datetime_keeps_its_own_offset():
    assert date_resolve("-6h", now=NOW, tz=BERLIN) == NOW - timedelta(hours=6)
    assert date_resolve("2024-03-10T08:00:00+05:00", now=NOW, tz=BERLIN) == datetime(
        2024, 3, 10, 3, tzinfo=UTC
    )


def test_a_bare_date_as_an_end_bound_means_the_end_of_that_day():
    end = date_resolve("2024-03-10", now=NOW, tz=BERLIN, end_of_day=True)

    assert (end.date(), end.hour, end.minute) == (datetime(2024, 3, 10).date(), 23, 59)


@pytest.mark.parametrize("value", ["yesterday-ish", "2024-02-30", "-3x", "-99999d", "-9999y", ""])
def test_anything_else_is_refused_with_a_reason(value):
    with pytest.raises(ValueError, match=r"date|year 1"):
        date_resolve(value, now=NOW, tz=BERLIN)


@pytest.mark.django_db
def test_minus_three_months_means_three_calendar_months_on_the_list_as_in_trends(
    owner_api, insights_url, make_insight, project
):
    now = timezone.now()
    today = now.date()
    year, month = divmod(today.year * 12 + today.month - 1 - 3, 12)
    boundary_day = today.replace(year=year, month=month + 1, day=min(today.day, 28))  # well inside any month
    just_in, just_out = make_insight(name="in"), make_insight(name="out")
    start = date_resolve("-3m", now=now, tz=ZoneInfo(project.timezone))
    Insight.objects.filter(id=just_in.id).update(last_modified_at=start + timedelta(hours=1))
    Insight.objects.filter(id=just_out.id).update(last_modified_at=start - timedelta(hours=1))
    listed = [row["id"] for row in owner_api.get(insights_url, {"date_from": "-3m"}).json()["results"]]
    trends_start = trends_window(
        query_parse({"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "x"}],
                     "dateRange": {"date_from": "-3m"}}),
        tz=ZoneInfo(project.timezone), now=now, first_event=None,
    ).start  # fmt: skip

    assert listed == [just_in.id]
    assert trends_start == start
    if today.day <= 28:  # a day every month has: three calendar months back, to the day
        assert start.date() == boundary_day
