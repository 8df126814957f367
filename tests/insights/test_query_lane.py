"""Workload isolation against a live service (docs/workload-isolation.md): gevent processes and real query workers.

A lock on the events table, held by the test, plays the slow query: every Trends statement waits in
PostgreSQL until the test lets go. Each test waits on what it can observe (backends blocked on the
lock, waiters and queued turns in Redis), never on a guessed delay.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.utils import timezone

from infra.records import Renewal
from infra.redis import redis_client
from insights.models import Event
from insights.query_workers import QUERY_LANE
from tests.live import (
    children,
    coalesced_waiters,
    database_url,
    events_table_locked,
    in_threads,
    join,
    live_server,
    queries_waiting_on_events,
    wait_until,
)
from tests.reliability.conftest import PASSWORD
from tests.reliability.processes import Caller

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]


def trends(days: int = 1) -> dict:
    return {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}],
            "dateRange": {"date_from": f"-{days}d"}}  # fmt: skip


@pytest.fixture
def events(project, stranger_project):
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(project=p, timestamp=now - timedelta(minutes=n), event="$pageview", distinct_id=f"u{n}")
         for p in (project, stranger_project) for n in range(5)]
    )  # fmt: skip


@pytest.fixture
def insight_path(project, make_insight, events):
    insight = make_insight(name="Busy", query={"kind": "InsightVizNode", "source": trends()})
    return f"/api/projects/{project.id}/insights/{insight.id}/"


def serve(tmp_path: Path, *, workers: int = 3, query_workers: int = 2, **env: str):
    """The service with `env` (a cache of its own: no test sees another's cached results)."""
    prefix = f"lane-{os.getpid()}-{time.monotonic_ns()}"
    return live_server(tmp_path, redis_url=settings.REDIS_URL, workers=workers, query_workers=query_workers,
                       CACHE_KEY_PREFIX=prefix, **env)  # fmt: skip


def lane_of(project) -> tuple[int, int]:
    """(running, waiting) turns of the project in the query lane."""
    found = {state.tenant: (state.running, state.waiting) for state in QUERY_LANE.states()}
    return found.get(str(project.id), (0, 0))


def run_query(server, project, key, days: int, **extra):
    body = {"query": trends(days), "refresh": "force_blocking", **extra}
    return lambda: server.call("POST", f"/api/projects/{project.id}/query/", key=key, body=body, timeout=90)


def test_two_hundred_identical_requests_from_two_users_run_one_execution(tmp_path, keys, insight_path):
    """Far past the threads of the old design (16): everyone joins the one running execution."""
    url = f"{insight_path}?refresh=force_blocking"
    with serve(tmp_path) as server:
        with events_table_locked():
            threads, replies = in_threads(
                *[lambda n=n: server.call("GET", url, key=keys["owner" if n % 2 else "teammate"], timeout=90)
                  for n in range(200)]
            )  # fmt: skip
            wait_until(lambda: coalesced_waiters() == 200, timeout=60, what="all 200 requests waiting")
            executions = queries_waiting_on_events()
        join(threads)

    assert executions == 1
    assert Counter(reply.status for reply in replies) == {200: 200}
    assert Counter(reply.headers["X-Coalesced"] for reply in replies) == {"leader": 1, "follower": 199}
    assert len({reply.content for reply in replies}) == 1  # one body: nothing in it is either user's own


def test_a_request_held_up_before_joining_uses_an_answer_computed_after_it_arrived(
    tmp_path, keys, insight_path, owner
):
    """A arrives and is held in its authentication (the API-key table is locked); meanwhile B, by
    session, runs the same request to the end. A then finds B's answer, whose execution ran after A
    arrived, as it would have had by joining at once. C, arriving after it finished, runs anew."""
    url = f"{insight_path}?refresh=force_blocking"
    with serve(tmp_path) as server:
        by_session = Caller(server.url)
        assert (
            by_session("POST", "/api/login/", body={"email": owner.email, "password": PASSWORD}).status == 200
        )
        with psycopg.connect(database_url()) as holder:
            holder.execute("LOCK TABLE accounts_personalapikey IN ACCESS EXCLUSIVE MODE")
            held, held_replies = in_threads(lambda: server.call("GET", url, key=keys["owner"], timeout=60))
            wait_until(lambda: waiting_on("accounts_personalapikey") == 1, what="A held up")
            fresh = by_session("GET", url)
            holder.rollback()
        join(held)
        held_up = held_replies[0]
        later = server.call("GET", url, key=keys["owner"])

    assert fresh.status == 200 and fresh.headers["X-Coalesced"] == "leader"
    assert held_up.status == 200 and held_up.headers["X-Coalesced"] == "follower"
    assert held_up.json()["last_refresh"] == fresh.json()["last_refresh"]  # B's execution, not a new one
    assert later.headers["X-Coalesced"] == "leader"  # it arrived after B's execution finished
    assert later.json()["last_refresh"] > fresh.json()["last_refresh"]


def test_a_project_runs_at_most_its_limit_while_another_project_runs_at_once(
    tmp_path, keys, project, stranger_project, events
):
    """Three query workers, two turns per project: the busy project's queue leaves the third worker
    to the other project."""
    with serve(tmp_path, query_workers=3, QUERY_CONCURRENCY_PER_PROJECT="2") as server:
        with events_table_locked():
            busy, busy_replies = in_threads(
                *[run_query(server, project, keys["owner"], days) for days in range(1, 6)]
            )
            wait_until(lambda: lane_of(project) == (2, 3), what="two running, three queued")
            wait_until(lambda: queries_waiting_on_events() == 2, what="the two in the database")
            other, other_replies = in_threads(run_query(server, stranger_project, keys["stranger"], 1))
            wait_until(lambda: queries_waiting_on_events() == 3, what="the other project's query, at once")
            queued_meanwhile = lane_of(project)
        join(busy + other)

    assert queued_meanwhile == (2, 3)  # the other project's query did not wait behind them
    assert [reply.status for reply in busy_replies + other_replies] == [200] * 6


def test_past_the_queue_bound_a_request_answers_429_with_retry_after_and_gives_up_its_place(
    tmp_path, keys, project, events
):
    metrics_dir = tmp_path / "metrics"  # every process's samples, so /metrics counts them all
    metrics_dir.mkdir()
    with serve(tmp_path, QUERY_CONCURRENCY_PER_PROJECT="1", QUERY_QUEUE_TIMEOUT_SECONDS="1",
               PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)) as server:  # fmt: skip
        with events_table_locked():
            first, running = in_threads(run_query(server, project, keys["owner"], 1))
            wait_until(lambda: queries_waiting_on_events() == 1, what="the first query in the database")
            refused = run_query(server, project, keys["owner"], 2)()
            wait_until(lambda: lane_of(project) == (1, 0), timeout=2, what="its place given up")
        join(first)
        metrics = server.call("GET", "/metrics").content.decode()

    assert refused.status == 429 and refused.headers["Retry-After"] == "1"
    assert refused.json()["type"] == "throttled_error"
    assert refused.json()["code"] == "too_many_concurrent_queries"
    assert running[0].status == 200  # the running one is not affected
    assert f'insights_query_lane_rejections_total{{project="{project.id}"}} 1.0' in metrics


