"""The life of a result request — insight retrieve and `POST …/query/` (docs/code-tour.md).

`result_answer()` answers a request whose own checks (authentication, scope, access to the insight)
have passed, in six steps:

1. Cached? The refresh mode may answer from the results cache without computing: `blocking` and
   `async` a fresh result, `force_cache` whatever is cached (insights/query_runner.py). An `async`
   or `force_async` request that must compute starts a run nobody waits for (steps 3 and 4) and
   answers its status at once (`query_status()` follows it).
2. Join or lead: identical requests share one execution (infra/executions.py). The first leads,
   the others follow; one that arrived while an execution ran but reaches `join` only after it
   finished (its own checks took that long) reuses that execution's outcome, as it would have
   followed it.
3. The leader's driver, in the background (the others may still wait when the leader's own caller
   gives up), waits for the project's turn in the query lane: at most QUERY_CONCURRENCY_PER_PROJECT
   of a project's executions run at once, the others queue in arrival order (infra/lanes.py) ...
4. ... then hands the execution to a query worker (insights/query_workers.py), which claims it,
   computes it, caches the results and publishes the outcome into the execution.
5. Every request, the leader's included, waits for the outcome, holding no work slot and no
   database connection: the results, or an error of the work shared by all (timeout, no query
   worker, the worker lost); or an end of its own — a cancel of its client_query_id (400), no turn
   for its project within QUERY_QUEUE_TIMEOUT_SECONDS (429), Redis away for REDIS_OUTAGE_SECONDS (503).
6. Render: the route's `render` turns the result fields into its body, once per execution in a
   process (its waiters there share the body; the view adds each caller's own access level).

Without Redis there is nothing to join: the request computes in this process (`_computed_here`),
sharing the computation with the identical requests of the process, at most
QUERY_CONCURRENCY_PER_PROJECT per project and QUERY_LOCAL_CONCURRENCY in all, waiting without a work
slot. A request inside a transaction (only tests make one) computes inline: its uncommitted rows
are visible to its own connection alone.

Each failure becomes a DomainError once, where it is known: a query's own (timeout, cancel) in
query_runner, the query workers' in query_workers, the rest (below) here.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Literal, cast

import redis
from django.conf import settings
from django.db import connection

from accounts.models import Project
from infra import slots
from infra.errors import DomainError, ErrorJSON, PublishedError, Unavailable
from infra.executions import LOST, Execution, is_abandoned, join
from infra.json_types import JSONObject
from infra.lanes import LocalLane, TurnAbandoned
from infra.metrics import (
    COALESCING_OUTCOMES,
    COALESCING_WAIT,
    QUERY_CANCELLATIONS,
    QUERY_LANE_REJECTIONS,
    QUERY_LANE_WAIT,
)
from infra.records import DeadlinePassed, RedisLost, Snapshot, retried
from insights.cancellation import Registration, query_register, query_registration
from insights.query_nodes import AnyQueryNode
from insights.query_runner import QueryCancelled, QueryOutcome, RefreshMode, query_cached, query_compute
from insights.query_workers import QUERY_LANE, QueryFailed, hand_off

logger = logging.getLogger(__name__)

Render = Callable[[JSONObject], JSONObject]  # the result fields → the route's body
Role = Literal["leader", "follower", "off"]
ASYNC_WAITER = "async"  # the one "waiter" of an asynchronous run: its caller's cancel removes it
STATUS_TTL_SECONDS = 3600  # how long an asynchronous run's status is kept
REJOIN: JSONObject = {"rejoin": True}  # the execution ended without an answer for its waiters


class TooManyConcurrentQueries(DomainError):
    """The project ran its share of queries for longer than the request's queue bound."""

    status = 429
    code = "too_many_concurrent_queries"
    type = "throttled_error"
    default_detail = "Too many queries of this project are running; no turn came for this one in time."

    def __init__(self) -> None:
        super().__init__()
        self.retry_after = settings.QUERY_QUEUE_TIMEOUT_SECONDS


class QueryLost(Unavailable):
    """The worker running the query stopped before it answered."""

    of_the_work = True
    default_detail = "The query's worker stopped before it finished; run it again."


class ResultsUnavailable(Unavailable):
    """Redis, where executions live, stayed unreachable while the request waited."""

    default_detail = "The query's state became unreachable (Redis); run it again."

    def __init__(self) -> None:
        super().__init__()
        self.retry_after = settings.REDIS_OUTAGE_SECONDS


