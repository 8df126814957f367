"""The registry of waiting queries, keyed exactly by (project, user, client_query_id) (docs/insight-actions.md#cancel).

A request that waits for an execution's outcome registers its wait (`query_registration`); an
asynchronous run registers its execution for as long as the registration lives. `query_cancel` finds
the registration by the exact key (no prefixes or wildcards: an empty or partial id matches
nothing), marks it cancelled — which wakes the waiting request, which then answers 400
`query_cancelled` — and leaves the execution on the waiter's behalf: when nobody else waits for it,
the execution is abandoned and its query stops (insights/query_workers.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from infra.executions import Execution
from infra.records import Record, Transition
from infra.redis import redis_client

logger = logging.getLogger(__name__)

CLIENT_QUERY_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
REGISTRATION_TTL_SECONDS = 3600  # a crashed waiter cannot stay registered for ever

# Mark an existing registration cancelled (a missing one is not created); returns 1 if it was there.
_CANCEL = Transition("""
if redis.call('exists', KEYS[1]) == 0 then return 0 end
redis.call('hset', KEYS[1], 'cancelled', '1')
return 1
""")


@dataclass(frozen=True)
class Registration:
    record: Record

    @property
    def channel(self) -> str:
        return self.record.channel

    def cancelled(self) -> bool:
        return redis_client().hget(self.record.key, "cancelled") == b"1"


def _registration(project_id: int, user_id: int, client_query_id: str) -> Registration:
    if not CLIENT_QUERY_ID.match(client_query_id):
        raise ValueError("client_query_id must be 1-128 characters of [A-Za-z0-9_.:-]")
    key = f"running-query:{project_id}:{user_id}:{client_query_id}"
    return Registration(Record(key, ttl=REGISTRATION_TTL_SECONDS))


def query_register(
    *, project_id: int, user_id: int, client_query_id: str, execution: Execution, waiter: str
) -> Registration:
    """Register `waiter`'s wait for `execution` until it expires. Raises RedisError."""
    registration = _registration(project_id, user_id, client_query_id)
    registration.record.update({"execution": execution.id, "waiter": waiter, "cancelled": "0"})
    return registration


@contextmanager
def query_registration(
    *, project_id: int, user_id: int, client_query_id: str, execution: Execution, waiter: str
) -> Iterator[Registration]:
    """Register `waiter`'s wait for `execution` while the block runs. Raises RedisError."""
    registration = query_register(
        project_id=project_id, user_id=user_id, client_query_id=client_query_id, execution=execution,
        waiter=waiter,
    )  # fmt: skip
    try:
        yield registration
    finally:
        try:
            redis_client().delete(registration.record.key)
        except redis.exceptions.RedisError:
            logger.warning("Could not unregister %s; it expires by itself", registration.record.key)


def query_cancel(*, project_id: int, user_id: int, client_query_id: str) -> bool:
    """Cancel the caller's waiting query with exactly this id. True if one was waiting (again for a
    second cancel, while the wait has not ended: cancelling is idempotent). Without
    Redis nothing can be registered, so nothing waits that a cancel could reach."""
    registration = _registration(project_id, user_id, client_query_id)
    try:
        found = registration.record.read().fields
        if not found:
            return False
        execution = Execution(found["execution"])
        if execution.record.read()["state"] == "done":
            return False  # it has answered already
        if not registration.record.apply(_CANCEL):
            return False
        execution.leave(found["waiter"])
        return True
    except redis.exceptions.RedisError:
        logger.warning("Cancel found no registry: Redis unavailable")
        return False
