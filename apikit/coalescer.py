"""The coalescing protocol: one execution of a piece of work for everyone who asks for it at once.

Keys `<key>:…` in Redis, one execution at a time per key (`<key>` is `coalesce:{<hash>}`; the braces
keep a key's data on one Redis Cluster node):
1. Join, in one script: if an execution runs, follow it. Else, if the last answer is still kept and
   its execution started after the request arrived, use it (it is as fresh as any the request
   could start). Else lead: take the lock, a lease renewed every heartbeat, and start the work in
   the background. The leader's request then waits like everyone else, so its caller may cancel
   without stopping the work for the others.
2. The work says when it has really started (`Execution.started()`, e.g. when a query worker picks
   it up). Until then a waiter gives up after its own bound (`Waiter.turn_seconds`: TurnNotReached).
3. The answer is published once: a 2xx or 5xx body for everyone; an error of the work itself
   (a DomainError `of_the_work`, e.g. a timeout) re-raised by each waiter; any other 4xx for nobody (followers
   then run the work themselves).
4. A waiter whose caller cancels, or whose bound passes, leaves; the last one out abandons the
   execution: `Execution.abandoned()` turns true and `stop(execution id)` stops the work.
5. A follower that finds the lock lapsed (the leader's process died) takes over.

Waiters sleep on the process's one wake-up subscription (infra/wakeups.py), and the waiters
of one execution in one process share their reads of its state: a crowd costs Redis one read per
process per wake-up or poll interval, not one per request.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import Any, Protocol

import redis
from django.conf import settings
from django.db import connection
from rest_framework import exceptions

from infra import slots, wakeups
from infra.errors import DomainError, PublishedError
from infra.metrics import COALESCING_WAIT
from infra.redis import redis_client

logger = logging.getLogger(__name__)

DONE_TTL_SECONDS = 60
# How long an execution's bookkeeping outlives its last heartbeat (its waiters read it meanwhile).
STATE_TTL_SECONDS = 600

# Follow a running execution, reuse an answer that started after the request arrived, or lead.
_JOIN = """
local lock, done = KEYS[1], KEYS[2]
local clock = redis.call('time')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local holder = redis.call('get', lock)
if holder then return {'follow', holder} end
local last = redis.call('hmget', done, 'started', 'shared', 'payload')
if last[1] and last[2] == '1' and tonumber(last[1]) >= now - tonumber(ARGV[3]) then
    return {'reuse', last[3]}
end
redis.call('set', lock, ARGV[1], 'PX', ARGV[2])
return {'lead', tostring(now)}
"""
# Keep the newest answer (an execution that lost its lock may finish after its successor), free the
# lock if still ours, and wake the execution's waiters.
_PUBLISH = """
local done, lock = KEYS[1], KEYS[2]
local token, started = ARGV[1], tonumber(ARGV[2])
local current = redis.call('hget', done, 'started')
if not current or tonumber(current) <= started then
    redis.call('hset', done, 'token', token, 'started', started, 'shared', ARGV[3], 'payload', ARGV[4])
    redis.call('expire', done, ARGV[5])
end
if redis.call('get', lock) == token then redis.call('del', lock) end
redis.call('publish', ARGV[6], 'done')
return 1
"""
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
# A waiter leaves; the last one out marks the execution abandoned (1) so that its work stops.
_LEAVE = """
redis.call('srem', KEYS[1], ARGV[1])
if redis.call('scard', KEYS[1]) == 0 then
    redis.call('hset', KEYS[2], 'abandoned', '1')
    redis.call('expire', KEYS[2], ARGV[2])
    redis.call('publish', ARGV[3], 'abandoned')
    return 1
end
return 0
"""

# What the work returns: (HTTP status, JSON-serialisable body).
Produce = Callable[["Execution | None"], tuple[int, Any]]
SERVER_ERROR = {"type": "server_error", "code": "error", "detail": "A server error occurred.", "attr": None}


class CallerCancelled(Exception):
    """The caller cancelled its request while it waited."""


class TurnNotReached(Exception):
    """The work had not started when the waiter's bound for its turn passed."""