class AsyncQueriesUnavailable(Unavailable):
    """An asynchronous run's status lives in Redis: without Redis there is none."""

    default_detail = "Asynchronous queries need Redis; use refresh=blocking."


@dataclass(frozen=True)
class ResultRequest:
    """A result request, parsed and checked by its view."""

    project: Project
    user_id: int
    node: AnyQueryNode
    refresh: RefreshMode
    client_query_id: str | None
    coalescing_key: str  # equal for identical requests (apikit/coalescing.py)
    arrived: float  # time.monotonic() when it arrived


@dataclass(frozen=True)
class ResultAnswer:
    body: JSONObject
    role: Role  # X-Coalesced
    started: bool = False  # an asynchronous run started instead


def result_answer(request: ResultRequest, *, render: Render) -> ResultAnswer:
    """The answer to a result request (see the module for the steps)."""
    # 1. Cached?
    cached = query_cached(project=request.project, node=request.node, refresh=request.refresh)
    if cached is not None:
        return _answered(render(_fields(cached)), "off")
    if request.refresh in ("async", "force_async"):
        return _answered(render(_run_later(request)), "off", started=True)
    if connection.in_atomic_block:
        return _answered(render(_fields(query_compute(project=request.project, node=request.node))), "off")

    # 2. Join or lead (3 and 4 follow in the leader's background), 5. wait.
    waiter, holder = uuid.uuid4().hex, f"{os.getpid()}-{uuid.uuid4().hex}"  # the holder names the process
    led = False
    while True:
        try:
            age = time.monotonic() - request.arrived
            joined = join(request.coalescing_key, waiter=waiter, holder=holder, max_age=age)
        except redis.exceptions.RedisError:
            return _answered(render(_fields(_computed_here(request))), "off")
        led = led or joined.role == "leader"
        if joined.role == "reused":
            outcome = joined.outcome
            break
        if joined.role == "leader":
            _drive_in_background(joined.execution, request, holder)
        outcome = _awaited(joined.execution, request, waiter)
        if outcome is not REJOIN:
            break  # else the leader died before handing the work over: join again (one leads)

    # 6. Render.
    assert outcome is not None
    fields = _result_fields(outcome)
    body = _RENDERED.once(joined.execution.id, lambda: render(fields))
    return _answered(body, "leader" if led else "follower")


def _answered(body: JSONObject, role: Role, *, started: bool = False) -> ResultAnswer:
    COALESCING_OUTCOMES.labels(role=role).inc()
    return ResultAnswer(body, role, started)


def _fields(outcome: QueryOutcome) -> JSONObject:
    return {**outcome.as_json(), "query_status": None}


def _result_fields(outcome: JSONObject) -> JSONObject:
    """The result fields of a published outcome, or its error raised as this caller's."""
    if "error" in outcome:
        raise PublishedError(cast(ErrorJSON, outcome["error"]))  # as `DomainError.as_json()` wrote it
    if outcome.get("lost"):
        raise QueryLost
    value = outcome["value"]
    assert isinstance(value, dict)  # a QueryOutcome's `as_json()`
    return {**value, "query_status": None}


# --- 3. and 4.: the leader's driver --------------------------------------------------------------------


def _drive_in_background(
    execution: Execution, request: ResultRequest, holder: str, *, deadline: float | None = None
) -> None:
    """Start the driver on a thread of its own (a greenlet under gevent), carrying the request's
    context (its request id, on log lines and into the worker's task)."""
    drive = contextvars.copy_context().run
    threading.Thread(
        target=drive, args=(_drive, execution, request.project, request.node, holder, deadline),
        name=f"drive {execution.id[-8:]}", daemon=True,
    ).start()  # fmt: skip