def test_the_query_timeout_bounds_the_run_never_the_wait_for_a_turn(
    tmp_path, keys, project, events, settings
):
    """The test holds the project's only turn for longer than QUERY_TIMEOUT_MS: the request waits that
    long for its turn, then runs (well within its timeout) and answers."""
    settings.QUERY_CONCURRENCY_PER_PROJECT = 1
    with serve(tmp_path, QUERY_CONCURRENCY_PER_PROJECT="1", QUERY_TIMEOUT_MS="1000") as server:
        QUERY_LANE.take(str(project.id), "held-by-the-test", abandoned=lambda: False, also_wake_on=[])
        renewing = Renewal(lambda: renew_held(project), interval=1, name="the test's turn").start()
        sent = time.monotonic()
        waiting, reply = in_threads(run_query(server, project, keys["owner"], 1))
        wait_until(lambda: lane_of(project) == (1, 1), what="the request queued for its turn")
        wait_until(lambda: time.monotonic() - sent > 1.5, what="longer than the query timeout")
        renewing.stop()
        QUERY_LANE.release(str(project.id), "held-by-the-test")
        join(waiting)

    assert reply[0].status == 200 and reply[0].seconds > 1.5


def test_cheap_requests_of_another_project_answer_while_a_crowd_of_slow_queries_waits(
    tmp_path, keys, project, stranger_project, insight_path
):
    """One web process with two work slots and a pool of four connections, and a crowd of its
    project's slow queries: 60 distinct ones and 60 identical ones (one execution). Two run, the
    others queue, and all 120 requests wait holding neither a slot nor a connection, while another
    project's lists answer. (The queue bound and the statement timeout are lifted: on a loaded
    machine the crowd takes longer than their defaults to arrive, and they are not what is tested.)"""
    with serve(tmp_path, workers=1, WEB_WORK_SLOTS="2", DATABASE_POOL_MAX_SIZE="4",
               QUERY_QUEUE_TIMEOUT_SECONDS="600", QUERY_TIMEOUT_MS="600000") as server:  # fmt: skip
        with events_table_locked():
            crowd, replies = in_threads(
                *[run_query(server, project, keys["owner"], days) for days in range(1, 61)],
                *[lambda: server.call("GET", f"{insight_path}?refresh=force_blocking", key=keys["teammate"], timeout=90)] * 60,
            )  # fmt: skip
            wait_until(lambda: coalesced_waiters() == 120, timeout=60, what="the whole crowd waiting")
            lists = [
                server.call("GET", f"/api/projects/{stranger_project.id}/insights/", key=keys["stranger"])
                for _ in range(20)
            ]
            still_waiting = (queries_waiting_on_events(), coalesced_waiters())
        join(crowd)  # the slow queries, let go, are all answered

    assert [reply.status for reply in lists] == [200] * 20
    assert still_waiting == (2, 120)  # answered while every slow query still waited
    assert Counter(reply.status for reply in replies) == {200: 120}


