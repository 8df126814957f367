"""One Trends engine, two stores (docs/events-store.md): every query shape the engine runs gives the
same results, value by value, on PostgreSQL and on ClickHouse (the real engine, embedded chDB),
over one generated dataset written to both."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from accounts.models import Organization, Project
from insights.event_streams import EventRow, events_copy, events_generate
from insights.events_store import clickhouse
from insights.models import Event
from insights.query_nodes import query_parse
from insights.trends import UnsupportedQuery, trends_run

pytestmark = pytest.mark.django_db

# A Sunday a week after New York's autumn clock change, so 30 days of hours hold its repeated hour.
NOW = datetime(2024, 11, 10, 15, 30, tzinfo=UTC)
ZONES = ("UTC", "America/New_York", "Asia/Kolkata")


def edge_events() -> list[EventRow]:
    """Values that test how each store reads properties: numbers of every kind, booleans, nulls,
    empty and unicode strings, LIKE wildcards, numbers written as strings, absent keys."""
    values: list[Any] = [10, 20.0, -3.5, 0.00001, 1e16, 12345678.25, True, False, None, "", "café ☕",
                         "a_b%c", "10", "Chrome", 7, 20.0, 2.5]  # fmt: skip
    rows = []
    for index, value in enumerate(values):
        when = NOW - timedelta(hours=3 * index + 1)
        properties = {"value": value, "$session_id": f"s{index % 4}", "$browser": "Chrome"}
        if not isinstance(value, float) or abs(value) < 1e9:  # doubles near 2^53 interpolate apart
            properties["revenue"] = value
        if index % 3 == 0:
            properties.pop("$browser")
        rows.append(EventRow(when, "edge", f"edge-user-{index % 5}", properties))
    return rows


@pytest.fixture(scope="module")
def both_stores(django_db_setup, django_db_blocker, clickhouse_server) -> Iterator[Project]:
    """A project whose events (a generated stream and the edge cases) are in PostgreSQL, committed,
    and in ClickHouse."""
    rows = [*events_generate(count=6000, days=100, seed=11, now=NOW), *edge_events()]
    with django_db_blocker.unblock():
        organization = Organization.objects.create(name="Both stores")
        project = Project.objects.create(organization=organization, name="Both stores")
        events_copy(project_id=project.id, rows=rows)
        with pytest.MonkeyPatch.context() as patch:
            patch_store(patch, clickhouse_server)
            clickhouse.schema_migrate()
            clickhouse.events_write(project_id=project.id, rows=rows)
        try:
            yield project
        finally:
            Event.objects.filter(project=project).delete()
            organization.delete()


def patch_store(patch: pytest.MonkeyPatch, url: str) -> None:
    from django.conf import settings

    patch.setattr(settings, "CLICKHOUSE_URL", url)
    patch.setattr(settings, "CLICKHOUSE_DATABASE", "test_both_stores")


def series(event: str | None = "$pageview", **fields: Any) -> dict[str, Any]:
    return {"kind": "EventsNode", "event": event, **fields}


def shapes() -> Iterator[tuple[str, dict[str, Any], str]]:
    """(name, query, time zone) for every supported shape."""
    for math in ("total", "dau", "unique_session"):  # only the edge events have sessions
        yield f"math {math}", {"series": [series(None, math=math)], "dateRange": {"date_from": "-30d"}}, "UTC"
    for math in ("sum", "avg", "min", "max", "median", "p75", "p90", "p95", "p99"):
        for event in ("purchase", "edge"):
            query = {
                "series": [series(event, math=math, math_property="revenue")],
                "dateRange": {"date_from": "-60d"},
            }
            yield f"math {math} of {event}", query, "UTC"
    ranges = {"minute": "-3h", "hour": "-30d", "day": "-90d", "week": "-12w", "month": "-1y"}
    for zone in ZONES:
        for interval, date_from in ranges.items():
            query = {
                "series": [series(math="dau"), series(None)],
                "interval": interval,
                "dateRange": {"date_from": date_from},
            }
            yield f"{interval} in {zone}", query, zone
    for date_range in ({"date_from": "-7d"}, {"date_from": "-24h"}, {"date_from": "dStart"}, {"date_from": "wStart"},
                       {"date_from": "mStart"}, {"date_from": "-1m"}, {"date_from": "-1q"}, {"date_from": "all"},
                       {"date_from": "2024-10-01", "date_to": "2024-10-31"},
                       {"date_from": "2024-10-27T06:15:00Z", "date_to": "2024-11-03T06:30:00Z"}):  # fmt: skip
        for zone in ("UTC", "America/New_York"):
            query = {"series": [series()], "dateRange": date_range, "interval": "day"}
            yield f"range {date_range} in {zone}", query, zone
    breakdowns = [
        ({"breakdown": "$browser"}, "total"), ({"breakdown": "$browser", "breakdown_limit": 2}, "total"),
        ({"breakdown": "$os", "breakdown_limit": 3}, "dau"), ({"breakdown": "$browser"}, "avg"),
        ({"breakdowns": [{"property": "$geoip_country_code"}], "breakdown_limit": 5}, "sum"),
        ({"breakdown": "value"}, "total"), ({"breakdown": "value", "breakdown_limit": 4}, "dau"),
        ({"breakdown": ["$current_url"]}, "p90"), ({"breakdown": "absent"}, "total"),
    ]  # fmt: skip
    for breakdown, math in breakdowns:
        event = (
            None
            if breakdown.get("breakdown") == "value"
            else "purchase"
            if math in ("avg", "sum", "p90")
            else "$pageview"
        )
        query = {"series": [series(event, math=math, math_property="revenue")],
                 "breakdownFilter": breakdown, "dateRange": {"date_from": "-60d"}}  # fmt: skip
        for zone in ("UTC", "Asia/Kolkata"):
            yield f"breakdown {breakdown} {math} in {zone}", query, zone
    filters: list[Any] = [
        {"key": "$browser", "value": "Chrome"}, {"key": "$browser", "value": ["Safari", "Edge"]},
        {"key": "$browser", "value": ["Safari", "Edge"], "operator": "not_in"},
        {"key": "$browser", "value": "Chrome", "operator": "is_not"},
        {"key": "$browser", "value": "fire", "operator": "icontains"},
        {"key": "$browser", "value": "fire", "operator": "not_icontains"},
        {"key": "$current_url", "value": "^https://shop.example.com/(blog|docs)", "operator": "regex"},
        {"key": "$current_url", "value": "/products/", "operator": "not_regex"},
        {"key": "revenue", "value": 30, "operator": "gt"}, {"key": "revenue", "value": 30, "operator": "lte"},
        {"key": "value", "value": "10", "operator": "gte"}, {"key": "value", "value": -3, "operator": "lt"},
        {"key": "$browser", "operator": "is_set"}, {"key": "$browser", "operator": "is_not_set"},
        {"key": "value", "operator": "is_set"}, {"key": "value", "value": True},
        {"key": "value", "value": ["20.0", "10", "1e-05", "0.00001", "10000000000000000"]},
        {"key": "value", "value": "a_b%c", "operator": "icontains"}, {"key": "value", "value": "CAFÉ", "operator": "icontains"},
        {"key": "value", "value": "", "operator": "exact"},
        {"type": "OR", "values": [{"key": "$browser", "value": "Safari"},
                                  {"type": "AND", "values": [{"key": "$os", "value": "Windows"},
                                                             {"key": "revenue", "value": 50, "operator": "gt"}]}]},
    ]  # fmt: skip
    for item in filters:
        properties = item if "values" in item else [item]
        query = {"series": [series(None, math="dau"), series("purchase", properties=[{"key": "$os", "value": "iOS", "operator": "is_not"}])],
                 "properties": properties, "dateRange": {"date_from": "-90d"}}  # fmt: skip
        yield f"filter {item}", query, "UTC"


SHAPES = list(shapes())


@pytest.mark.parametrize(
    ("query", "zone"), [(q, z) for _, q, z in SHAPES], ids=[name for name, _, _ in SHAPES]
)
def test_both_stores_give_the_same_results(both_stores, clickhouse_server, monkeypatch, query, zone):
    node = query_parse({"kind": "TrendsQuery", **query})
    tz = ZoneInfo(zone)

    in_postgres = trends_run(node, project_id=both_stores.id, tz=tz, now=NOW)
    patch_store(monkeypatch, clickhouse_server)
    in_clickhouse = clickhouse.trends_run(node, project_id=both_stores.id, tz=tz, now=NOW)

    assert in_clickhouse == in_postgres
    assert any(result["count"] for result in in_postgres)  # the shape selects something


def test_what_postgresql_refuses_clickhouse_refuses_with_the_same_code(
    both_stores, clickhouse_server, monkeypatch
):
    patch_store(monkeypatch, clickhouse_server)
    node = query_parse({"kind": "TrendsQuery", "series": [series(math="weekly_active")]})

    with pytest.raises(UnsupportedQuery) as refused:
        clickhouse.trends_run(node, project_id=both_stores.id, tz=ZoneInfo("UTC"), now=NOW)

    assert refused.value.code == "unsupported_math"


def test_a_regex_clickhouse_cannot_compile_is_a_400_code_not_a_server_error(
    both_stores, clickhouse_server, monkeypatch
):
    patch_store(monkeypatch, clickhouse_server)
    node = query_parse({"kind": "TrendsQuery", "series": [series()],
                        "properties": [{"key": "$browser", "value": "(?<=a)b", "operator": "regex"}]})  # fmt: skip

    with pytest.raises(UnsupportedQuery) as refused:
        clickhouse.trends_run(node, project_id=both_stores.id, tz=ZoneInfo("UTC"), now=NOW)

    assert refused.value.code == "invalid_property_filter" and refused.value.status == 400


def test_a_breakdown_by_a_property_kept_in_its_own_column_parses_no_json():
    from insights.events_store.schema import MATERIALIZED_PROPERTIES
    from insights.trends import ClickHouseDialect, trends_compile, trends_window

    node = query_parse(
        {"kind": "TrendsQuery", "series": [series()], "breakdownFilter": {"breakdown": "$browser"}}
    )
    window = trends_window(node, tz=ZoneInfo("UTC"), now=NOW, first_event=None)
    on_column = trends_compile(
        node, project_id=1, window=window, dialect=ClickHouseDialect("t", MATERIALIZED_PROPERTIES)
    )
    on_json = trends_compile(node, project_id=1, window=window, dialect=ClickHouseDialect("t"))

    assert "e.mat_browser" in on_column and "JSONExtract" not in on_column
    assert "e.mat_browser" not in on_json and "JSONExtract" in on_json