class Cancellation(Protocol):
    """How a waiter learns that its caller cancelled."""

    @property
    def channel(self) -> str: ...

    def is_cancelled(self) -> bool: ...


@dataclass(frozen=True)
class Waiter:
    """Who waits, and on what terms."""

    arrived: float  # time.monotonic() when the request arrived
    turn_seconds: float | None = None  # how long to wait, once joined, for the work to start; None: no bound
    # Registers this wait on an execution (by its id) so that the caller can cancel it.
    cancellation: Callable[[str], AbstractContextManager[Cancellation | None]] | None = None


class Execution:
    """What the work of one execution is handed: its id (unique; a prefix for keys of its own),
    the wake-up channel of its waiters, and the two signals between it and them."""

    def __init__(self, key: str, token: str) -> None:
        self.id = f"{key}:{token}"
        self.channel = wakeups.channel(self.id)
        self.state = f"{self.id}:state"

    def started(self) -> None:
        """The work has really started: waiters stop counting their turn."""
        with suppress(redis.exceptions.RedisError):
            pipe = redis_client().pipeline()
            pipe.hset(self.state, "started", "1")
            pipe.expire(self.state, STATE_TTL_SECONDS)
            wakeups.wake(self.channel, pipeline=pipe)
            pipe.execute()

    def abandoned(self) -> bool:
        """Nobody waits for the answer any more: the work may stop."""
        try:
            return redis_client().hget(self.state, "abandoned") == b"1"
        except redis.exceptions.RedisError:
            return False


@dataclass(frozen=True)
class Outcome:
    status: int
    body: Any


@dataclass(frozen=True)
class _State:
    """An execution's state as read from Redis, the published answer decoded."""

    answered: bool  # its answer is published (`answer`, possibly None: not for followers)
    answer: dict[str, Any] | None
    running: bool  # its lock is still held
    started: bool


class _SharedReads:
    """The last read of each execution this process waits for, shared by its waiters: a read is
    reused until a wake-up arrives on the execution's channel or it is older than `max_age`."""

    @dataclass
    class _Entry:
        lock: threading.Lock
        waiters: int = 0
        state: _State | None = None
        generation: int = -1
        read_at: float = 0.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _SharedReads._Entry] = {}

    @contextmanager
    def sharing(self, execution: Execution) -> Iterator[None]:
        with self._lock:
            entry = self._entries.setdefault(execution.id, self._Entry(threading.Lock()))
            entry.waiters += 1
        try:
            yield
        finally:
            with self._lock:
                entry.waiters -= 1
                if entry.waiters == 0:
                    del self._entries[execution.id]

    def read(self, coalescer: Coalescer, execution: Execution, token: str, *, max_age: float) -> _State:
        entry = self._entries[execution.id]
        with entry.lock:  # one waiter reads, the others of this process use its read
            generation = wakeups.WAKEUPS.generation(execution.channel)
            if (
                entry.state is None
                or entry.generation != generation
                or time.monotonic() - entry.read_at > max_age
            ):
                entry.state = coalescer.read_state(execution, token)
                entry.generation, entry.read_at = generation, time.monotonic()
            return entry.state


SHARED_READS = _SharedReads()


