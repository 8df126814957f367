"""Coalescing: identical concurrent result requests run once (SPEC §6).

`CoalescingMiddleware` derives each eligible request's key — the project and the normalised request,
without `client_query_id` and `session_id` — and stamps the response with `X-Coalesced`.
`CoalescedResultMixin.coalesced()` runs the protocol, and a view calls it only after the request's
own authentication, permission, scope and object checks have passed, so a follower is re-checked
like any request and an invisible insight is a 404 for it, never the leader's body.

Protocol (Redis, keys under `coalesce:<hash>`):
1. Try `SET lock <token> NX PX 2 heartbeats`. Winning makes this request the leader: it computes in
   a background thread while a heartbeat thread renews the lock; the request itself then waits like
   everyone else, so a cancelled leader can answer at once while the work goes on for the others.
2. Everyone else follows the token in the lock: subscribe to `<key>:<token>`, and wake on a message
   or every half heartbeat to look for `<key>:<token>:done` or a lapsed lock (leader died → take over).
3. The leader publishes a 2xx or 5xx body for the followers; a 4xx is never shared: followers then
   compute for themselves.
4. A waiter whose caller cancels stops waiting; the last waiter to leave stops the database work.
If Redis cannot be reached, the request simply runs on its own (`X-Coalesced: off`).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.db import close_old_connections, connection
from django.http import HttpRequest, HttpResponse
from rest_framework.response import Response

from insights.cancellation import query_registration
from insights.query_runner import query_stop
from insights_api.api.exceptions import InvalidRequest
from insights_api.metrics import COALESCING_OUTCOMES, COALESCING_WAIT, QUERY_CANCELLATIONS
from insights_api.redis import redis_client

logger = logging.getLogger(__name__)

HEADER = "X-Coalesced"
# Per-request identifiers that must not split otherwise identical requests.
IGNORED_FIELDS = frozenset({"client_query_id", "session_id"})
DONE_TTL_SECONDS = 60
RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"

# What a view's `produce` returns: (HTTP status, JSON-serialisable body). It receives the execution
# key, under which a running query publishes its backend so that a cancel can stop it.
Produce = Callable[[str | None], tuple[int, Any]]


class QueryCancelledByCaller(Exception):
    """The caller cancelled its query (by client_query_id) while waiting."""


class CoalescingMiddleware:
    """Keys eligible requests (views list them in `coalesced_actions`) and labels their responses."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        role = getattr(request, "coalescing_role", None)
        if role is not None:
            response[HEADER] = role
        return response

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> None:
        view_class = getattr(view_func, "cls", None)
        action = (getattr(view_func, "actions", None) or {}).get(request.method.lower())
        if action and action in getattr(view_class, "coalesced_actions", ()):
            request.coalescing_key = coalescing_key(request)


def coalescing_key(request: HttpRequest) -> str:
    """The request minus what differs between identical requests: method, path (which names the
    project), query parameters and JSON body, each without client_query_id and session_id."""
    params = sorted(
        (name, value)
        for name, values in request.GET.lists()
        for value in values
        if name not in IGNORED_FIELDS
    )
    try:
        body: Any = json.loads(request.body or b"null")
        if isinstance(body, dict):
            body = {name: value for name, value in body.items() if name not in IGNORED_FIELDS}
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse: key the raw bytes
        body = request.body.hex()
    canonical = json.dumps(
        [request.method, request.path.rstrip("/"), params, body], sort_keys=True, default=str
    )
    return "coalesce:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Waiter:
    """Who waits: needed to honour a cancel of this request's client_query_id."""

    project_id: int
    user_id: int
    client_query_id: str | None


class CoalescedResultMixin:
    """For views whose result requests may be shared. Set `coalesced_actions` on the view."""

    coalesced_actions: tuple[str, ...] = ()

    def uncoalesced(self, body: Any) -> Response:
        """An answer with nothing to compute (a fresh cache hit), so nothing to share."""
        self.request._request.coalescing_role = "off"  # type: ignore[attr-defined]
        COALESCING_OUTCOMES.labels(role="off").inc()
        return Response(body)

    def coalesced(self, produce: Produce, *, waiter: Waiter) -> Response:
        request = self.request._request  # type: ignore[attr-defined]
        key = getattr(request, "coalescing_key", None)
        if key is None or not settings.COALESCING_ENABLED:
            status, body = produce(None)
            role = "off"
        else:
            try:
                status, body, role = Coalescer(key).run(produce, waiter=waiter)
            except QueryCancelledByCaller:
                raise InvalidRequest("The query was cancelled.", code="query_cancelled") from None
        COALESCING_OUTCOMES.labels(role=role).inc()
        request.coalescing_role = (
            "leader" if role == "takeover" else role
        )  # the header says leader|follower|off
        return Response(body, status=status)


