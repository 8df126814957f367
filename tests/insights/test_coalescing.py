"""Coalescing against a live server with several worker processes (docs/queries.md, docs/insight-actions.md#cancel).

A lock on the events table, held by the test, plays the slow query: every Trends statement waits in
PostgreSQL until the test lets go, so requests overlap for as long as a test needs them to.
"""

from __future__ import annotations

import http.client
import os
import signal
import time
from collections import Counter

import pytest

from infra.records import Renewal
from infra.redis import redis_client
from insights.query_workers import QUERY_LANE
from tests.conftest import BUSY_QUERY
from tests.live import (
    coalesced_executions,
    coalesced_waiters,
    events_table_locked,
    in_threads,
    join,
    live_server,
    queries_waiting_on_events,
    redis_server,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live]

QUERY = BUSY_QUERY


@pytest.fixture(scope="module")
def server(tmp_path_factory, django_db_setup, django_db_blocker):
    from django.conf import settings

    with live_server(tmp_path_factory.mktemp("live"), redis_url=settings.REDIS_URL) as running:
        yield running


@pytest.fixture(scope="module")
def one_request_per_process(tmp_path_factory, django_db_setup, django_db_blocker):
    """Each process serves one request at a time, so two concurrent requests are in two processes."""
    from django.conf import settings

    # A short heartbeat: a follower takes over within two of them (0.5 s) of the leader's death.
    with live_server(
        tmp_path_factory.mktemp("live-sync"), redis_url=settings.REDIS_URL, connections=1,
        COALESCING_HEARTBEAT_SECONDS="0.25",
    ) as running:  # fmt: skip
        yield running


@pytest.fixture
def insight_path(project, busy_insight):
    return f"/api/projects/{project.id}/insights/{busy_insight.id}/"


def dropped(call):
    """A call whose server process is killed on purpose: the connection drops."""
    try:
        return call()
    except (ConnectionError, http.client.HTTPException):
        return None


def test_ten_identical_requests_from_two_users_run_the_query_once(server, keys, insight_path):
    url = f"{insight_path}?refresh=force_blocking"
    with events_table_locked():
        threads, replies = in_threads(
            *[lambda n=n: server.call("GET", f"{url}&client_query_id=c{n}", key=keys["owner" if n % 2 else "teammate"])
              for n in range(10)]
        )  # fmt: skip
        wait_until(lambda: queries_waiting_on_events() == 1, what="the leader's query")
        wait_until(lambda: coalesced_waiters() == 10, what="every request waiting")
        stranger = server.call("GET", url, key=keys["stranger"])
        assert queries_waiting_on_events() == 1  # one execution in the database, whatever the callers
    join(threads)

    assert stranger.status == 404 and b"Busy" not in stranger.content
    assert [reply.status for reply in replies] == [200] * 10
    assert Counter(reply.headers["X-Coalesced"] for reply in replies) == {"leader": 1, "follower": 9}
    bodies = {reply.content for reply in replies}
    assert len(bodies) == 1  # the same body for both users: nothing in it is theirs alone
    assert replies[0].json()["result"][0]["count"] == 5


def test_the_same_request_through_projects_and_through_environments_runs_the_query_once(
    server, keys, insight_path
):
    """`/api/environments/{id}/…` is the same route as `/api/projects/{id}/…` (docs/posthog-clients.md)."""
    alias = insight_path.replace("/api/projects/", "/api/environments/")
    with events_table_locked():
        threads, replies = in_threads(
            *[lambda path=path: server.call("GET", f"{path}?refresh=force_blocking", key=keys["owner"])
              for path in (insight_path, alias, insight_path, alias)]
        )  # fmt: skip
        wait_until(lambda: coalesced_waiters() == 4, what="all four requests waiting")
        executions = coalesced_executions()
    join(threads)

    assert executions == [4]  # one execution, four waiters
    assert Counter(reply.headers["X-Coalesced"] for reply in replies) == {"leader": 1, "follower": 3}
    assert len({reply.content for reply in replies}) == 1


def test_twenty_waiters_on_a_process_with_a_four_connection_pool_all_get_their_answer(
    tmp_path, keys, insight_path
):
    """Waiting holds no database connection: a crowd of followers cannot starve the pool."""
    from django.conf import settings

    with live_server(
        tmp_path, redis_url=settings.REDIS_URL, workers=1,
        DATABASE_POOL_MAX_SIZE="4", DATABASE_POOL_TIMEOUT_SECONDS="1",
    ) as small:  # fmt: skip
        url = f"{insight_path}?refresh=force_blocking"
        with events_table_locked():
            threads, replies = in_threads(*[lambda: small.call("GET", url, key=keys["owner"])] * 20)
            wait_until(lambda: queries_waiting_on_events() == 1, what="the leader's query")
            wait_until(lambda: coalesced_waiters() == 20, timeout=60, what="all twenty waiting")
            # All twenty wait: now longer than a request would wait for a pooled connection (the
            # window under test, not a guess at how long something takes).
            time.sleep(1.5)
        join(threads)

    assert [reply.status for reply in replies] == [200] * 20
    assert Counter(reply.headers["X-Coalesced"] for reply in replies) == {"leader": 1, "follower": 19}


