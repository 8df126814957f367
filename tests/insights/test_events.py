"""Bulk loading of events (docs/operations.md): `load_events`, `generate_events` and the COPY path under them."""

from __future__ import annotations

import io
import json
import sys
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from insights.event_streams import EVENT_SHARES, EventRow, events_copy, events_from_jsonl, events_generate
from insights.models import Event

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 14, 15, 9, 26, tzinfo=UTC)


def jsonl(*events: dict) -> str:
    return "".join(json.dumps(event) + "\n" for event in events)


def a_line(**fields: object) -> dict:
    return {
        "event": "$pageview",
        "distinct_id": "user-1",
        "timestamp": "2026-03-01T12:00:00Z",
        "properties": {"$browser": "Firefox"},
        **fields,
    }


def load(project, path: Path | str) -> str:
    out = io.StringIO()
    call_command("load_events", "--project", str(project.id), str(path), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def generate(project, *args: str) -> str:
    out = io.StringIO()
    call_command("generate_events", "--project", str(project.id), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def stored(project) -> list[tuple]:
    return list(
        Event.objects.filter(project=project)
        .order_by("id")
        .values_list("timestamp", "event", "distinct_id", "properties")
    )


def content(project) -> Counter:
    """Each event as a hashable value, timestamps left out (they move with the clock)."""
    return Counter(
        (event, distinct_id, json.dumps(properties, sort_keys=True))
        for _, event, distinct_id, properties in stored(project)
    )


# --- load_events ----------------------------------------------------------------------------------


def test_loading_a_file_stores_exactly_its_events_with_their_values(project, tmp_path):
    properties = {
        "$current_url": "https://example.com/café?q=日本語",
        "nested": {"list": [1, 2.5, None, True, {"deep": "✓"}], "empty": {}},
        'quote"and\\backslash\ttab': "line\nbreak",
        "emoji": "🦔",
    }
    path = tmp_path / "events.jsonl"
    path.write_text(
        jsonl(
            a_line(
                event="$pageview",
                distinct_id="user-1",
                timestamp="2026-03-01T12:00:00Z",
                properties=properties,
            ),
            a_line(event="purchase", distinct_id=42, timestamp="2026-03-01T14:30:00.123456+02:00"),
            {"event": "user_signed_up", "distinct_id": "ünïcode", "timestamp": "2026-03-02T00:00:00+00:00"},
        ),
        encoding="utf-8",
    )

    summary = load(project, path)

    assert stored(project) == [
        (datetime(2026, 3, 1, 12, tzinfo=UTC), "$pageview", "user-1", properties),
        (datetime(2026, 3, 1, 12, 30, 0, 123456, tzinfo=UTC), "purchase", "42", {"$browser": "Firefox"}),
        (datetime(2026, 3, 2, tzinfo=UTC), "user_signed_up", "ünïcode", {}),
    ]
    assert summary.startswith(f"Loaded 3 events into project {project.id} in ")
    assert summary.rstrip().endswith("events/s)")


def test_loading_writes_only_to_the_given_project(project, stranger_project, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(a_line(), a_line()))

    load(stranger_project, path)

    assert Event.objects.filter(project=stranger_project).count() == 2
    assert not Event.objects.filter(project=project).exists()


def test_blank_lines_are_skipped_but_still_counted_in_line_numbers(project, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text("\n" + jsonl(a_line()) + "   \n\r\n" + jsonl(a_line(distinct_id="user-2")) + "\n")

    load(project, path)
    assert [distinct_id for _, _, distinct_id, _ in stored(project)] == ["user-1", "user-2"]

    path.write_text("\n\n" + jsonl(a_line()) + "\n" + "not json\n")
    with pytest.raises(CommandError, match="line 5: "):
        load(project, path)


BAD_LINES = {
    "not JSON": ('{"event": "$pageview",', "not valid JSON"),
    "not an object": ('["$pageview", "user-1"]', "not a JSON object"),
    "NaN": (json.dumps(a_line(properties={"n": float("nan")})), "NaN is not a JSON number"),
    "a number too large": ('{"event": "x", "distinct_id": "u", "timestamp": "2026-03-01T12:00:00Z", "properties": {"n": 1e400}}', "out of range"),
    "missing event": (json.dumps({k: v for k, v in a_line().items() if k != "event"}), "'event' is missing"),
    "empty event": (json.dumps(a_line(event="  ")), "'event' is empty"),
    "non-string event": (json.dumps(a_line(event=7)), "'event' must be a string, got a number"),
    "event too long": (json.dumps(a_line(event="e" * 401)), "'event' is longer than 400 characters"),
    "missing distinct_id": (json.dumps({k: v for k, v in a_line().items() if k != "distinct_id"}), "'distinct_id' is missing"),
    "empty distinct_id": (json.dumps(a_line(distinct_id="")), "'distinct_id' is empty"),
    "boolean distinct_id": (json.dumps(a_line(distinct_id=True)), "'distinct_id' must be a string, got a boolean"),
    "distinct_id too long": (json.dumps(a_line(distinct_id="u" * 401)), "'distinct_id' is longer than 400"),
    "missing timestamp": (json.dumps({k: v for k, v in a_line().items() if k != "timestamp"}), "'timestamp' is missing"),
    "unparseable timestamp": (json.dumps(a_line(timestamp="yesterday")), "is not an ISO 8601 date-time"),
    "numeric timestamp": (json.dumps(a_line(timestamp=1767225600)), "'timestamp' must be an ISO 8601 string"),
    "naive timestamp": (json.dumps(a_line(timestamp="2026-03-01T12:00:00")), "has no UTC offset"),
    "date-only timestamp": (json.dumps(a_line(timestamp="2026-03-01")), "has no UTC offset"),
    "properties not an object": (json.dumps(a_line(properties=["a"])), "'properties' must be an object, got an array"),
    "null properties": (json.dumps(a_line(properties=None)), "'properties' must be an object, got null"),
    "NUL in event": (json.dumps(a_line(event="page\x00view")), "'event' contains a NUL character"),
    "NUL in a nested value": (json.dumps(a_line(properties={"a": {"b": ["ok", "x\x00"]}})), "'properties.a.b[1]' contains a NUL"),
    "NUL in a key": (json.dumps(a_line(properties={"k\x00": 1})), "a key in 'properties' contains a NUL"),
    "lone surrogate": ('{"event": "x", "distinct_id": "u\\ud800", "timestamp": "2026-03-01T12:00:00Z"}', "'distinct_id' is not valid Unicode"),
}  # fmt: skip


@pytest.mark.parametrize(("line", "reason"), BAD_LINES.values(), ids=BAD_LINES.keys())
def test_a_bad_line_is_refused_with_its_number_and_nothing_is_loaded(project, tmp_path, line, reason):
    Event.objects.create(project=project, timestamp=NOW, event="earlier", distinct_id="u")
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(a_line(), a_line()) + line + "\n" + jsonl(a_line()))

    with pytest.raises(CommandError) as refused:
        load(project, path)

    assert "line 3: " in str(refused.value) and reason in str(refused.value)
    assert "Nothing was loaded" in str(refused.value)
    assert [event for _, event, _, _ in stored(project)] == ["earlier"]


def test_bytes_that_are_not_utf8_are_refused_with_the_line_number(project, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_bytes(
        jsonl(a_line()).encode()
        + b'{"event": "caf\xe9", "distinct_id": "u", "timestamp": "2026-03-01T12:00:00Z"}\n'
    )

    with pytest.raises(CommandError, match=r"line 2: 'event' is not valid Unicode"):
        load(project, path)
    assert not Event.objects.exists()


def test_events_can_be_loaded_from_standard_input(project, monkeypatch):
    monkeypatch.setattr(
        sys, "stdin", io.TextIOWrapper(io.BytesIO(jsonl(a_line(), a_line(event="Ünï")).encode()))
    )

    summary = load(project, "-")

    assert [event for _, event, _, _ in stored(project)] == ["$pageview", "Ünï"]
    assert summary.startswith(f"Loaded 2 events into project {project.id}")


def test_an_unreadable_file_is_a_command_error(project, tmp_path):
    with pytest.raises(CommandError, match=r"Cannot read .*missing\.jsonl: No such file or directory"):
        load(project, tmp_path / "missing.jsonl")


@pytest.mark.parametrize("command", ["load_events", "generate_events"])
def test_an_unknown_project_is_a_command_error(command, tmp_path):
    path = tmp_path / "events.jsonl"
    path.write_text(jsonl(a_line()))
    args = [str(path)] if command == "load_events" else ["--events", "10"]

    with pytest.raises(CommandError, match="Project 987654 does not exist"):
        call_command(command, "--project", "987654", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not Event.objects.exists()


# --- generate_events ------------------------------------------------------------------------------


def test_generate_events_creates_exactly_n_events_within_the_last_d_days(project):
    before = timezone.now()
    summary = generate(project, "--events", "5000", "--days", "3")
    after = timezone.now()

    timestamps = [timestamp for timestamp, _, _, _ in stored(project)]
    assert len(timestamps) == 5000
    assert all(before - timedelta(days=3) <= timestamp < after for timestamp in timestamps)
    assert summary.startswith(f"Loaded 5000 events into project {project.id} in ")


def test_generated_events_look_like_real_traffic(project):
    generate(project, "--events", "20000")
    events = stored(project)

    names = Counter(event for _, event, _, _ in events)
    assert set(names) == set(EVENT_SHARES)
    assert names.most_common(1)[0][0] == "$pageview"
    for _, event, _, properties in events:
        assert {"$browser", "$os", "$current_url", "$geoip_country_code"} <= properties.keys()
        assert isinstance(properties.get("revenue"), float) == (event == "purchase")
    browsers = Counter(properties["$browser"] for _, _, _, properties in events)
    assert browsers.most_common(1)[0][0] == "Chrome" and len(browsers) >= 5
    # A long-tailed population of max(10, N/20) users: the busiest user is far above the median.
    per_user = sorted(Counter(distinct_id for _, _, distinct_id, _ in events).values())
    assert 900 <= len(per_user) <= 1000
    assert per_user[-1] > 20 * per_user[len(per_user) // 2]
    # Daytime in UTC is busier than the night.
    hours = Counter(timestamp.hour for timestamp, _, _, _ in events)
    assert hours[14] > 2 * hours[3]


def test_the_same_seed_generates_the_same_events_and_another_seed_does_not(project, stranger_project):
    def events(seed: int) -> list[EventRow]:
        return list(events_generate(count=2000, days=7, seed=seed, now=NOW))

    assert events(1) == events(1)
    assert Counter(map(repr, events(1))) != Counter(map(repr, events(2)))
    # Through the command, only the clock moves the events: everything else repeats.
    generate(project, "--events", "2000", "--seed", "1")
    generate(stranger_project, "--events", "2000", "--seed", "1")
    assert content(project) == content(stranger_project)
    Event.objects.filter(project=stranger_project).delete()
    generate(stranger_project, "--events", "2000", "--seed", "2")
    assert content(project) != content(stranger_project)


def test_generated_timestamps_stay_inside_the_window_and_in_time_order():
    rows = list(events_generate(count=3000, days=1, seed=0, now=NOW))

    assert all(NOW - timedelta(days=1) <= row.timestamp < NOW for row in rows)
    assert [row.timestamp for row in rows] == sorted(row.timestamp for row in rows)


@pytest.mark.parametrize(
    ("args", "message"), [(["--events", "0"], "--events"), (["--events", "5", "--days", "0"], "--days")]
)
def test_generate_events_refuses_fewer_than_one_event_or_day(project, args, message):
    with pytest.raises(CommandError, match=f"{message} must be at least 1"):
        generate(project, *args)
    assert not Event.objects.exists()


# --- The COPY path --------------------------------------------------------------------------------


def pageviews(count: int) -> Iterator[EventRow]:
    """Rows that each own fresh objects, as parsed input would: holding them all would take ~100 MB."""
    for index in range(count):
        yield EventRow(
            NOW - timedelta(seconds=index),
            "$pageview",
            f"user-{index}",
            {"$current_url": f"https://example.com/page/{index}", "index": index},
        )


def peak_traced_bytes(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def drain(rows: Iterable[EventRow]) -> None:
    for _ in rows:
        pass


# Streaming peaks are well under 1 MB; holding the rows of each test below would take 13-50 MB.
# (tracemalloc makes every allocation slow, hence the modest row counts.)
STREAMING_PEAK = 2_000_000


def test_events_copy_streams_rows_in_bounded_memory(project):
    events_copy(project_id=project.id, rows=pageviews(10))  # first use imports and caches adapters

    peak = peak_traced_bytes(lambda: events_copy(project_id=project.id, rows=pageviews(100_000)))

    assert Event.objects.filter(project=project).count() == 100_010
    assert peak < STREAMING_PEAK


def test_parsing_json_lines_streams_in_bounded_memory():
    lines = (
        json.dumps({**row._asdict(), "timestamp": row.timestamp.isoformat()}) for row in pageviews(30_000)
    )
    drain(events_from_jsonl([json.dumps(a_line())]))  # first use caches what it can

    assert peak_traced_bytes(lambda: drain(events_from_jsonl(lines))) < STREAMING_PEAK


def test_generating_events_streams_in_bounded_memory():
    drain(events_generate(count=10, days=1, seed=0, now=NOW))  # likewise

    # The generator's only growing state is its cache of at most 1024 users' traits.
    assert (
        peak_traced_bytes(lambda: drain(events_generate(count=30_000, days=30, seed=0, now=NOW)))
        < STREAMING_PEAK
    )


def test_events_copy_gives_the_caller_back_its_statement_timeout(project):
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '12s'")
        events_copy(project_id=project.id, rows=pageviews(3))
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("12s",)


def test_events_copy_refuses_a_naive_timestamp_and_writes_nothing(project):
    rows = [*pageviews(2), EventRow(datetime(2026, 3, 1), "$pageview", "u", {})]

    with pytest.raises(ValueError, match="must be aware"):
        events_copy(project_id=project.id, rows=rows)
    assert not Event.objects.exists()