class Coalescer:
    def __init__(self, key: str, *, stop: Callable[[str], None]) -> None:
        self.key = key
        self.stop = stop
        self.client = redis_client()
        self.heartbeat = settings.COALESCING_HEARTBEAT_SECONDS
        self.lock = f"{key}:lock"
        self.done = f"{key}:done"

    def run(self, produce: Produce, *, waiter: Waiter) -> tuple[int, Any, str]:
        """The answer, and this request's role: leader, takeover (a follower that led), follower
        or off (Redis unreachable: computed alone)."""
        took_over = False
        while True:
            try:
                token = f"{os.getpid()}-{uuid.uuid4().hex}"  # names the leader's process, for operators
                age_ms = int((time.monotonic() - waiter.arrived) * 1000)
                decision, value = self.client.eval(
                    _JOIN, 2, self.lock, self.done, token, self._lock_ms(), age_ms
                )
            except redis.exceptions.RedisError:
                logger.warning("Coalescing off: Redis unavailable")
                return (*produce(None), "off")
            decision = decision.decode()
            if decision == "reuse":
                outcome = _answer(json.loads(value))
                assert outcome is not None  # only shared answers are reused
                return outcome.status, outcome.body, "follower"
            if decision == "lead":
                role, local = ("takeover" if took_over else "leader"), self._lead(token, int(value), produce)
            else:
                role, local, token = "follower", None, value.decode()
            if not connection.in_atomic_block:
                # Waiting needs no database: the connection goes back to the pool meanwhile.
                connection.close()
            started = time.monotonic()
            outcome = self._wait(Execution(self.key, token), token, waiter, local)
            if outcome is not None:
                if role == "follower":
                    COALESCING_WAIT.observe(time.monotonic() - started)
                return outcome.status, outcome.body, role
            took_over = True  # the leader died, or its answer was not shareable: lead (or follow anew)

    def read_state(self, execution: Execution, token: str) -> _State:
        pipe = self.client.pipeline()  # one snapshot: MULTI/EXEC
        pipe.hmget(self.done, "token", "payload")
        pipe.get(self.lock)
        pipe.hget(execution.state, "started")
        (done_token, payload), holder, started = pipe.execute()
        answered = done_token == token.encode()
        return _State(
            answered=answered,
            answer=json.loads(payload) if answered else None,
            running=holder == token.encode(),
            started=started is not None,
        )

    # --- leader ------------------------------------------------------------------------------------

    def _lead(self, token: str, started_ms: int, produce: Produce) -> Future[tuple[int, Any]]:
        """Start the work and its heartbeat in the background; they outlive this request if its
        caller cancels, because followers may still be waiting for the answer.

        A request inside a transaction computes in its own thread instead (work for it must see its
        uncommitted writes, which only its own connection can); it cannot hand the work over then.
        """
        result: Future[tuple[int, Any]] = Future()
        execution = Execution(self.key, token)
        inline = connection.in_atomic_block

        def work() -> None:
            try:
                result.set_result(produce(execution))
            except BaseException as exc:  # the waiting requests re-raise or share it
                result.set_exception(exc)
            finally:
                if not inline:
                    connection.close()  # this thread's connection goes back to the pool
            self._publish(token, started_ms, execution, result)

        def heartbeat() -> None:
            while not result.done():
                try:
                    pipe = self.client.pipeline()
                    pipe.eval(_RENEW, 1, self.lock, token, self._lock_ms())
                    pipe.expire(execution.state, STATE_TTL_SECONDS)
                    pipe.expire(f"{execution.id}:waiters", STATE_TTL_SECONDS)
                    pipe.execute()
                except redis.exceptions.RedisError:
                    logger.warning("Coalescing heartbeat failed for %s", self.key, exc_info=True)
                time.sleep(self.heartbeat)

        threading.Thread(target=heartbeat, name=f"heartbeat-{token[:8]}", daemon=True).start()
        if inline:
            work()
        else:
            # The work carries the request's context (its request id on log lines) into its thread.
            context = contextvars.copy_context()
            threading.Thread(
                target=context.run, args=(work,), name=f"coalesce-{token[:8]}", daemon=True
            ).start()
        return result

    def _publish(
        self, token: str, started_ms: int, execution: Execution, result: Future[tuple[int, Any]]
    ) -> None:
        payload = _payload(result)
        try:
            self.client.eval(
                _PUBLISH, 2, self.done, self.lock, token, started_ms, "1" if payload["shared"] else "0",
                json.dumps(payload, default=str), DONE_TTL_SECONDS, execution.channel,
            )  # fmt: skip
        except redis.exceptions.RedisError:
            logger.warning("Could not publish the coalesced result of %s", self.key)

    # --- everyone ------------------------------------------------------------------------------------

    def _wait(
        self, execution: Execution, token: str, waiter: Waiter, local: Future[tuple[int, Any]] | None
    ) -> Outcome | None:
        """Wait for this execution's answer. None: nothing to replay (the leader is gone, or its
        answer was a 4xx for it alone)."""
        waiters = f"{execution.id}:waiters"
        me = uuid.uuid4().hex
        # The bound counts this wait for the work to start, not the request's time before it joined
        # (its checks, a wait for a work slot).
        deadline = None if waiter.turn_seconds is None else time.monotonic() + waiter.turn_seconds
        with ExitStack() as stack:
            try:
                registration = (
                    stack.enter_context(waiter.cancellation(execution.id)) if waiter.cancellation else None
                )
                channels = [execution.channel] + ([registration.channel] if registration else [])
                woken = stack.enter_context(wakeups.WAKEUPS.watching(channels))
                stack.enter_context(SHARED_READS.sharing(execution))
                pipe = self.client.pipeline()
                pipe.sadd(waiters, me)
                pipe.expire(waiters, STATE_TTL_SECONDS)
                pipe.execute()
            except redis.exceptions.RedisError:
                return _local_outcome(local) if local is not None else None
            stack.enter_context(slots.waiting())
            try:
                while True:
                    woken.clear()
                    if local is not None and local.done():
                        return _local_outcome(local)
                    if registration is not None and registration.is_cancelled():
                        self._leave(waiters, me, execution)
                        raise CallerCancelled
                    state = SHARED_READS.read(self, execution, token, max_age=self.heartbeat / 2)
                    if local is None:
                        if state.answered:
                            assert state.answer is not None
                            return _answer(state.answer)
                        if not state.running:
                            return None  # the lock lapsed without an answer: the leader died
                    if deadline is not None and not state.started and time.monotonic() >= deadline:
                        self._leave(waiters, me, execution)
                        raise TurnNotReached
                    timeout = self.heartbeat / 2
                    if deadline is not None and not state.started:
                        timeout = max(0.01, min(timeout, deadline - time.monotonic()))
                    woken.wait(timeout)
            except redis.exceptions.RedisError:
                logger.warning("Coalescing off mid-wait: Redis unavailable")
                return _local_outcome(local) if local is not None else None
            finally:
                with suppress(redis.exceptions.RedisError):
                    self.client.srem(waiters, me)

    def _leave(self, waiters: str, me: str, execution: Execution) -> None:
        """Stop waiting; if nobody else waits for this execution, stop its work."""
        if self.client.eval(_LEAVE, 2, waiters, execution.state, me, STATE_TTL_SECONDS, execution.channel):
            self.stop(execution.id)

    def _lock_ms(self) -> int:
        return int(self.heartbeat * 2000)


