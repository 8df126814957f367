"""The query lane on ClickHouse (docs/events-store.md): gunicorn's gevent processes and a real query
worker (two prefork processes) reach the embedded ClickHouse through its owner process, as under
`make run`; a query answers from it, and a cancel kills the running ClickHouse query."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.utils import timezone

from insights import events_store
from tests.insights.test_events_store_clickhouse import TRENDS, rows_at
from tests.insights.test_query_lane import serve
from tests.live import in_threads, join, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def on_clickhouse(url: str, database: str) -> dict[str, str]:
    return {"EVENTS_BACKEND": "clickhouse", "CLICKHOUSE_URL": url, "CLICKHOUSE_DATABASE": database}


def test_a_query_worker_answers_from_clickhouse(tmp_path, clickhouse, keys, project):
    rows = rows_at(timezone.now(), ("u1", "Chrome"), ("u2", "Chrome"), ("u2", "Safari"))
    events_store.events_write(project_id=project.id, rows=rows)

    with serve(tmp_path, **on_clickhouse(clickhouse, settings.CLICKHOUSE_DATABASE)) as server:
        reply = server.call(
            "POST", f"/api/projects/{project.id}/query/", key=keys["owner"], body={"query": TRENDS}
        )

    assert reply.status == 200
    assert {r["breakdown_value"]: r["count"] for r in reply.json()["results"]} == {"Chrome": 2, "Safari": 1}


def test_cancel_ends_the_wait_and_kills_the_running_clickhouse_query(tmp_path, slow_store, keys, settings):
    body = {"query": TRENDS, "refresh": "force_blocking", "client_query_id": "slow-ch"}
    url = f"/api/projects/{slow_store.id}"
    with serve(tmp_path, **on_clickhouse(settings.CLICKHOUSE_URL, settings.CLICKHOUSE_DATABASE)) as server:
        waiting, reply = in_threads(
            lambda: server.call("POST", f"{url}/query/", key=keys["owner"], body=body, timeout=60)
        )
        wait_until(lambda: running_anywhere() == 1, timeout=30, what="the query running in ClickHouse")
        cancel = server.call(
            "POST", f"{url}/insights/cancel/", key=keys["owner"], body={"client_query_id": "slow-ch"}
        )
        join(waiting)
        wait_until(
            lambda: running_anywhere() == 0, timeout=1, what="the ClickHouse query killed within a second"
        )

    assert cancel.json() == {"cancelled": True}
    assert reply[0].status == 400 and reply[0].json()["code"] == "query_cancelled"


def running_anywhere() -> int:
    """Trends queries (distinct users) running in ClickHouse right now, whatever their run id."""
    from insights.events_store import clickhouse as store

    [(count,)] = store._query(
        "SELECT count() FROM system.processes WHERE query LIKE '%uniqExact(e.user_key)%' "
        "AND query NOT LIKE '%system.processes%'",
        {},
        {},
    )
    return int(count)