class Coalescer:
    def __init__(self, key: str) -> None:
        self.key = key
        self.client = redis_client()
        self.heartbeat = settings.COALESCING_HEARTBEAT_SECONDS
        self.lock = f"{key}:lock"

    def run(self, produce: Produce, *, waiter: Waiter) -> tuple[int, Any, str]:
        started = time.monotonic()
        took_over = False
        while True:
            try:
                token = f"{os.getpid()}-{uuid.uuid4().hex}"  # names the leader's process, for operators
                if self.client.set(self.lock, token, nx=True, px=self._lock_ms()):
                    role = "takeover" if took_over else "leader"
                    local = self._lead(token, produce)
                else:
                    token, role, local = self.client.get(self.lock), "follower", None
                    if token is None:
                        continue  # the leader just finished; try to lead
                    token = token.decode()
            except redis.exceptions.RedisError:
                logger.warning("Coalescing off: Redis unavailable")
                return (*produce(None), "off")
            if not connection.in_atomic_block:
                # Waiting needs no database: the connection goes back to the pool for the waiter's
                # duration, so a crowd of followers does not hold a crowd of idle connections.
                connection.close()
            outcome = self._wait(token, waiter, local)
            if outcome is not None:
                if role == "follower":
                    COALESCING_WAIT.observe(time.monotonic() - started)
                return outcome[0], outcome[1], role
            took_over = True  # the leader died or its answer was not shareable: lead (or follow anew)

    # --- leader ------------------------------------------------------------------------------------

    def _lead(self, token: str, produce: Produce) -> Future[tuple[int, Any]]:
        """Start the work and its heartbeat in background threads; they outlive this request if the
        caller cancels, because followers may still be waiting for the answer.

        A request inside a transaction computes in its own thread instead (work for it must see its
        uncommitted writes, which only its own connection can); it then cannot hand the work over
        when its caller cancels.
        """
        result: Future[tuple[int, Any]] = Future()
        execution = f"{self.key}:{token}"
        inline = connection.in_atomic_block

        def work() -> None:
            try:
                result.set_result(produce(execution))
            except BaseException as exc:  # the request thread re-raises it
                result.set_exception(exc)
            finally:
                if not inline:
                    connection.close()  # this thread's connection goes back to the pool
            self._publish(token, result)

        def heartbeat() -> None:
            while not result.done():
                try:
                    self.client.eval(RENEW, 1, self.lock, token, self._lock_ms())
                except redis.exceptions.RedisError:
                    logger.warning("Coalescing heartbeat failed for %s", self.key)
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

    def _publish(self, token: str, result: Future[tuple[int, Any]]) -> None:
        payload = _shareable(result)
        try:
            pipe = self.client.pipeline()
            pipe.set(f"{self.key}:{token}:done", json.dumps(payload, default=str), ex=DONE_TTL_SECONDS)
            pipe.publish(f"{self.key}:{token}", "done")
            pipe.eval(RELEASE, 1, self.lock, token)
            pipe.execute()
        except redis.exceptions.RedisError:
            logger.warning("Could not publish the coalesced result of %s", self.key)

    # --- everyone ------------------------------------------------------------------------------------

    def _wait(
        self, token: str, waiter: Waiter, local: Future[tuple[int, Any]] | None
    ) -> tuple[int, Any] | None:
        """Wait for this execution's answer. None: nothing to replay (leader gone, or a 4xx)."""
        execution = f"{self.key}:{token}"
        waiters = f"{execution}:waiters"
        me = uuid.uuid4().hex
        with ExitStack() as stack:
            try:
                subscription = stack.enter_context(self._subscription(execution))
                registration = (
                    stack.enter_context(
                        query_registration(
                            project_id=waiter.project_id,
                            user_id=waiter.user_id,
                            client_query_id=waiter.client_query_id,
                            execution_id=execution,
                        )
                    )
                    if waiter.client_query_id
                    else None
                )
                if registration is not None:
                    subscription.subscribe(registration.channel)
                self.client.sadd(waiters, me)
                self.client.expire(waiters, DONE_TTL_SECONDS + settings.QUERY_TIMEOUT_MS // 1000)
            except redis.exceptions.RedisError:
                return local.result() if local is not None else None
            try:
                while True:
                    if local is not None and local.done():
                        return local.result()
                    if registration is not None and registration.is_cancelled():
                        self._leave(waiters, me, execution)
                        raise QueryCancelledByCaller
                    if local is None:
                        done = self.client.get(f"{execution}:done")
                        if done is None and self.client.get(self.lock) != token.encode():
                            # The lock lapsed: the leader died, unless it answered just now.
                            done = self.client.get(f"{execution}:done")
                            if done is None:
                                return None
                        if done is not None:
                            payload = json.loads(done)
                            return (payload["status"], payload["body"]) if payload["shared"] else None
                    subscription.get_message(timeout=self.heartbeat / 2)
            except redis.exceptions.RedisError:
                logger.warning("Coalescing off mid-wait: Redis unavailable")
                return local.result() if local is not None else None
            finally:
                with suppress(redis.exceptions.RedisError):
                    self.client.srem(waiters, me)
        return None  # pragma: no cover - the loop always returns or raises

    def _leave(self, waiters: str, me: str, execution: str) -> None:
        """Stop waiting; if nobody else waits for this execution, stop its database work."""
        QUERY_CANCELLATIONS.labels(effect="waiter").inc()
        self.client.srem(waiters, me)
        if self.client.scard(waiters) == 0:
            close_old_connections()
            if query_stop(execution):
                QUERY_CANCELLATIONS.labels(effect="backend").inc()

    @contextmanager
    def _subscription(self, channel: str) -> Iterator[Any]:
        subscription = self.client.pubsub(ignore_subscribe_messages=True)
        subscription.subscribe(channel)
        try:
            yield subscription
        finally:
            subscription.close()

    def _lock_ms(self) -> int:
        return int(self.heartbeat * 2000)


SERVER_ERROR = {"type": "server_error", "code": "error", "detail": "A server error occurred.", "attr": None}


def _shareable(result: Future[tuple[int, Any]]) -> dict[str, Any]:
    """What followers may replay: a 2xx or 5xx answer; a 4xx (or an exception that is one) is not."""
    error = result.exception()
    if error is None:
        status, body = result.result()
    else:
        status, body = getattr(error, "status_code", 500), SERVER_ERROR
    shared = status < 400 or status >= 500
    return {
        "shared": shared,
        "status": status,
        "body": (body if error is None else SERVER_ERROR) if shared else None,
    }
