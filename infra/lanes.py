"""Lanes: bounded, fair capacity for heavy work, per tenant, shared by every process (docs/workload-isolation.md).

A lane lets at most `limit` turns of one tenant (a project) run at the same time; the others wait in
arrival order, each until a turn ends. Tenants never wait for each other: one tenant's queue holds
only that tenant's turns. The state lives in Redis, so the limit holds across processes and machines:

- `lane:{<lane>:<tenant>}:running`  sorted set: ticket → lease expiry (ms, Redis's clock)
- `lane:{<lane>:<tenant>}:waiting`  sorted set: ticket → arrival number (the queue's order)
- `lane:{<lane>:<tenant>}:leases`   sorted set: ticket → lease expiry of a waiting ticket
- `lane:{<lane>:<tenant>}:arrivals` counter behind the arrival numbers
- `lane:<lane>:tenants`             set of tenants with turns running or waiting (for metrics)

A turn is a ticket: `take()` waits until the ticket runs; whoever holds the turn then — the process
that took it, or one it handed the work to — renews its lease (`renew()`) and gives it back
(`release()`). A ticket whose lease lapses (its holder died) is dropped at the next decision, so a
dead process blocks a queue for at most one lease. A released turn wakes the tenant's queue.
(The braces are Redis Cluster hash tags: a tenant's keys live on one node, as its scripts need.)

Without Redis, `LocalLane` bounds the turns of one process alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from redis.client import Pipeline

from infra import records, wakeups
from infra.redis import as_text, redis_client

logger = logging.getLogger(__name__)

LEASE_SECONDS = 5.0
RENEW_SECONDS = 1.0

# Decide whether `ticket` may run now: drop lapsed tickets, queue the ticket if new, renew its lease,
# and grant it a turn if fewer than `limit` run and no earlier ticket waits beyond the free turns.
# Returns 1 when granted, else 0.
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
    return 1
end
if not redis.call('zscore', waiting, ticket) then
    redis.call('zadd', waiting, redis.call('incr', arrivals), ticket)
end
redis.call('zadd', leases, now + lease, ticket)
if redis.call('zrank', waiting, ticket) < limit - redis.call('zcard', running) then
    redis.call('zrem', waiting, ticket)
    redis.call('zrem', leases, ticket)
    redis.call('zadd', running, now + lease, ticket)
    return 1
end
return 0
"""

# Extend a running ticket's lease (nothing if it no longer runs).
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

    def take(
        self,
        tenant: str,
        ticket: str,
        *,
        abandoned: Callable[[], bool],
        also_wake_on: list[str],
        deadline: float | None = None,
    ) -> float:
        """Wait until `ticket` runs; the seconds waited. `abandoned()` is asked whenever the waiter
        wakes (a turn ended, one of `also_wake_on` fired, or its lease is due): once it is true the
        ticket leaves the queue and TurnAbandoned is raised. records.DeadlinePassed at `deadline`,
        records.RedisLost when Redis stays away: the ticket leaves the queue first."""
        keys = self._keys(tenant)
        client = redis_client()
        acquire = client.register_script(_ACQUIRE)
        arrived = time.monotonic()
        client.sadd(f"lane:{self.name}:tenants", tenant)

        def granted() -> bool | None:
            if acquire(keys=keys, args=[ticket, self._limit(), int(LEASE_SECONDS * 1000)]):
                return True
            if abandoned():
                raise TurnAbandoned
            return None

        try:
            records.wait(
                granted,
                channels=[self.channel(tenant), *also_wake_on],
                deadline=deadline,
                poll=RENEW_SECONDS,  # each read renews the waiting ticket's lease
            )
        except BaseException:
            self.release(tenant, ticket)
            raise
        return time.monotonic() - arrived

    def renew(self, pipeline: Pipeline, tenant: str, ticket: str) -> None:
        """Extend a running ticket's lease, on `pipeline` (its holder renews it with its own lease)."""
        pipeline.eval(_RENEW, 1, self._keys(tenant)[0], ticket, int(LEASE_SECONDS * 1000))

    def release(self, tenant: str, ticket: str) -> None:
        """Give the turn (or the place in the queue) back, and wake the queue. Never raises: a ticket
        that cannot be released lapses with its lease."""
        keys = self._keys(tenant)
        try:
            pipe = redis_client().pipeline()
            for key in keys[:3]:
                pipe.zrem(key, ticket)
            wakeups.wake(self.channel(tenant), pipeline=pipe)
            pipe.execute()
        except redis.exceptions.RedisError:
            logger.warning("Could not leave lane %s; the ticket's lease lapses by itself", self.name)

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


class LocalLane:
    """A lane of this process alone, for when Redis (and so the shared lane) is away: at most
    `limit()` turns of a tenant and `total()` turns in all at a time, the others waiting in turn."""

    def __init__(self, *, limit: Callable[[], int], total: Callable[[], int]) -> None:
        self._limit = limit
        self._total = total
        self._changed = threading.Condition()
        self._running: dict[str, int] = {}

    @contextmanager
    def turn(self, tenant: str, *, deadline: float) -> Iterator[None]:
        """Hold a turn of `tenant` for the block; records.DeadlinePassed if none came by `deadline`."""
        with self._changed:
            while (
                self._running.get(tenant, 0) >= self._limit() or sum(self._running.values()) >= self._total()
            ):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise records.DeadlinePassed
                self._changed.wait(remaining)
            self._running[tenant] = self._running.get(tenant, 0) + 1
        try:
            yield
        finally:
            with self._changed:
                self._running[tenant] -= 1
                if not self._running[tenant]:
                    del self._running[tenant]
                self._changed.notify_all()