def _drive(
    execution: Execution, project: Project, node: AnyQueryNode, holder: str, deadline: float | None
) -> None:
    """Hold the execution's lease while it waits for the project's turn (3) and until a query
    worker claims it (4); publish its failure if it cannot run. An abandoned execution (nobody
    waits) just stops; an asynchronous run has a `deadline` for its turn, since nobody waits."""
    tenant = str(project.id)
    renew_turn = lambda pipe: QUERY_LANE.renew(pipe, tenant, execution.id)  # noqa: E731
    try:
        with execution.record.lease.held(holder, also=renew_turn):
            try:
                waited = QUERY_LANE.take(
                    tenant, execution.id, abandoned=lambda: is_abandoned(execution.record.read()),
                    also_wake_on=[execution.record.channel], deadline=deadline,
                )  # fmt: skip
                QUERY_LANE_WAIT.labels(project=tenant).observe(waited)
                if not hand_off(execution, project=project, node=node):
                    QUERY_LANE.release(tenant, execution.id)  # abandoned before a worker took it
            except (TurnAbandoned, RedisLost):
                raise
            except DeadlinePassed:
                QUERY_LANE_REJECTIONS.labels(project=tenant).inc()
                _failed(execution, TooManyConcurrentQueries())
            except redis.exceptions.RedisError:
                QUERY_LANE.release(tenant, execution.id)
                _failed(execution, ResultsUnavailable())
            except DomainError as error:
                QUERY_LANE.release(tenant, execution.id)
                _failed(execution, error)
            except Exception:
                logger.exception("Driving %s failed", execution.id)
                QUERY_LANE.release(tenant, execution.id)
                _failed(execution, QueryFailed())
    except (TurnAbandoned, RedisLost):
        pass  # nobody waits any more; or Redis stayed away, and the waiters give up by themselves


def _failed(execution: Execution, error: DomainError) -> None:
    """Every waiter of an execution that could not run answers its error."""
    retried(lambda: execution.finish({"error": error.as_json()}, states=("turn", "queued")))


# --- 5.: waiting for the outcome -----------------------------------------------------------------------


def _awaited(execution: Execution, request: ResultRequest, waiter: str) -> JSONObject:
    """The execution's outcome, or REJOIN. Raises QueryCancelled, TooManyConcurrentQueries,
    ResultsUnavailable."""
    # The bound counts the wait for the project's turn, not the request's time before it joined.
    bound = time.monotonic() + settings.QUERY_QUEUE_TIMEOUT_SECONDS
    waiting_since = time.monotonic()
    if not connection.in_atomic_block:
        connection.close()  # waiting needs no database: the connection goes back to the pool
    with _registered(request, execution, waiter) as registration:

        def until(snapshot: Snapshot) -> JSONObject | None:
            if registration is not None and registration.cancelled():
                raise QueryCancelled
            if is_abandoned(snapshot):  # its leader died before handing it over
                return REJOIN
            if snapshot["state"] == "done":
                return snapshot.json("outcome")
            if snapshot.holder_gone:
                settled = execution.settle()
                return LOST if settled == "lost" else REJOIN if settled == "rejoin" else None
            if snapshot["state"] == "turn" and time.monotonic() >= bound:
                raise TooManyConcurrentQueries
            return None

        also = [registration.channel] if registration is not None else []
        try:
            with slots.waiting():
                outcome = execution.record.wait(until, deadline=None, also=also)
        except QueryCancelled:
            QUERY_CANCELLATIONS.labels(effect="waiter").inc()
            raise
        except TooManyConcurrentQueries:
            QUERY_LANE_REJECTIONS.labels(project=str(request.project.id)).inc()
            with suppress(redis.exceptions.RedisError):
                execution.leave(waiter)  # the last one out abandons the execution
            raise
        except RedisLost:
            raise ResultsUnavailable from None
    COALESCING_WAIT.observe(time.monotonic() - waiting_since)
    return outcome


@contextmanager
def _registered(request: ResultRequest, execution: Execution, waiter: str) -> Iterator[Registration | None]:
    """The wait, registered under the caller's client_query_id for `cancel` to find."""
    if request.client_query_id is None:
        yield None
        return
    with query_registration(
        project_id=request.project.id, user_id=request.user_id, client_query_id=request.client_query_id,
        execution=execution, waiter=waiter,
    ) as registration:  # fmt: skip
        yield registration


# --- 6.: rendering once per execution and process ------------------------------------------------------


class _Rendered:
    """Bodies rendered from an execution's outcome by the waiters of this process: the first renders,
    the others (arriving meanwhile or later) use its body, or its error."""

    SIZE = 128

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: OrderedDict[str, Future[JSONObject]] = OrderedDict()

    def once(self, execution_id: str, render: Callable[[], JSONObject]) -> JSONObject:
        with self._lock:
            body = self._bodies.get(execution_id)
            first = body is None
            if body is None:
                body = self._bodies[execution_id] = Future()
                while len(self._bodies) > self.SIZE:
                    self._bodies.popitem(last=False)
        if first:
            try:
                body.set_result(render())
            except BaseException as error:
                body.set_exception(error)
        elif not body.done():
            with slots.waiting():  # a wait for the first request's render, which needs no slot of ours
                body.result()
        return body.result()


