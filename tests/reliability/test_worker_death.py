"""A Celery worker killed with SIGKILL mid-rollup and mid-suggestion (issue 6, item 3).

Each test runs its own worker on a private Redis broker, so it can kill it without touching the
suite's worker. Two ways to die: the whole worker (`--pool threads`: nothing is left to report the
loss) and the pool child running the task (`--pool prefork`, as `make run` and the compose file
run it: the parent survives and reports it).

"Mid-rollup" is made real by a lock: a separate connection holds the daily-rollup table, so the
rollup's transaction has already taken the pending views off the queue when it blocks on its
upsert; the kill lands there. Nobody is left to COMMIT, so PostgreSQL rolls the transaction back.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from celery import Celery

from accounts.models import Organization
from accounts.services import personal_api_key_create
from tests.live import database_url, live_server, redis_server, wait_until
from tests.reliability.processes import Caller, Worker, celery_worker
from tests.reliability.routes import TRENDS
from viewtracking.models import InsightViewDaily
from viewtracking.selectors import trending_rank
from viewtracking.services import views_rollup

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker, pytest.mark.slow]

DAILY = InsightViewDaily._meta.db_table
KILLS = {"whole worker": "threads", "pool child": "prefork"}


@pytest.fixture
def redis_base(tmp_path) -> Iterator[str]:
    """A private Redis: db 0 for the service's cache, 1 the broker, 2 the results."""
    with redis_server(tmp_path) as redis:
        yield redis.url.rsplit("/", 1)[0]


@pytest.fixture
def broker(redis_base) -> dict[str, str]:
    """What a worker of the private Redis is started with (replies to requests go through db 0)."""
    return {"broker": f"{redis_base}/1", "backend": f"{redis_base}/2", "REDIS_URL": f"{redis_base}/0"}


@pytest.fixture
def beat(broker, monkeypatch) -> Iterator[Celery]:
    """A stand-in for Celery beat: sends the rollup task by name to the private broker. (Celery
    prefers CELERY_BROKER_URL from the environment over its configuration, so that is what moves.)"""
    monkeypatch.setenv("CELERY_BROKER_URL", broker["broker"])
    monkeypatch.setenv("CELERY_RESULT_BACKEND", broker["backend"])
    app = Celery("beat-stand-in", broker=broker["broker"], backend=broker["backend"])
    assert app.conf.broker_url == broker["broker"]
    yield app
    app.close()


def kill(worker: Worker, how: str) -> None:
    if how == "whole worker":
        worker.kill()
    else:
        [child] = worker.children()
        os.kill(child, signal.SIGKILL)


@contextmanager
def daily_rollups_locked() -> Iterator[psycopg.Connection]:
    """Hold the daily-rollup table from a separate connection: reads go on, the rollup's upsert
    waits. Yields an autocommit connection for watching the database meanwhile."""
    with (
        psycopg.connect(database_url()) as holder,
        psycopg.connect(database_url(), autocommit=True) as watcher,
    ):
        holder.execute(f"LOCK TABLE {DAILY} IN EXCLUSIVE MODE")
        yield watcher
        holder.rollback()


def rollup_backends(watcher: psycopg.Connection) -> list[int]:
    """Backends writing the daily table right now (the rollup blocked behind the lock)."""
    return [
        pid
        for (pid,) in watcher.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE %s "
            "AND query NOT ILIKE '%%pg_stat_activity%%'",
            [f"%INSERT INTO {DAILY}%"],
        ).fetchall()
    ]


def backend_alive(pid: int) -> bool:
    with psycopg.connect(database_url(), autocommit=True) as watcher:
        return (
            watcher.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0] == 1
        )


def daily(insight) -> dict:
    return {
        row.day: (row.views, row.unique_viewers) for row in InsightViewDaily.objects.filter(insight=insight)
    }


def trending_count(project) -> int:
    return trending_rank(project=project, days=1, limit=1, offset=0).rows[0].view_count


