"""Two of everything (issue 22, item 4): two web nodes and two query-worker nodes over one PostgreSQL
and one Redis, as machines would run them.

A web node is a gunicorn master of its own (two gevent processes) on its own port; a query-worker
node a Celery worker of its own (`-n` a distinct hostname, two prefork processes) consuming the one
query queue. Nothing is shared between nodes but PostgreSQL, Redis and, so that /metrics of either
node counts every execution, a PROMETHEUS_MULTIPROC_DIR. A lock on the events table plays the slow
query; each test waits on what it can observe (waiters in Redis, backends blocked on the lock).
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.conftest import BUSY_QUERY
from tests.live import (
    LiveServer,
    Reply,
    celery_worker,
    children,
    coalesced_waiters,
    events_table_locked,
    in_threads,
    join,
    live_server,
    queries_waiting_on_events,
    query_executions,
    redis_server,
    wait_until,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.live, pytest.mark.slow]

CROWD = 200


@dataclass
class Nodes:
    web: list[LiveServer]
    query_workers: list[subprocess.Popen]
    redis_url: str

    def running_on(self) -> int:
        """Which query-worker node holds the one running execution (its lease names the pool process;
        the web process that handed it over may have renewed it once more meanwhile)."""
        client = redis.Redis.from_url(self.redis_url)
        found: list[int] = []

        def holding() -> bool:
            holders = [
                client.get(current + b":lease")
                for key in client.scan_iter("coalesce:{*}", count=1000)
                if (current := client.hget(key, "current")) is not None
            ]
            pids = {int(holder.split(b"-", 1)[0]) for holder in holders if holder is not None}
            found[:] = [n for n, worker in enumerate(self.query_workers) if pids & set(children(worker.pid))]
            return len(found) == 1

        wait_until(holding, what="a query-worker node to hold the run")
        return found[0]


@contextmanager
def two_nodes(tmp_path: Path, **env: str) -> Iterator[Nodes]:
    """Two web nodes and two query-worker nodes on one Redis (db 0 the cache, 1 the broker, 2 the
    results) and the test database."""
    metrics = tmp_path / "metrics"
    metrics.mkdir()
    with ExitStack() as running:
        base = running.enter_context(redis_server(tmp_path)).url.rsplit("/", 1)[0]
        shared = {
            "REDIS_URL": f"{base}/0", "CELERY_BROKER_URL": f"{base}/1", "CELERY_RESULT_BACKEND": f"{base}/2",
            "QUERY_QUEUE": f"queries-{uuid.uuid4().hex[:8]}", "PROMETHEUS_MULTIPROC_DIR": str(metrics), **env,
        }  # fmt: skip
        workers = [
            running.enter_context(
                celery_worker(
                    tmp_path / f"query-node-{node}.log",
                    name=f"query-node-{node}",
                    pool="prefork",
                    queues=shared["QUERY_QUEUE"],
                    **shared,
                )
            )
            for node in "ab"
        ]
        web = [
            running.enter_context(
                live_server(tmp_path, redis_url=shared["REDIS_URL"], workers=2, query_workers=0, **shared)
            )
            for _ in "ab"
        ]
        yield Nodes(web, workers, f"{base}/0")


def ask(server: LiveServer, path: str, key: str) -> Reply:
    """A GET that reports a connection cut by a killed node as status 0 instead of raising."""
    try:
        return server.call("GET", path, key=key, timeout=120)
    except (OSError, http.client.HTTPException) as error:
        return Reply(0, repr(error).encode(), {}, 0.0)


def crowd(nodes: Nodes, path: str, keys: dict[str, str], size: int) -> tuple[list, list[Reply]]:
    """`size` identical requests, alternately to each web node and from two users."""
    return in_threads(
        *[
            lambda n=n: ask(nodes.web[n % 2], path, keys["owner" if n % 4 < 2 else "teammate"])
            for n in range(size)
        ]
    )


def killed_web_node(server: LiveServer) -> None:
    """SIGKILL a web node: its master first (nothing respawns its processes), then its processes."""
    processes = children(server.process.pid)
    server.process.kill()
    server.process.wait()
    for pid in processes:
        os.kill(pid, signal.SIGKILL)


@pytest.fixture
def insight_path(project, busy_insight) -> str:
    return f"/api/projects/{project.id}/insights/{busy_insight.id}/?refresh=force_blocking"


def test_a_crowd_split_across_two_web_nodes_runs_one_execution(tmp_path, keys, insight_path):
    with two_nodes(tmp_path) as nodes:
        before = query_executions(nodes.web[0])
        with events_table_locked():
            threads, replies = crowd(nodes, insight_path, keys, CROWD)
            wait_until(
                lambda: coalesced_waiters(nodes.redis_url) == CROWD, timeout=120, what="the whole crowd"
            )
            in_the_database = queries_waiting_on_events()
        join(threads, timeout=120)
        executed = query_executions(nodes.web[1]) - before

    assert in_the_database == 1 and executed == 1
    assert Counter(reply.status for reply in replies) == {200: CROWD}
    assert Counter(reply.headers["X-Coalesced"] for reply in replies) == {"leader": 1, "follower": CROWD - 1}
    assert len({reply.content for reply in replies}) == 1
    print(
        f"two web nodes: {CROWD} requests, {executed} execution, slowest {max(r.seconds for r in replies):.2f}s"
    )


def test_with_the_leaders_web_node_killed_mid_crowd_the_other_nodes_waiters_get_the_answer(
    tmp_path, keys, insight_path
):
    with two_nodes(tmp_path) as nodes:
        before = query_executions(nodes.web[1])
        with events_table_locked():
            # The leader is node 0's: its request alone arrives first and runs.
            first, _ = in_threads(lambda: ask(nodes.web[0], insight_path, keys["owner"]))
            wait_until(
                lambda: queries_waiting_on_events() == 1, what="the leader's execution in the database"
            )
            threads, replies = crowd(nodes, insight_path, keys, CROWD)
            wait_until(lambda: coalesced_waiters(nodes.redis_url) == CROWD + 1, timeout=120, what="the crowd")
            killed_web_node(nodes.web[0])
            killed_at = time.monotonic()
        join(first + threads, timeout=120)
        answered_after = time.monotonic() - killed_at
        executed = query_executions(nodes.web[1]) - before

    survivors, cut = replies[1::2], replies[::2]
    assert Counter(reply.status for reply in survivors) == {200: CROWD // 2}
    assert len({reply.content for reply in survivors}) == 1
    assert survivors[0].json()["result"][0]["count"] == 5
    assert {reply.status for reply in cut} == {0}  # their connections died with their node
    assert executed == 1
    print(f"web node killed mid-crowd: {CROWD // 2} x 200 on the other node, {executed} execution, "
          f"answered {answered_after:.2f}s after the kill")  # fmt: skip


def test_with_the_query_worker_node_running_it_killed_all_waiters_share_one_503_and_the_next_runs_on_the_other(
    tmp_path, keys, insight_path
):
    with two_nodes(tmp_path) as nodes:
        with events_table_locked():
            threads, replies = crowd(nodes, insight_path, keys, 50)
            wait_until(lambda: coalesced_waiters(nodes.redis_url) == 50, timeout=60, what="the crowd")
            wait_until(lambda: queries_waiting_on_events() == 1, what="its execution in the database")
            killed = nodes.running_on()
            os.killpg(nodes.query_workers[killed].pid, signal.SIGKILL)
            nodes.query_workers[killed].wait()
            killed_at = time.monotonic()
            join(threads)
            answered_after = time.monotonic() - killed_at
        # The killed worker's backend, blocked on the lock, ends once the lock is gone.
        wait_until(lambda: queries_waiting_on_events() == 0, what="the orphaned statement to end")
        with events_table_locked():
            again, again_reply = in_threads(lambda: ask(nodes.web[killed], insight_path, keys["owner"]))
            wait_until(
                lambda: queries_waiting_on_events() == 1, timeout=20, what="the next run in the database"
            )
            ran_on = nodes.running_on()
        join(again)

    assert Counter((reply.status, reply.json()["code"]) for reply in replies) == {
        (503, "service_unavailable"): 50
    }
    assert len({reply.content for reply in replies}) == 1
    assert all(int(reply.headers["Retry-After"]) >= 1 for reply in replies)
    assert ran_on == 1 - killed
    assert again_reply[0].status == 200 and again_reply[0].json()["result"][0]["count"] == 5
    print(f"query-worker node killed mid-run: 50 x 503 (Retry-After {replies[0].headers['Retry-After']}) "
          f"{answered_after:.2f}s after the kill; the next run on the other node, 200")  # fmt: skip


def test_a_projects_fair_share_is_the_projects_across_both_nodes(tmp_path, keys, project, busy_insight):
    """Two turns for the project, four query-worker processes: of six different slow queries, each
    asked three times over both web nodes, two run and the other four's requests answer 429 with
    Retry-After once their queue bound passes. (The statement timeout is lifted: the running two wait
    on the lock until the test has seen the refusals.)"""
    limit, extra, copies, bound = 2, 4, 3, 8
    env = {"QUERY_CONCURRENCY_PER_PROJECT": str(limit), "QUERY_QUEUE_TIMEOUT_SECONDS": str(bound),
           "QUERY_TIMEOUT_MS": "600000"}  # fmt: skip
    with two_nodes(tmp_path, **env) as nodes:
        with events_table_locked():
            threads, replies = in_threads(
                *[lambda days=days, copy=copy: nodes.web[(days + copy) % 2].call(
                    "POST", f"/api/projects/{project.id}/query/", key=keys["owner"], timeout=120,
                    body={"refresh": "force_blocking", "query": {**BUSY_QUERY["source"], "dateRange": {"date_from": f"-{days}d"}}},
                  ) for days in range(1, limit + extra + 1) for copy in range(copies)]
            )  # fmt: skip
            running: list[int] = []
            deadline = time.monotonic() + 60
            while (
                sum(reply is not None for reply in replies) < extra * copies and time.monotonic() < deadline
            ):
                running.append(queries_waiting_on_events())  # polled until the refused ones have answered
                time.sleep(0.05)
            still_running = queries_waiting_on_events()
        join(threads)

    statuses = Counter(reply.status for reply in replies)
    assert statuses == {200: limit * copies, 429: extra * copies}, statuses
    refused = [reply for reply in replies if reply.status == 429]
    assert {(reply.json()["code"], reply.headers["Retry-After"]) for reply in refused} == {
        ("too_many_concurrent_queries", str(bound))
    }
    assert max(running) == still_running == limit
    print(f"fair share across nodes: {limit + extra} queries x {copies}, at most {max(running)} ran at once, "
          f"{extra * copies} x 429")  # fmt: skip
