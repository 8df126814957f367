"""Query executions in a lane of their own (docs/workload-isolation.md): bounded per project, run by query workers.

No slow query runs in a web process. An execution (one per crowd of identical result requests, see
apikit/coalescing.py) first waits for a turn of its project in the query lane (at most
QUERY_CONCURRENCY_PER_PROJECT run at once, the others queue in arrival order), then hands the run to
the Celery queue `queries`, whose workers are the lane's bounded capacity, and waits for the outcome
without holding a database connection. The wait for a turn is bounded by each waiting request
(QUERY_QUEUE_TIMEOUT_SECONDS); QUERY_TIMEOUT_MS bounds only the run itself, in the worker.

A run is recorded in Redis under `query-run:{<id>}`: `queued` → `running` (a worker claimed it and
renews a lease while it computes) → `done` with its outcome; or `abandoned` (nobody waits any more,
before a worker claimed it: the worker skips it) or `lost` (its worker died mid-run: 503).

Without Redis there is no lane and no broker: the web process computes itself, at most
QUERY_CONCURRENCY_PER_PROJECT queries at a time per process. A request inside a transaction (only
tests make one) computes itself too: its uncommitted rows are visible to its own connection only.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import redis
from celery import current_app as celery_app  # the project's app (insights_api.celery), set as current
from django.conf import settings
from django.db import connection
from kombu.exceptions import OperationalError as BrokerUnavailable

from accounts.models import Project
from infra import wakeups
from infra.errors import DomainError
from infra.lanes import Lane, TurnAbandoned
from infra.metrics import QUERY_LANE_REJECTIONS, QUERY_LANE_WAIT
from infra.redis import redis_client
from insights.cancellation import query_registration
from insights.query_nodes import AnyQueryNode, query_parse
from insights.query_runner import (
    QueryCancelled,
    QueryOutcome,
    QueryTimedOut,
    RefreshMode,
    query_run,
    query_status_lease_key,
    query_status_set,
)
from insights.trends import UnsupportedQuery

logger = logging.getLogger(__name__)

EXECUTE_TASK = "insights.execute_query"  # insights/tasks.py; sent by name to the `queries` queue
QUERY_LANE = Lane("queries", limit=lambda: settings.QUERY_CONCURRENCY_PER_PROJECT)
RUN_TTL_SECONDS = 3600
ALIVE_SECONDS = 3.0  # a running run's lease; its worker renews it every third of that

_CLAIM = """
if redis.call('hget', KEYS[1], 'state') ~= 'queued' then return 0 end
redis.call('hset', KEYS[1], 'state', 'running')
redis.call('set', KEYS[2], '1', 'PX', ARGV[1])
redis.call('publish', ARGV[2], 'running')
return 1
"""
_FINISH = """
if redis.call('hget', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('hset', KEYS[1], 'state', 'done', 'outcome', ARGV[1])
redis.call('del', KEYS[2])
redis.call('publish', ARGV[2], 'done')
return 1
"""
# Move a run from one state to another if it is still in the first (and, for `lost`, its lease lapsed).
_SETTLE = """
if redis.call('hget', KEYS[1], 'state') ~= ARGV[1] then return 0 end
if ARGV[2] == 'lost' and redis.call('exists', KEYS[2]) == 1 then return 0 end
redis.call('hset', KEYS[1], 'state', ARGV[2])
return 1
"""


class QueryLost(DomainError):
    """The worker running the query stopped before it answered."""

    status = 503
    code = "service_unavailable"
    type = "server_error"
    default_detail = "The query's worker stopped before it finished; run it again."


class AsyncQueriesUnavailable(DomainError):
    """An asynchronous run's status lives in Redis: without Redis there is none."""

    status = 503
    code = "service_unavailable"
    type = "server_error"
    default_detail = "Asynchronous queries need Redis; use refresh=blocking."


class QueryTurnTimeout(DomainError):
    """No turn to run the query came within QUERY_QUEUE_TIMEOUT_SECONDS."""

    status = 429
    code = "too_many_concurrent_queries"
    type = "throttled_error"
    default_detail = "Too many queries of this project are running; no turn came for this one in time."

    def __init__(self) -> None:
        super().__init__()
        self.retry_after = settings.QUERY_QUEUE_TIMEOUT_SECONDS


@dataclass(frozen=True)
class QueryRun:
    """One run of a query by a query worker, as recorded in Redis."""

    id: str

    @property
    def key(self) -> str:
        return f"query-run:{{{self.id}}}"

    @property
    def alive_key(self) -> str:
        return f"{self.key}:alive"

    @property
    def channel(self) -> str:
        return wakeups.channel(f"query-run:{self.id}")

    def read(self) -> tuple[str | None, dict[str, Any] | None, bool]:
        """(state, outcome, whether its worker's lease is current)."""
        pipe = redis_client().pipeline()
        pipe.hmget(self.key, "state", "outcome")
        pipe.exists(self.alive_key)
        (state, outcome), alive = pipe.execute()
        return (
            state.decode() if state else None,
            json.loads(outcome) if outcome else None,
            bool(alive),
        )

    def settle(self, *, from_state: str, to_state: str) -> bool:
        return bool(redis_client().eval(_SETTLE, 2, self.key, self.alive_key, from_state, to_state))


# --- Web side: wait for a turn, hand the run over, wait for its outcome ------------------------------


def query_execute(
    *, project: Project, node: AnyQueryNode, refresh: RefreshMode, execution: Any | None
) -> QueryOutcome:
    """Compute a query node in the query lane for a coalesced `execution` (None: coalescing is off).
    Raises QueryCancelled (nobody waits any more), QueryTimedOut, UnsupportedQuery, QueryLost or
    QueryTurnTimeout (computing here, when no turn came in time)."""
    if execution is None or connection.in_atomic_block:
        return _compute_here(
            project=project,
            node=node,
            refresh=refresh,
            execution_key=None if execution is None else execution.id,
        )
    try:
        with QUERY_LANE.turn(
            str(project.id),
            abandoned=execution.abandoned,
            also_wake_on=[execution.channel],
        ) as waited:
            QUERY_LANE_WAIT.labels(project=str(project.id)).observe(waited)
            return _run_on_worker(
                project=project, node=node, refresh=refresh, execution_id=execution.id,
                on_started=execution.started, abandoned=execution.abandoned, wake_on=[execution.channel],
            )  # fmt: skip
    except TurnAbandoned:
        raise QueryCancelled from None
    except (redis.exceptions.RedisError, BrokerUnavailable):
        logger.warning("Query lane unavailable (Redis or the broker); computing in this process")
        return _compute_here(project=project, node=node, refresh=refresh, execution_key=execution.id)


def _run_on_worker(
    *,
    project: Project,
    node: AnyQueryNode,
    refresh: RefreshMode,
    execution_id: str,
    on_started: Callable[[], None],
    abandoned: Callable[[], bool],
    wake_on: list[str],
) -> QueryOutcome:
    run = QueryRun(uuid.uuid4().hex)
    client = redis_client()
    pipe = client.pipeline()
    pipe.hset(run.key, mapping={"state": "queued"})
    pipe.expire(run.key, RUN_TTL_SECONDS)
    pipe.execute()
    celery_app.send_task(
        EXECUTE_TASK,
        kwargs={
            "run_id": run.id,
            "project_id": project.id,
            "query": node.model_dump(mode="json", exclude_none=True),
            "refresh": refresh,
            "execution_id": execution_id,
        },
        retry=False,
        ignore_result=True,  # the outcome comes through the run's record, not Celery's result backend
    )
    announced = False
    with wakeups.WAKEUPS.watching([run.channel, *wake_on]) as woken:
        while True:
            woken.clear()
            state, outcome, alive = run.read()
            if state in ("running", "done") and not announced:
                on_started()
                announced = True
            if state == "done":
                assert outcome is not None
                return _outcome(outcome)
            if state == "running" and not alive and run.settle(from_state="running", to_state="lost"):
                raise QueryLost
            # Nobody waits any more. A run no worker has claimed is dropped; a running one has been
            # stopped by the last waiter (its backend cancelled) and answers shortly.
            if abandoned() and state == "queued" and run.settle(from_state="queued", to_state="abandoned"):
                raise QueryCancelled
            woken.wait(ALIVE_SECONDS / 3)


def _outcome(outcome: dict[str, Any]) -> QueryOutcome:
    error = outcome.get("error")
    if error == "cancelled":
        raise QueryCancelled
    if error == "timeout":
        raise QueryTimedOut
    if error == "unsupported":
        raise UnsupportedQuery(outcome["code"], outcome["detail"])
    if error is not None:
        raise QueryLost
    return QueryOutcome(**outcome["result"])


# Without a lane (Redis down, or a request inside a transaction): a bound per web process.
_here_lock = threading.Lock()
_here_slots: threading.BoundedSemaphore | None = None


def _compute_here(
    *, project: Project, node: AnyQueryNode, refresh: RefreshMode, execution_key: str | None
) -> QueryOutcome:
    global _here_slots
    with _here_lock:
        if _here_slots is None:
            _here_slots = threading.BoundedSemaphore(settings.QUERY_CONCURRENCY_PER_PROJECT)
    if not _here_slots.acquire(timeout=settings.QUERY_QUEUE_TIMEOUT_SECONDS):
        QUERY_LANE_REJECTIONS.labels(project=str(project.id)).inc()
        raise QueryTurnTimeout
    try:
        return query_run(project=project, node=node, refresh=refresh, execution_key=execution_key)
    finally:
        _here_slots.release()


# --- Worker side -------------------------------------------------------------------------------------


def query_run_perform(
    *, run_id: str, project_id: int, query: dict[str, Any], refresh: RefreshMode, execution_id: str
) -> None:
    """Claim the run (unless it was abandoned meanwhile), compute it under the query timeout while
    renewing its lease, and publish the outcome."""
    run = QueryRun(run_id)
    client = redis_client()
    if not client.eval(_CLAIM, 2, run.key, run.alive_key, int(ALIVE_SECONDS * 1000), run.channel):
        return
    outcome: dict[str, Any]
    with _lease(run.alive_key):
        try:
            project = Project.objects.get(id=project_id)
            result = query_run(
                project=project, node=query_parse(query), refresh=refresh, execution_key=execution_id
            )
            outcome = {"result": dataclasses.asdict(result)}
        except QueryCancelled:
            outcome = {"error": "cancelled"}
        except QueryTimedOut:
            outcome = {"error": "timeout"}
        except UnsupportedQuery as exc:
            outcome = {"error": "unsupported", "code": exc.code, "detail": str(exc)}
        except Exception:
            logger.exception("Query run %s failed", run_id)
            outcome = {"error": "failed"}
    client.eval(_FINISH, 2, run.key, run.alive_key, json.dumps(outcome, default=str), run.channel)


@contextlib.contextmanager
def _lease(key: str) -> Iterator[None]:
    """Keep `key` alive (a lease of ALIVE_SECONDS, renewed every third of it) while the block runs."""
    done = threading.Event()

    def renew() -> None:
        while not done.wait(ALIVE_SECONDS / 3):
            with contextlib.suppress(redis.exceptions.RedisError):
                redis_client().set(key, "1", px=int(ALIVE_SECONDS * 1000))

    threading.Thread(target=renew, name=f"lease-{key[-8:]}", daemon=True).start()
    try:
        yield
    finally:
        done.set()


# --- Asynchronous runs (refresh=async) -----------------------------------------------------------------


def query_start_later(
    *, project: Project, node: AnyQueryNode, refresh: RefreshMode, user_id: int, client_query_id: str | None
) -> dict[str, Any]:
    """Start a run that nobody waits on and answer its status at once; the status (GET
    …/query/{id}/) records the outcome. The run takes its turn in the query lane like any other,
    bounded by QUERY_QUEUE_TIMEOUT_SECONDS; a cancel of `client_query_id` stops it."""
    query_id = uuid.uuid4().hex
    try:
        status = query_status_set(project_id=project.id, query_id=query_id)
        redis_client().set(query_status_lease_key(project.id, query_id), "1", px=int(ALIVE_SECONDS * 1000))
    except redis.exceptions.RedisError:
        raise AsyncQueriesUnavailable from None
    # The run carries the request's context (its request id, on log lines and into the task) along.
    run = functools.partial(
        _run_later, project=project, node=node, refresh=refresh, query_id=query_id, user_id=user_id,
        client_query_id=client_query_id,
    )  # fmt: skip
    threading.Thread(
        target=contextvars.copy_context().run, args=(run,), name=f"async-{query_id[:8]}", daemon=True
    ).start()
    return status


def _run_later(
    *, project: Project, node: AnyQueryNode, refresh: RefreshMode, query_id: str, user_id: int,
    client_query_id: str | None,
) -> None:  # fmt: skip
    execution_id = f"query-async:{project.id}:{query_id}"
    deadline = time.monotonic() + settings.QUERY_QUEUE_TIMEOUT_SECONDS
    fields: dict[str, Any]
    try:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_lease(query_status_lease_key(project.id, query_id)))
            registration = (
                stack.enter_context(query_registration(
                    project_id=project.id, user_id=user_id, client_query_id=client_query_id,
                    execution_id=execution_id, stop_on_cancel=True,
                ))
                if client_query_id else None
            )  # fmt: skip

            def cancelled() -> bool:
                return registration is not None and registration.is_cancelled()

            try:
                with QUERY_LANE.turn(
                    str(project.id),
                    abandoned=lambda: cancelled() or time.monotonic() > deadline,
                    also_wake_on=[registration.channel] if registration else [],
                ) as waited:
                    QUERY_LANE_WAIT.labels(project=str(project.id)).observe(waited)
                    outcome = _run_on_worker(
                        project=project, node=node, refresh="force_blocking", execution_id=execution_id,
                        on_started=lambda: None, abandoned=cancelled,
                        wake_on=[registration.channel] if registration else [],
                    )  # fmt: skip
            except TurnAbandoned:
                if cancelled():
                    raise QueryCancelled from None
                QUERY_LANE_REJECTIONS.labels(project=str(project.id)).inc()
                raise QueryTurnTimeout from None
        fields = {"complete": True, **outcome.as_json()}
    except DomainError as exc:
        fields = {"complete": True, "error": True, "error_message": _ASYNC_ERRORS.get(type(exc), exc.detail)}
    except Exception:
        logger.exception("Asynchronous query %s failed", query_id)
        fields = {"complete": True, "error": True, "error_message": "The query failed."}
    with contextlib.suppress(redis.exceptions.RedisError):
        query_status_set(project_id=project.id, query_id=query_id, **fields)


_ASYNC_ERRORS: dict[type[Exception], str] = {
    QueryCancelled: "Query cancelled.",
    QueryTimedOut: "The query ran past the time limit; narrow its date range or filters.",
    QueryLost: "The query's worker stopped before it finished; run it again.",
    QueryTurnTimeout: "Too many queries of this project are running; run it again later.",
}
