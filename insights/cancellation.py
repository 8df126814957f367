"""The registry of running queries, in Redis, keyed exactly by (project, user, client_query_id).

An execution registers while it runs; `query_cancel` finds it by the exact key (no prefixes or
wildcards: an empty or partial id matches nothing), marks it cancelled and publishes a wake-up on
its channel so the waiter stops at once. What the waiter then does with the database work is up to
the execution (insights/queries).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from infra import wakeups
from infra.redis import as_text, redis_client
from insights.query_runner import query_stop

logger = logging.getLogger(__name__)

CLIENT_QUERY_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,128}$")
REGISTRATION_TTL_SECONDS = 3600  # a crashed execution cannot stay "running" for ever


@dataclass(frozen=True)
class Registration:
    key: str

    @property
    def channel(self) -> str:
        return wakeups.channel(f"{self.key}:cancel")

    def is_cancelled(self) -> bool:
        return redis_client().hget(self.key, "cancelled") == b"1"


def _key(project_id: int, user_id: int, client_query_id: str) -> str:
    if not CLIENT_QUERY_ID.match(client_query_id):
        raise ValueError("client_query_id must be 1-128 characters of [A-Za-z0-9_.:-]")
    return f"running-query:{project_id}:{user_id}:{client_query_id}"


@contextmanager
def query_registration(
    *, project_id: int, user_id: int, client_query_id: str, execution_id: str, stop_on_cancel: bool = False
) -> Iterator[Registration]:
    """Register a running query for as long as the block runs. A waiting request handles its own
    cancellation (it knows whether others wait for the same execution); a background execution
    with nobody waiting (`stop_on_cancel`) is stopped by the cancel itself."""
    registration = Registration(_key(project_id, user_id, client_query_id))
    client = redis_client()
    client.hset(
        registration.key,
        mapping={"execution": execution_id, "cancelled": "0", "stop": "1" if stop_on_cancel else "0"},
    )
    client.expire(registration.key, REGISTRATION_TTL_SECONDS)
    try:
        yield registration
    finally:
        try:
            client.delete(registration.key)
        except redis.exceptions.RedisError:
            logger.warning("Could not unregister %s; it expires by itself", registration.key)


def query_cancel(*, project_id: int, user_id: int, client_query_id: str) -> bool:
    """Cancel the caller's running query with exactly this id. True if one was running. Without
    Redis nothing can be registered, so nothing is running that a cancel could reach."""
    try:
        return _cancel(Registration(_key(project_id, user_id, client_query_id)))
    except redis.exceptions.RedisError:
        logger.warning("Cancel found no registry: Redis unavailable")
        return False


def _cancel(registration: Registration) -> bool:
    client = redis_client()
    # Only an existing registration is marked: HSET on a missing key would create one.
    marked = client.eval(
        "if redis.call('exists', KEYS[1]) == 1 then redis.call('hset', KEYS[1], 'cancelled', '1') return 1 end return 0",
        1,
        registration.key,
    )
    if marked:
        wakeups.wake(registration.channel)
        execution, stop = client.hmget(registration.key, "execution", "stop")
        if stop == b"1" and execution:
            query_stop(as_text(execution))
    return bool(marked)