@pytest.mark.parametrize("how", KILLS)
def test_a_worker_killed_mid_rollup_counts_nothing_twice_and_the_next_rollup_is_exact(
    how, tmp_path, broker, beat, client_for, owner, teammate, insights_url, project
):
    owner_api, teammate_api = client_for(owner), client_for(teammate)
    insight_id = owner_api.post(insights_url, {"name": "Watched"}, format="json").json()["id"]  # 1 view
    for _ in range(3):
        owner_api.post(f"{insights_url}viewed/", {"insight_ids": [insight_id]}, format="json")
    views_rollup()  # 4 views counted in a rollup
    for _ in range(5):
        teammate_api.post(f"{insights_url}viewed/", {"insight_ids": [insight_id]}, format="json")
    counted_before = daily(insight_id)
    assert sum(views for views, _ in counted_before.values()) == 4 and trending_count(project) == 9

    with celery_worker(tmp_path, **broker, pool=KILLS[how], concurrency=1) as worker:
        with daily_rollups_locked() as watcher:
            killed = beat.send_task("viewtracking.rollup_views")
            wait_until(
                lambda: len(rollup_backends(watcher)) == 1, what="the rollup to block inside its transaction"
            )
            [backend] = rollup_backends(watcher)
            # It has already written inside its transaction (taken the queued views) before blocking.
            wrote_tables = watcher.execute(
                "SELECT count(*) FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation WHERE l.pid = %s "
                "AND l.mode = 'RowExclusiveLock' AND l.granted AND c.relkind = 'r' AND c.relname <> %s",
                [backend, DAILY],
            ).fetchone()[0]
            kill(worker, how)
            killed_at = time.monotonic()
            exact_meanwhile = trending_count(project)
        # The lock is gone: the orphaned statement finishes, finds no client, and PostgreSQL rolls
        # its transaction back (there is nobody to send COMMIT).
        wait_until(lambda: not backend_alive(backend), timeout=10, what="the orphaned rollup backend to end")
        rolled_back_after = time.monotonic() - killed_at
        left_behind = daily(insight_id)
        exact_after = trending_count(project)
        if how == "whole worker":  # nothing runs tasks any more: an operator (or supervisor) restarts it
            worker.process.wait()
            stack = celery_worker(tmp_path, **broker, pool=KILLS[how], concurrency=1)
        else:  # the parent requeued the task (acks_late) and forked a new child
            stack = _same(worker)
        with stack:
            first = beat.send_task("viewtracking.rollup_views").get(timeout=30)
            again = beat.send_task("viewtracking.rollup_views").get(timeout=30)
            if how == "pool child":  # the killed task itself was redelivered and ran again
                wait_until(lambda: killed.state == "SUCCESS", timeout=30, what="the redelivered rollup")
                redelivered = killed.result
            else:  # its message waits, unacknowledged, for the broker's visibility timeout
                redelivered = {"ran": False, "events": 0}

    assert wrote_tables >= 1  # killed mid-transaction, not before it began
    assert left_behind == counted_before  # the killed rollup wrote nothing
    assert exact_meanwhile == exact_after == 9  # trending stayed exact throughout
    assert sum(views for views, _ in daily(insight_id).values()) == 9  # converged, nothing twice
    assert list(daily(insight_id).values()) == [(9, 2)]
    assert first["events"] + redelivered["events"] == 5  # the 5 queued views were taken exactly once
    assert again["events"] == 0 and trending_count(project) == 9  # re-running changes nothing
    print(f"worker death mid-rollup ({how}): rolled back {rolled_back_after:.2f}s after the kill; "
          f"next rollup {first}; redelivered {redelivered}; daily {list(daily(insight_id).values())}")  # fmt: skip


@contextmanager
def _same(worker: Worker) -> Iterator[Worker]:
    yield worker


@pytest.mark.parametrize("how", KILLS)
def test_a_worker_killed_while_the_model_answers_leaves_the_request_its_fallback_within_the_deadline(
    how, tmp_path, redis_base, broker, llm, org, owner, project
):
    Organization.objects.filter(id=org.id).update(is_ai_data_processing_approved=True)
    deadline = 4
    ai = {
        "OPENAI_BASE_URL": f"{llm.base_url}/v1",
        "OPENAI_API_KEY": "test-key",
        "AI_PROVIDER_TIMEOUT_SECONDS": "10",
    }
    key = personal_api_key_create(user=owner, label="worker-death", scopes=["*"]).secret
    generate = f"/api/projects/{project.id}/insights/generate_metadata/"
    with live_server(tmp_path, redis_url=f"{redis_base}/0", workers=1, AI_PROVIDER="openai",
                     AI_METADATA_DEADLINE_SECONDS=str(deadline), CELERY_BROKER_URL=broker["broker"],
                     CELERY_RESULT_BACKEND=broker["backend"], **ai) as server:  # fmt: skip
        api = Caller(server.url, key=key)
        with celery_worker(tmp_path, **broker, pool=KILLS[how], concurrency=1, **ai) as worker:
            llm.reply(delay=8)  # the model is slow: the worker is mid-generation when it dies
            answers: list = []
            waiting = threading.Thread(
                target=lambda: answers.append(api("POST", generate, body={"query": TRENDS}))
            )
            waiting.start()
            wait_until(lambda: len(llm.requests) == 1, what="the worker to call the model")
            kill(worker, how)
            waiting.join(30)
            if how == "pool child":  # the surviving parent has forked a new child: it answers again
                recovered = api("POST", generate, body={"query": TRENDS})
        if how == "whole worker":
            with celery_worker(tmp_path, **broker, pool=KILLS[how], concurrency=1, **ai):
                recovered = api("POST", generate, body={"query": TRENDS})

    [answer] = answers
    # The deadline bounds the wait for the worker; the request's own work comes on top.
    assert answer.status == 200 and answer.seconds < deadline + 1, (answer.status, answer.seconds)
    assert (answer.json()["provider"], answer.json()["fallback"]) == ("heuristic", True)
    assert recovered.status == 200 and (recovered.json()["provider"], recovered.json()["fallback"]) == (
        "openai",
        False,
    )
    print(f"worker death mid-generation ({how}): fallback after {answer.seconds:.2f}s (deadline {deadline}s)")
