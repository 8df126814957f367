"""Query workers: the processes that run queries (Celery workers of QUERY_QUEUE), and handing work to them.

Web side, step 4 of a result request (insights/results.py): `hand_off()` sends an execution that
holds its project's turn to the query workers and waits until one claims it. When none does within
QUERY_PICKUP_TIMEOUT_SECONDS and none is alive (none running, or all hung), or within
QUERY_QUEUE_TIMEOUT_SECONDS while all are busy, it raises QueryWorkersUnavailable (503), which every
waiter of the execution answers.

Worker side, the task's body (`execution_compute`): claim the execution, compute its query
(insights/query_runner.py) while holding its lease and its lane turn, stop the statement at once if
every waiter leaves, publish the outcome (through a Redis outage, if need be), give the turn back.

Liveness: a query worker's main process announces it in Redis from the moment it is ready and
renews that every second (`query_workers_alive()`: `/_ready` and the metric read it), so one that
stops, hangs or dies is missing within QUERY_WORKER_LEASE_SECONDS.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from celery import current_app as celery_app  # the project's app (insights_api.celery), set as current
from celery import signals
from celery.worker.consumer import Consumer
from django.conf import settings
from django.db import connection
from kombu.exceptions import OperationalError as BrokerUnavailable
from prometheus_client.core import GaugeMetricFamily

from accounts.models import Project
from infra.errors import DomainError, Unavailable
from infra.executions import Execution, is_abandoned
from infra.json_types import JSONObject
from infra.lanes import Lane
from infra.metrics import QUERY_CANCELLATIONS
from infra.records import DeadlinePassed, Presence, RedisLost, Renewal, Snapshot, retried
from insights import events_store
from insights.query_nodes import AnyQueryNode, query_parse
from insights.query_runner import query_compute

logger = logging.getLogger(__name__)

COMPUTE_TASK = "insights.compute_execution"  # insights/tasks.py; sent by name to QUERY_QUEUE
QUERY_LANE = Lane("queries", limit=lambda: settings.QUERY_CONCURRENCY_PER_PROJECT)


class QueryWorkersUnavailable(Unavailable):
    """No query worker took the run: none is alive, or all stayed busy past the queue bound."""

    code = "query_workers_unavailable"
    of_the_work = True
    default_detail = "No query worker is running; the query cannot run now."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = settings.QUERY_PICKUP_TIMEOUT_SECONDS


class QueryFailed(Unavailable):
    """The query failed on its worker for a reason of the worker's (logged there), not the query's."""

    of_the_work = True
    default_detail = "The query failed on its worker; run it again."


def query_workers() -> Presence:
    """The workers of QUERY_QUEUE (deployments that share a Redis each have their own queue)."""
    return Presence(
        f"query-workers:{settings.QUERY_QUEUE}", lease_seconds=settings.QUERY_WORKER_LEASE_SECONDS
    )


def query_workers_alive() -> list[str]:
    """The query workers alive now, by name. Raises RedisError."""
    return query_workers().live()


# --- Web side ------------------------------------------------------------------------------------------


def hand_off(execution: Execution, *, project: Project, node: AnyQueryNode) -> bool:
    """Send the execution (holding its project's turn) to the query workers; True once one claims
    it, False if it was abandoned first. Raises QueryWorkersUnavailable."""
    if _none_alive():
        raise QueryWorkersUnavailable
    if not execution.hand_off():
        return False
    try:
        celery_app.send_task(
            COMPUTE_TASK,
            kwargs={
                "execution_id": execution.id,
                "project_id": project.id,
                "query": node.model_dump(mode="json", exclude_none=True),
            },
            # A few quick tries: the broker may be reconnecting after an outage.
            retry_policy={"max_retries": 3, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
            ignore_result=True,  # the outcome comes through the execution's record
        )
    except BrokerUnavailable:
        raise QueryWorkersUnavailable("The query workers' broker cannot be reached; retry.") from None
    pickup = time.monotonic() + settings.QUERY_PICKUP_TIMEOUT_SECONDS

    def taken(snapshot: Snapshot) -> bool | None:
        # "turn" is a read older than this hand-off (the process's waiters share their reads): not
        # taken yet. Taking it for "never taken" gave the turn back while a worker ran the query,
        # and the project ran one more than its limit (tests/reliability/test_two_nodes.py).
        if snapshot["state"] not in ("turn", "queued") or is_abandoned(snapshot):
            return snapshot["state"] == "running"
        if time.monotonic() >= pickup and not query_workers_alive():
            raise QueryWorkersUnavailable(
                "No query worker took the query: none is running or all are stopped."
            )
        return None  # queued behind busy workers: still waiting

    try:
        return execution.record.wait(taken, deadline=time.monotonic() + settings.QUERY_QUEUE_TIMEOUT_SECONDS)
    except DeadlinePassed:
        raise QueryWorkersUnavailable("Every query worker stayed busy; retry later.") from None


def _none_alive() -> bool:
    """No query worker announced itself for a whole renewal interval. One look is not enough: after
    Redis came back empty, every presence is missing until its worker's next renewal (a third of
    the lease), and a query sent meanwhile was refused though the workers were running."""
    deadline = time.monotonic() + settings.QUERY_WORKER_LEASE_SECONDS / 2
    while not query_workers_alive():
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.1)
    return False


# --- Worker side ---------------------------------------------------------------------------------------


def execution_compute(*, execution_id: str, project_id: int, query: JSONObject) -> None:
    """Claim the execution unless it was abandoned or taken, compute it, publish the outcome."""
    execution = Execution(execution_id)
    holder = f"{os.getpid()}-{uuid.uuid4().hex}"  # names the worker's process, for operators
    if not execution.claim(holder):
        return
    tenant = str(project_id)
    renew_turn = lambda pipe: QUERY_LANE.renew(pipe, tenant, execution.id)  # noqa: E731
    try:
        with execution.record.lease.held(holder, also=renew_turn):
            outcome, reusable = _outcome(execution, project_id=project_id, query=query)
            retried(lambda: execution.finish(outcome, reusable=reusable))
    except RedisLost:
        logger.warning("Could not publish the outcome of %s: Redis stayed away", execution.id)
    finally:
        QUERY_LANE.release(tenant, execution.id)


def _outcome(execution: Execution, *, project_id: int, query: JSONObject) -> tuple[dict[str, object], bool]:
    """The outcome of computing the query, and whether later identical requests may reuse it."""
    try:
        project = Project.objects.get(id=project_id)
        with _stopped_when_abandoned(execution):
            computed = query_compute(project=project, node=query_parse(query), run_id=execution.id)
        return {"value": computed.as_json()}, True
    except DomainError as error:  # a timeout or a cancel: the query's own
        return {"error": error.as_json()}, False
    except Exception:
        logger.exception("Computing %s failed", execution.id)
        return {"error": QueryFailed().as_json()}, False


@contextmanager
def _stopped_when_abandoned(execution: Execution) -> Iterator[None]:
    """Stop the block's query (run under the execution's id) at once if every waiter of the
    execution leaves meanwhile."""
    lock, finished = threading.Lock(), threading.Event()

    def abandoned(snapshot: Snapshot) -> bool | None:
        return True if is_abandoned(snapshot) else (False if finished.is_set() else None)

    def watch() -> None:
        try:
            if not execution.record.wait(abandoned, deadline=None):
                return
            with lock:
                if not finished.is_set() and events_store.query_stop(execution.id):
                    QUERY_CANCELLATIONS.labels(effect="backend").inc()
        except RedisLost:
            return
        finally:
            connection.close()  # this thread's own, if stopping needed one

    threading.Thread(target=watch, name=f"watch {execution.id[-8:]}", daemon=True).start()
    try:
        yield
    finally:
        with lock:  # a stop in progress ends before the next task's query can start
            finished.set()


# --- Liveness ------------------------------------------------------------------------------------------

_announced: dict[str, Renewal] = {}


def _announce(sender: Consumer, **_: object) -> None:
    """A worker consuming QUERY_QUEUE is a query worker: it is alive from now on."""
    if settings.QUERY_QUEUE not in sender.app.amqp.queues.consume_from:
        return
    name = f"{sender.hostname} ({socket.gethostname()}:{os.getpid()})"
    _announced[name] = query_workers().announce(name)


def _withdraw(**_: object) -> None:
    for name, renewal in list(_announced.items()):
        query_workers().withdraw(name, renewal)
        del _announced[name]


signals.worker_ready.connect(_announce, weak=False)
signals.worker_shutting_down.connect(_withdraw, weak=False)


class QueryWorkersCollector:
    """`insights_query_workers_alive`: the query workers alive now, read from Redis at scrape time."""

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            alive = len(query_workers_alive())
        except redis.exceptions.RedisError:
            logger.warning("Query workers unknown: Redis unreachable")
            return
        yield GaugeMetricFamily(
            "insights_query_workers_alive",
            "Query workers (Celery workers of QUERY_QUEUE) alive now; 0 means no query can run.",
            value=alive,
        )
