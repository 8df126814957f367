"""Lanes: bounded, fair capacity for heavy work, per tenant, shared by every process (docs/workload-isolation.md).

A lane lets at most `limit` turns of one tenant (a project) run at the same time; the others wait in
arrival order, each until a turn ends. Tenants never wait for each other: one tenant's queue holds
only that tenant's turns. The state lives in Redis, so the limit holds across processes and machines:

- `lane:{<lane>:<tenant>}:running`  sorted set: ticket → lease expiry (ms, Redis's clock)
- `lane:{<lane>:<tenant>}:waiting`  sorted set: ticket → arrival number (the queue's order)
- `lane:{<lane>:<tenant>}:leases`   sorted set: ticket → lease expiry of a waiting ticket
- `lane:{<lane>:<tenant>}:arrivals` counter behind the arrival numbers
- `lane:<lane>:tenants`             set of tenants with turns running or waiting (for metrics)

Every ticket, waiting or running, holds a lease its holder renews; a holder that dies stops renewing
and its ticket is dropped at the next decision, so a dead process never blocks a queue for longer
than one lease. A released turn is announced on the wake-up channel `wake:lane:<lane>:<tenant>`.
(The braces are Redis Cluster hash tags: a tenant's keys live on one node, as its scripts need.)
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from infra import wakeups
from infra.redis import as_text, redis_client

logger = logging.getLogger(__name__)

LEASE_SECONDS = 5.0
RENEW_SECONDS = 1.0

# Decide whether `ticket` may run now: drop lapsed tickets, queue the ticket if new, renew its lease,
# and grant it a turn if fewer than `limit` run and no earlier ticket waits beyond the free turns.
# Returns {1, 0} when granted, else {0, n}: n turns must end before this ticket's.
_ACQUIRE = """
local running, waiting, leases, arrivals = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ticket, limit, lease = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local clock = redis.call('time')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
redis.call('zremrangebyscore', running, '-inf', now)
for _, gone in ipairs(redis.call('zrangebyscore', leases, '-inf', now)) do
    redis.call('zrem', waiting, gone)
    redis.call('zrem', leases, gone)
end
if redis.call('zscore', running, ticket) then
    redis.call('zadd', running, now + lease, ticket)
    return {1, 0}
end
if not redis.call('zscore', waiting, ticket) then
    redis.call('zadd', waiting, redis.call('incr', arrivals), ticket)
end
redis.call('zadd', leases, now + lease, ticket)
local position = redis.call('zrank', waiting, ticket)
local free = limit - redis.call('zcard', running)
if position < free then
    redis.call('zrem', waiting, ticket)
    redis.call('zrem', leases, ticket)
    redis.call('zadd', running, now + lease, ticket)
    return {1, 0}
end
return {0, position + 1 - math.max(free, 0)}
"""

# Extend a running ticket's lease; 0 when the ticket no longer runs (its lease lapsed meanwhile).
_RENEW = """
local clock = redis.call('time')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
return redis.call('zadd', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[2]), ARGV[1])
"""


# Every lane of the process by name, for metrics.
LANES: dict[str, Lane] = {}


class TurnAbandoned(Exception):
    """The ticket stopped waiting for its turn because its holder no longer wants it."""


@dataclass(frozen=True)
class Queued:
    """What a ticket that waits learns: how many turns must end before it runs."""

    ahead: int


@dataclass(frozen=True)
class LaneState:
    """One tenant's turns right now (for metrics)."""

    tenant: str
    running: int
    waiting: int


class Lane:
    """At most `limit` turns of one tenant at a time, the rest served in arrival order."""

    def __init__(self, name: str, *, limit: Callable[[], int]) -> None:
        self.name = name
        self._limit = limit
        LANES[name] = self

    def channel(self, tenant: str) -> str:
        return wakeups.channel(f"lane:{self.name}:{tenant}")

    @contextmanager
    def turn(
        self,
        tenant: str,
        *,
        abandoned: Callable[[], bool],
        also_wake_on: Sequence[str] = (),
        on_queued: Callable[[Queued], None] | None = None,
    ) -> Iterator[float]:
        """Wait for a turn of `tenant` and hold it for the block; yields the seconds waited.

        `abandoned()` is asked whenever the waiter wakes (a turn ended, one of `also_wake_on`
        fired, or a lease renewal is due); once it is true the ticket leaves the queue and
        TurnAbandoned is raised. `on_queued` is told each time the ticket's place changes.
        Redis errors propagate: without Redis there is no lane.
        """
        ticket = uuid.uuid4().hex
        keys = self._keys(tenant)
        client = redis_client()
        acquire = client.register_script(_ACQUIRE)
        arrived = time.monotonic()
        client.sadd(f"lane:{self.name}:tenants", tenant)
        last_place: int | None = None
        with wakeups.WAKEUPS.watching([self.channel(tenant), *also_wake_on]) as woken:
            try:
                while True:
                    woken.clear()
                    granted, ahead = acquire(
                        keys=keys, args=[ticket, self._limit(), int(LEASE_SECONDS * 1000)]
                    )
                    if granted:
                        break
                    if abandoned():
                        raise TurnAbandoned
                    if on_queued is not None and ahead != last_place:
                        on_queued(Queued(int(ahead)))
                    last_place = ahead
                    woken.wait(RENEW_SECONDS)
            except BaseException:
                self._leave(client, keys, ticket, tenant)
                raise
        waited = time.monotonic() - arrived
        with self._renewing(client, keys[0], ticket):
            try:
                yield waited
            finally:
                self._leave(client, keys, ticket, tenant)

    def states(self) -> list[LaneState]:
        """Every tenant with turns running or waiting; tenants found idle are forgotten."""
        client = redis_client()
        found = []
        for raw in client.smembers(f"lane:{self.name}:tenants"):
            tenant = as_text(raw)
            running, waiting = self._keys(tenant)[:2]
            pipe = client.pipeline(transaction=False)
            pipe.zcard(running)
            pipe.zcard(waiting)
            counts = pipe.execute()
            if counts == [0, 0]:
                client.srem(f"lane:{self.name}:tenants", tenant)
            found.append(LaneState(tenant, counts[0], counts[1]))
        return found

    def _keys(self, tenant: str) -> list[str]:
        slot = f"lane:{{{self.name}:{tenant}}}"
        return [f"{slot}:running", f"{slot}:waiting", f"{slot}:leases", f"{slot}:arrivals"]

    def _leave(self, client: redis.Redis, keys: list[str], ticket: str, tenant: str) -> None:
        """Give the turn (or the place in the queue) back, and wake the queue."""
        try:
            pipe = client.pipeline()
            pipe.zrem(keys[0], ticket)
            pipe.zrem(keys[1], ticket)
            pipe.zrem(keys[2], ticket)
            wakeups.wake(self.channel(tenant), pipeline=pipe)
            pipe.execute()
        except redis.exceptions.RedisError:
            logger.warning("Could not leave lane %s; the ticket's lease lapses by itself", self.name)

    @contextmanager
    def _renewing(self, client: redis.Redis, running: str, ticket: str) -> Iterator[None]:
        """Renew the running ticket's lease in the background for the block's duration."""
        done = threading.Event()
        renew = client.register_script(_RENEW)

        def loop() -> None:
            while not done.wait(RENEW_SECONDS):
                try:
                    renew(keys=[running], args=[ticket, int(LEASE_SECONDS * 1000)])
                except redis.exceptions.RedisError:
                    logger.warning("Could not renew a turn of lane %s", self.name)

        threading.Thread(target=loop, name=f"lane-{ticket[:8]}", daemon=True).start()
        try:
            yield
        finally:
            done.set()