_RENDERED = _Rendered()


# --- Without Redis -------------------------------------------------------------------------------------

_HERE = LocalLane(
    limit=lambda: settings.QUERY_CONCURRENCY_PER_PROJECT, total=lambda: settings.QUERY_LOCAL_CONCURRENCY
)
_here_lock = threading.Lock()
_here_runs: dict[str, Future[QueryOutcome]] = {}


def _computed_here(request: ResultRequest) -> QueryOutcome:
    """Compute in this process, once for the identical requests of the process, within the local
    lane's bounds; every request waits holding no work slot."""
    with _here_lock:
        run = _here_runs.get(request.coalescing_key)
        first = run is None
        if run is None:
            run = _here_runs[request.coalescing_key] = Future()
    with slots.waiting():
        if first:
            try:
                deadline = request.arrived + settings.QUERY_QUEUE_TIMEOUT_SECONDS
                with _HERE.turn(str(request.project.id), deadline=deadline):
                    run.set_result(query_compute(project=request.project, node=request.node))
            except DeadlinePassed:
                QUERY_LANE_REJECTIONS.labels(project=str(request.project.id)).inc()
                run.set_exception(TooManyConcurrentQueries())
            except BaseException as error:
                run.set_exception(error)
            finally:
                with _here_lock:
                    del _here_runs[request.coalescing_key]
        return run.result()


# --- Asynchronous runs ---------------------------------------------------------------------------------


def _async_execution(project_id: int, query_id: str) -> Execution:
    return Execution(f"async:{{{project_id}:{query_id}}}:run")


def _run_later(request: ResultRequest) -> JSONObject:
    """Start an execution nobody waits for (steps 3 and 4, bounded by QUERY_QUEUE_TIMEOUT_SECONDS
    for its turn) and answer the result fields of a run that started; `query_status()` follows it.
    A cancel of its client_query_id abandons it."""
    query_id = uuid.uuid4().hex
    execution = _async_execution(request.project.id, query_id)
    holder = f"{os.getpid()}-{uuid.uuid4().hex}"
    try:
        join(
            execution.key, waiter=ASYNC_WAITER, holder=holder, max_age=-1, token="run", ttl=STATUS_TTL_SECONDS
        )
        if request.client_query_id is not None:  # kept until it expires: the run outlives this request
            query_register(
                project_id=request.project.id, user_id=request.user_id,
                client_query_id=request.client_query_id, execution=execution, waiter=ASYNC_WAITER,
            )  # fmt: skip
    except redis.exceptions.RedisError:
        raise AsyncQueriesUnavailable from None
    deadline = time.monotonic() + settings.QUERY_QUEUE_TIMEOUT_SECONDS
    _drive_in_background(execution, request, holder, deadline=deadline)
    return {
        "results": None, "is_cached": False, "last_refresh": None, "timezone": request.project.timezone,
        "query_status": _status(query_id),
    }  # fmt: skip


INTERRUPTED = "The query was interrupted before it finished; run it again."


def query_status(*, project_id: int, query_id: str) -> JSONObject | None:
    """The status of an asynchronous run (None: no such run, or older than an hour). Raises RedisError."""
    execution = _async_execution(project_id, query_id)
    snapshot = execution.record.read()
    if not snapshot.fields:
        return None
    outcome = snapshot.json("outcome") if snapshot["state"] == "done" else None
    if outcome is None and is_abandoned(snapshot):
        return _status(query_id, error=QueryCancelled.default_detail)
    if outcome is None and snapshot.holder_gone:
        settled = execution.settle()
        if settled in ("lost", "rejoin"):
            return _status(query_id, error=QueryLost.default_detail if settled == "lost" else INTERRUPTED)
        outcome = execution.record.read().json("outcome")
    if outcome is None:
        return _status(query_id)
    try:
        return _status(query_id, fields=_result_fields(outcome))
    except DomainError as error:
        return _status(query_id, error=error.detail)


def _status(query_id: str, *, fields: JSONObject | None = None, error: str | None = None) -> JSONObject:
    status: JSONObject = {
        "id": query_id,
        "complete": False,
        "error": False,
        "error_message": None,
        "results": None,
    }
    if fields is not None:
        status.update(
            complete=True, **{name: value for name, value in fields.items() if name != "query_status"}
        )
    if error is not None:
        status.update(complete=True, error=True, error_message=error)
    return status
