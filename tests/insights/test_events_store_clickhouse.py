"""Everything around a query on ClickHouse (docs/events-store.md): the query route's answers,
cancellation by run id, the query timeout, a store that is down, the schema command, and loading
events. The store is the real engine (embedded chDB) reached through clickhouse-connect over
ClickHouse's HTTP interface, as a query worker reaches a server."""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from insights import events_store
from insights.event_streams import EventRow
from insights.events_store import clickhouse as clickhouse_store
from insights.models import Event
from insights.query_nodes import query_parse
from tests.live import free_port, wait_until

pytestmark = pytest.mark.django_db

TRENDS = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
    "dateRange": {"date_from": "-2d"},
    "breakdownFilter": {"breakdown": "$browser"},
}


def rows_at(now: datetime, *specs: tuple[str, str]) -> list[EventRow]:
    return [
        EventRow(now - timedelta(minutes=n), "$pageview", user, {"$browser": browser})
        for n, (user, browser) in enumerate(specs)
    ]


def clickhouse_events(project) -> list[tuple[Any, ...]]:
    return clickhouse_store._query(
        f"SELECT timestamp, event, distinct_id, properties FROM {clickhouse_store.events_table()} "
        "WHERE project_id = {project:Int64} ORDER BY timestamp, distinct_id",
        {"project": project.id},
        {},
    )


def running(log_comment: str) -> int:
    """Queries of this run id that ClickHouse lists as running right now."""
    [(count,)] = clickhouse_store._query(
        "SELECT count() FROM system.processes WHERE Settings['log_comment'] = {id:String}",
        {"id": log_comment},
        {},
    )
    return int(count)


def compute_in_thread(project, run_id: str) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def compute() -> None:
        try:
            outcome["results"] = events_store.trends_compute(
                project=project, source=query_parse(TRENDS), now=timezone.now(), run_id=run_id
            )
        except Exception as error:
            outcome["error"] = error
        outcome["ended"] = time.monotonic()

    thread = threading.Thread(target=compute)
    thread.start()
    return thread, outcome


# --- The query route on ClickHouse ------------------------------------------------------------------


def test_the_query_route_answers_from_clickhouse_what_postgresql_would(clickhouse, owner_api, project):
    rows = rows_at(timezone.now(), ("u1", "Chrome"), ("u1", "Chrome"), ("u2", "Safari"), ("u3", "Chrome"))
    events_store.events_write(project_id=project.id, rows=rows)

    response = owner_api.post(f"/api/projects/{project.id}/query/", {"query": TRENDS}, format="json")

    assert response.status_code == 200
    counts = {result["breakdown_value"]: result["count"] for result in response.json()["results"]}
    assert counts == {"Chrome": 2, "Safari": 1}
    assert not Event.objects.filter(project=project).exists()  # nothing went to PostgreSQL