def test_a_cancel_ends_only_the_callers_wait_while_another_waiter_gets_its_answer(
    server, keys, insight_path, project
):
    url = f"{insight_path}?refresh=force_blocking"
    with events_table_locked():
        threads, replies = in_threads(
            lambda: server.call("GET", f"{url}&client_query_id=mine", key=keys["owner"])
        )
        wait_until(lambda: queries_waiting_on_events() == 1, what="the leader's query")
        more, others = in_threads(
            lambda: server.call("GET", f"{url}&client_query_id=theirs", key=keys["teammate"])
        )
        wait_until(lambda: coalesced_waiters() == 2, what="the teammate waiting too")
        cancel = server.call("POST", f"/api/projects/{project.id}/insights/cancel/", key=keys["owner"],
                             body={"client_query_id": "mine"})  # fmt: skip
        join(threads)
        still_running = queries_waiting_on_events()
    join(more)

    assert cancel.status == 201 and cancel.json() == {"cancelled": True}
    assert replies[0].status == 400 and replies[0].json()["code"] == "query_cancelled"
    assert still_running == 1  # the teammate still waits, so the database work goes on
    assert others[0].status == 200 and others[0].json()["result"][0]["count"] == 5


def test_a_cancel_with_nobody_else_waiting_stops_the_query_in_the_database_within_a_second(
    server, keys, insight_path, project
):
    with events_table_locked():
        threads, replies = in_threads(
            lambda: server.call(
                "GET", f"{insight_path}?refresh=force_blocking&client_query_id=solo", key=keys["owner"]
            )
        )
        wait_until(lambda: queries_waiting_on_events() == 1, what="the query")
        cancelled_at = time.monotonic()
        server.call(
            "POST",
            f"/api/projects/{project.id}/insights/cancel/",
            key=keys["owner"],
            body={"client_query_id": "solo"},
        )
        wait_until(lambda: queries_waiting_on_events() == 0, timeout=1, what="the backend to be cancelled")
        stopped_after = time.monotonic() - cancelled_at
        join(threads)

    assert stopped_after < 1
    assert replies[0].status == 400 and replies[0].json()["code"] == "query_cancelled"


def test_a_follower_takes_over_when_the_leaders_process_dies(
    one_request_per_process, keys, insight_path, project
):
    """The leader drives the execution until a query worker claims it; here it waits for its project's
    turn (the test holds both), dies, and its follower leads a new execution within two heartbeats."""
    server = one_request_per_process
    url = f"{insight_path}?refresh=force_blocking"
    tenant = str(project.id)
    held = ["held-1", "held-2"]  # the project's two turns
    for ticket in held:
        QUERY_LANE.take(tenant, ticket, abandoned=lambda: False, also_wake_on=[])

    def renew() -> None:
        pipe = redis_client().pipeline()
        for ticket in held:
            QUERY_LANE.renew(pipe, tenant, ticket)
        pipe.execute()

    renewing = Renewal(renew, interval=1, name="the test's turns").start()
    try:
        leader, _ = in_threads(lambda: dropped(lambda: server.call("GET", url, key=keys["owner"])))
        wait_until(lambda: coalesced_waiters() == 1, what="the leader waiting for its turn")
        follower, replies = in_threads(lambda: server.call("GET", url, key=keys["teammate"], timeout=60))
        wait_until(lambda: coalesced_waiters() == 2, what="the follower waiting")
        [execution] = [key for key in redis_client().scan_iter("coalesce:{*}:*:lease")]
        leader_pid = int(redis_client().get(execution).split(b"-")[0])
        os.kill(leader_pid, signal.SIGKILL)
        killed_at = time.monotonic()

        def leaders() -> set[int]:  # each read once per check: a lease may lapse between two reads
            found = (redis_client().get(lease) for lease in redis_client().scan_iter("coalesce:{*}:*:lease"))
            return {int(holder.split(b"-")[0]) for holder in found if holder is not None}

        # Within two heartbeats (0.25 s each here) the follower leads a new execution of its own.
        wait_until(lambda: leaders() - {leader_pid}, timeout=3, what="a new leader")
        took_over_after = time.monotonic() - killed_at
    finally:
        renewing.stop()
        for ticket in held:
            QUERY_LANE.release(tenant, ticket)
    join(follower + leader)

    assert took_over_after < 1  # the lease (two heartbeats) and a read (half a heartbeat)
    assert replies[0].status == 200 and replies[0].json()["result"][0]["count"] == 5


def test_every_route_answers_with_redis_stopped(tmp_path, keys, insight_path, project):
    base = f"/api/projects/{project.id}/insights/"
    with redis_server(tmp_path) as redis, live_server(tmp_path, redis_url=redis.url, workers=2) as server:
        assert server.call("GET", base, key=keys["owner"]).status == 200
        redis.stop()
        insight_id = insight_path.rstrip("/").split("/")[-1]
        calls = [
            ("GET", base, None),
            ("GET", insight_path, None),
            ("POST", base, {"name": "Made without Redis"}),
            ("PATCH", insight_path, {"description": "still works"}),
            ("POST", f"{base}viewed/", {"insight_ids": [int(insight_id)]}),
            ("GET", f"{base}my_last_viewed/", None),
            ("GET", f"{base}trending/", None),
            (
                "POST",
                f"{base}bulk_update_tags/",
                {"ids": [int(insight_id)], "action": "add", "tags": ["offline"]},
            ),
            ("POST", f"{base}generate_metadata/", {"query": QUERY}),
            ("POST", f"{base}cancel/", {"client_query_id": "x"}),
            ("GET", f"{base}activity/", None),
            ("POST", f"/api/projects/{project.id}/query/", {"query": QUERY}),
        ]
        replies = [server.call(method, path, key=keys["owner"], body=body) for method, path, body in calls]
        ready = server.call("GET", "/_ready")

    assert [
        (path, reply.status)
        for (_, path, _), reply in zip(calls, replies, strict=True)
        if reply.status >= 500
    ] == []
    assert replies[1].headers["X-Coalesced"] == "off" and replies[1].json()["result"][0]["count"] == 5
    assert replies[8].json()["provider"] == "heuristic"
    assert ready.status == 503 and ready.json()["checks"]["redis"] == "down"