def _payload(result: Future[tuple[int, Any]]) -> dict[str, Any]:
    """What the waiters may use: a 2xx or 5xx answer, or an error of the work itself."""
    error = result.exception()
    if error is None:
        status, body = result.result()
        shared = status < 400 or status >= 500
        return {"shared": shared, "status": status, "body": body if shared else None}
    if isinstance(error, DomainError) and error.of_the_work:
        return {"shared": False, "error": error.as_json()}
    status = error.status if isinstance(error, DomainError) else getattr(error, "status_code", 500)
    if status >= 500:
        return {"shared": True, "status": status, "body": _envelope(error)}
    return {"shared": False, "status": status, "body": None}


def _envelope(error: BaseException) -> dict[str, Any]:
    """The error envelope of an exception raised by the work (a bug: the generic server error)."""
    if isinstance(error, DomainError):
        return {key: value for key, value in error.as_json().items() if key != "status"}
    if isinstance(error, exceptions.APIException) and isinstance(error.detail, str):
        return {
            "type": getattr(error, "default_type", "server_error"),
            "code": error.get_codes(),
            "detail": str(error.detail),
            "attr": None,
        }
    return SERVER_ERROR


def _answer(payload: dict[str, Any]) -> Outcome | None:
    """A published answer as this waiter's own: the shared body, a re-raised error of the work, or
    None (a 4xx of the leader's alone)."""
    if "error" in payload:
        raise PublishedError(payload["error"])
    return Outcome(payload["status"], payload["body"]) if payload["shared"] else None


def _local_outcome(local: Future[tuple[int, Any]]) -> Outcome:
    """The leader's own answer: its result, or its exception re-raised as-is."""
    status, body = local.result()
    return Outcome(status, body)