def test_a_clickhouse_that_is_down_answers_503_with_retry_after(clickhouse, settings, owner_api, project):
    settings.CLICKHOUSE_URL = f"http://127.0.0.1:{free_port()}"  # nothing listens there

    response = owner_api.post(f"/api/projects/{project.id}/query/", {"query": TRENDS}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "events_store_unavailable"
    assert int(response["Retry-After"]) >= 1


def test_a_missing_events_table_is_a_503_that_names_the_command(clickhouse, settings, owner_api, project):
    settings.CLICKHOUSE_DATABASE = "never_migrated"

    response = owner_api.post(f"/api/projects/{project.id}/query/", {"query": TRENDS}, format="json")

    assert response.status_code == 503
    assert "events_store_migrate" in response.json()["detail"]


# --- Cancellation and the timeout -------------------------------------------------------------------


def test_query_stop_kills_the_running_query_of_that_run_within_a_second(slow_store):
    thread, outcome = compute_in_thread(slow_store, "run-to-stop")
    wait_until(lambda: running("run-to-stop") == 1, what="the query running in ClickHouse")

    stopped_at = time.monotonic()
    stopped = events_store.query_stop("run-to-stop")
    thread.join(10)

    assert stopped is True
    assert isinstance(outcome["error"], events_store.QueryCancelled)
    assert outcome["ended"] - stopped_at < 1
    wait_until(lambda: running("run-to-stop") == 0, timeout=2, what="the query gone from system.processes")


def test_query_stop_touches_only_its_own_run(slow_store):
    thread, outcome = compute_in_thread(slow_store, "run-kept")
    wait_until(lambda: running("run-kept") == 1, what="the query running in ClickHouse")

    other = events_store.query_stop("another-run")
    still_running = running("run-kept")
    events_store.query_stop("run-kept")
    thread.join(10)

    assert (other, still_running) == (False, 1)
    assert isinstance(outcome["error"], events_store.QueryCancelled)  # by its own stop, afterwards


def test_query_timeout_ms_becomes_max_execution_time(slow_store, settings):
    settings.QUERY_TIMEOUT_MS = 600
    started = time.monotonic()

    with pytest.raises(events_store.QueryTimedOut):
        events_store.trends_compute(project=slow_store, source=query_parse(TRENDS), now=timezone.now())

    assert 0.5 < time.monotonic() - started < 5


# --- Schema -----------------------------------------------------------------------------------------


def test_the_schema_command_creates_the_table_once_and_is_idempotent(clickhouse, settings):
    settings.CLICKHOUSE_DATABASE = f"fresh_{free_port()}"

    first, second = io.StringIO(), io.StringIO()
    call_command("events_store_migrate", stdout=first)
    call_command("events_store_migrate", stdout=second)

    assert "Applied 1: events" in first.getvalue()
    assert "Applied" not in second.getvalue() and "up to date" in second.getvalue()
    [(engine, partition_key, sorting_key)] = clickhouse_store._query(
        "SELECT engine, partition_key, sorting_key FROM system.tables WHERE database = {db:String} AND name = 'events'",
        {"db": settings.CLICKHOUSE_DATABASE},
        {},
    )
    assert (engine, partition_key) == ("MergeTree", "toYYYYMM(timestamp)")
    assert sorting_key.startswith("project_id, event, toDate(timestamp)")


# --- Loading events ---------------------------------------------------------------------------------


def a_line(**fields: object) -> str:
    line = {"event": "$pageview", "distinct_id": "u", "timestamp": "2026-03-01T12:00:00Z", "properties": {}}
    return json.dumps({**line, **fields}) + "\n"


def load(project, path: Path) -> str:
    out = io.StringIO()
    call_command("load_events", "--project", str(project.id), str(path), stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_load_events_writes_to_clickhouse_with_the_same_values(clickhouse, project, tmp_path):
    properties = {"$current_url": "https://example.com/café", "nested": {"a": [1, 2.5]}, "n": 20.0}
    path = tmp_path / "events.jsonl"
    path.write_text(
        a_line(properties=properties) + a_line(distinct_id=42, timestamp="2026-03-01T14:30:00.5+02:00")
    )

    summary = load(project, path)

    assert summary.startswith(f"Loaded 2 events into project {project.id}")
    assert [
        (ts, event, user, json.loads(props)) for ts, event, user, props in clickhouse_events(project)
    ] == [
        (datetime(2026, 3, 1, 12, 0), "$pageview", "u", properties),
        (datetime(2026, 3, 1, 12, 30, 0, 500000), "$pageview", "42", {}),
    ]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (a_line(event=""), "'event' is empty"),
        (
            a_line(timestamp="1899-12-31T23:00:00Z"),
            "outside what the events store holds (1900-01-01 to 2299-12-31)",
        ),
        ('{"event": "x",\n', "not valid JSON"),
    ],
)
def test_a_bad_line_loads_nothing_into_clickhouse(clickhouse, project, tmp_path, line, reason):
    path = tmp_path / "events.jsonl"
    path.write_text(a_line() * 3 + line + a_line())

    with pytest.raises(CommandError) as refused:
        load(project, path)

    assert "line 4: " in str(refused.value) and reason in str(refused.value)
    assert "Nothing was loaded" in str(refused.value)
    assert clickhouse_events(project) == []
    assert not clickhouse_store._query(  # the staging table went too
        "SELECT name FROM system.tables WHERE database = {db:String} AND name LIKE 'events_loading_%'",
        {"db": clickhouse_store.database()},
        {},
    )


def test_a_load_larger_than_a_batch_lands_whole_across_months(clickhouse, settings, project):
    settings.CLICKHOUSE_INSERT_BATCH = 7
    start = datetime(2026, 1, 30, tzinfo=UTC)
    rows = [EventRow(start + timedelta(hours=6 * n), "$pageview", f"u{n}", {}) for n in range(40)]

    assert events_store.events_write(project_id=project.id, rows=rows) == 40
    assert len(clickhouse_events(project)) == 40


def test_generate_events_writes_the_same_stream_to_either_store(
    clickhouse, settings, project, stranger_project
):
    call_command("generate_events", "--project", str(project.id), "--events", "3000", "--seed", "5",
                 stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip
    settings.EVENTS_BACKEND = "postgres"
    call_command("generate_events", "--project", str(stranger_project.id), "--events", "3000", "--seed", "5",
                 stdout=io.StringIO(), stderr=io.StringIO())  # fmt: skip

    in_clickhouse = Counter(
        (e, u, json.dumps(json.loads(p), sort_keys=True)) for _, e, u, p in clickhouse_events(project)
    )
    in_postgres = Counter(
        (e, u, json.dumps(p, sort_keys=True))
        for e, u, p in Event.objects.filter(project=stranger_project).values_list("event", "distinct_id", "properties")
    )  # fmt: skip
    assert sum(in_clickhouse.values()) == 3000
    assert in_clickhouse == in_postgres


def test_loading_into_a_clickhouse_that_is_down_is_a_command_error(clickhouse, settings, project, tmp_path):
    settings.CLICKHOUSE_URL = f"http://127.0.0.1:{free_port()}"
    path = tmp_path / "events.jsonl"
    path.write_text(a_line())

    with pytest.raises(CommandError, match="does not answer"):
        load(project, path)


def test_events_store_copy_moves_a_projects_events_from_postgresql_once(clickhouse, project):
    rows = rows_at(timezone.now(), ("u1", "Chrome"), ("u2", "Safari"))
    Event.objects.bulk_create(
        [Event(project=project, timestamp=r.timestamp, event=r.event, distinct_id=r.distinct_id, properties=r.properties)
         for r in rows]
    )  # fmt: skip

    call_command(
        "events_store_copy", "--project", str(project.id), stdout=io.StringIO(), stderr=io.StringIO()
    )
    again = io.StringIO()
    call_command(
        "events_store_copy", "--project", str(project.id), "--if-empty", stdout=again, stderr=io.StringIO()
    )

    assert [(user, json.loads(props)) for _, _, user, props in clickhouse_events(project)] == [
        ("u2", {"$browser": "Safari"}),
        ("u1", {"$browser": "Chrome"}),
    ]
    assert "nothing copied" in again.getvalue()