def test_cancelling_a_queued_query_ends_its_wait_at_once_and_gives_up_its_place(
    tmp_path, keys, project, events
):
    with serve(tmp_path, QUERY_CONCURRENCY_PER_PROJECT="1") as server:
        with events_table_locked():
            first, _ = in_threads(run_query(server, project, keys["owner"], 1))
            wait_until(lambda: queries_waiting_on_events() == 1, what="the first query in the database")
            queued, reply = in_threads(
                run_query(server, project, keys["owner"], 2, client_query_id="queued-one")
            )
            wait_until(lambda: lane_of(project) == (1, 1), what="the second query queued")
            cancel = server.call("POST", f"/api/projects/{project.id}/insights/cancel/", key=keys["owner"],
                                 body={"client_query_id": "queued-one"})  # fmt: skip
            join(queued)
            wait_until(lambda: lane_of(project) == (1, 0), timeout=2, what="its place given up")
        join(first)

    assert cancel.json() == {"cancelled": True}
    assert reply[0].status == 400 and reply[0].json()["code"] == "query_cancelled"


def test_when_a_query_worker_dies_mid_run_its_waiters_answer_503_and_the_next_run_works(
    tmp_path, keys, insight_path
):
    url = f"{insight_path}?refresh=force_blocking"
    with serve(tmp_path) as server:
        with events_table_locked():
            crowd, replies = in_threads(*[lambda: server.call("GET", url, key=keys["owner"], timeout=60)] * 3)
            wait_until(lambda: queries_waiting_on_events() == 1, what="the run in the database")
            for child in children(server.query_worker.pid):
                os.kill(child, signal.SIGKILL)
            join(crowd)
        wait_until(lambda: len(children(server.query_worker.pid)) == 2, what="the worker's new children")
        again = server.call("GET", url, key=keys["owner"])

    assert [(reply.status, reply.json()["code"]) for reply in replies] == [(503, "service_unavailable")] * 3
    assert again.status == 200 and again.json()["result"][0]["count"] == 5


def renew_held(project) -> None:
    pipe = redis_client().pipeline()
    QUERY_LANE.renew(pipe, str(project.id), "held-by-the-test")
    pipe.execute()


def waiting_on(table: str) -> int:
    """Backends of the test database blocked on a lock while reading `table`."""
    with psycopg.connect(database_url(), autocommit=True) as observer:
        return observer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE %s AND query NOT ILIKE '%%pg_stat_activity%%'",
            [f"%{table}%"],
        ).fetchone()[0]
