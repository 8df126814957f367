"""Shared records: state in Redis that one process changes and others wait on (docs/workload-isolation.md).

Every wait of the service that crosses processes is one of these: a coalesced execution's outcome,
a turn in a lane, a query worker's pickup, a cancel, a model's reply. The parts:

1. A `Record` is a Redis hash with a wake-up channel. `Record.update()` sets fields and `Record.apply()`
   runs a transition (a Lua script); either wakes the record's waiters in the same round trip.
2. `wait()` waits, until a deadline, for what a read finds; between reads it sleeps on the process's
   one subscription (infra/wakeups.py) and it re-reads at least every `poll` seconds, so a lost
   wake-up costs one interval. `Record.wait()` is the same on a record, whose waiters in one process
   share their reads of it: a crowd costs Redis one read per process per wake-up, not one per request.
3. A `Lease` says its holder is alive: a key the holder renews in the background while it works
   (`Lease.held()`), which lapses when it stops. A `Presence` is a set of leases (who is alive).

When Redis is lost, a waiter holds on — it holds nothing anyone else needs — and reads again once
Redis answers; only when Redis stays away REDIS_OUTAGE_SECONDS does it give up (`RedisLost`). A
lease that lapsed while Redis was away proves nothing: a waiter takes the lapse for its holder's
death only once Redis has answered this process for a whole lease period (`Snapshot.holder_gone`),
which gives the holder that long to renew it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeAlias, TypeVar

import redis
from django.conf import settings
from redis.client import Pipeline
from redis.commands.core import Script
from redis.typing import EncodableT, FieldT

from infra import wakeups
from infra.json_types import JSONObject
from infra.redis import as_text, redis_client

logger = logging.getLogger(__name__)

T = TypeVar("T")
# What a transition's script returns: a status word (bytes: replies are not decoded), a count, or nil.
ScriptReply: TypeAlias = bytes | int | None
POLL_SECONDS = 0.5


class RedisLost(Exception):
    """Redis stayed unreachable for REDIS_OUTAGE_SECONDS while waiting."""


class DeadlinePassed(Exception):
    """The wait's deadline passed before what it waited for happened."""


# --- Redis's health as this process sees it ---------------------------------------------------------

_last_failure = -float("inf")  # time.monotonic() of the last Redis error a wait or a lease met


def _failed() -> None:
    global _last_failure
    _last_failure = time.monotonic()


def answering_for() -> float:
    """Seconds since this process last failed to reach Redis (infinite if it never did)."""
    return time.monotonic() - _last_failure


# --- Waiting -------------------------------------------------------------------------------------------


def wait(
    read: Callable[[], T | None],
    *,
    channels: Sequence[str],
    deadline: float | None,
    poll: float = POLL_SECONDS,
    hold_on: float | None = None,
) -> T:
    """What `read()` finds, once it finds something (not None). `read` runs at once, then whenever a
    message arrives on one of `channels` or `poll` seconds pass. Raises DeadlinePassed at `deadline`
    (time.monotonic(); None: no deadline), RedisLost when Redis stays away `hold_on` seconds
    (REDIS_OUTAGE_SECONDS unless given; 0: at its first failure)."""
    hold_on = settings.REDIS_OUTAGE_SECONDS if hold_on is None else hold_on
    lost_since: float | None = None
    with wakeups.WAKEUPS.watching(channels) as woken:
        while True:
            woken.clear()  # before reading: a message arriving during the read is not lost
            try:
                found = read()
            except redis.exceptions.RedisError:
                _failed()
                lost_since = lost_since or time.monotonic()
                if time.monotonic() - lost_since >= hold_on:
                    raise RedisLost from None
                found = None
            else:
                lost_since = None
            if found is not None:
                return found
            timeout = poll
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    raise DeadlinePassed
            woken.wait(timeout)


def retried(change: Callable[[], T]) -> T:
    """What `change()` returns, retried while Redis is away (for at most REDIS_OUTAGE_SECONDS, then
    RedisLost): the writing side of a wait, for a change that must not be lost (an outcome)."""
    lost_since = time.monotonic()
    while True:
        try:
            return change()
        except redis.exceptions.RedisError:
            _failed()
            if time.monotonic() - lost_since >= settings.REDIS_OUTAGE_SECONDS:
                raise RedisLost from None
            time.sleep(POLL_SECONDS / 2)


# --- Records -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """A record as one read found it."""

    fields: dict[str, str]  # empty: no such record (never written, or expired)
    alive: bool  # its lease is held (False for a record without a lease)
    holder_gone: bool  # its lease lapsed, and Redis answered long enough for the holder to renew it
    # Fields decoded by json(): a process's waiters share one snapshot (_SharedReads), and a crowd's
    # thousand waiters would otherwise each decode the same outcome.
    _decoded: dict[str, JSONObject | None] = field(default_factory=dict, repr=False, compare=False)

    def __getitem__(self, name: str) -> str | None:
        return self.fields.get(name)

    def json(self, name: str) -> JSONObject | None:
        """The JSON object in field `name` (None: no such field), decoded once per snapshot: shared
        by every caller, never to be changed."""
        if name not in self._decoded:
            raw = self.fields.get(name)
            value = None if raw is None else json.loads(raw)
            self._decoded[name] = value if isinstance(value, dict) else None
        return self._decoded[name]


class Transition:
    """A change of a record as a Lua script: the record's key is KEYS[1] and its lease's KEYS[2], the
    script's own arguments follow ARGV[1] (the record's channel). The record's waiters are woken when
    the script returns anything but 0 or nil (it changed something); `apply()` returns that value."""

    def __init__(self, body: str) -> None:
        self.source = (
            "local changed = (function() " + body + " end)()\n"
            "if changed and changed ~= 0 then redis.call('publish', ARGV[1], '1') end\n"
            "return changed"
        )
        self._scripts: dict[int, Script] = {}

    def script(self, client: redis.Redis) -> Script:
        registered = self._scripts.get(id(client))
        if registered is None:
            registered = self._scripts[id(client)] = client.register_script(self.source)
        return registered


class Record:
    """A Redis hash `key` that expires `ttl` seconds after its last change, with a wake-up channel and
    (optionally) a lease of `lease_seconds` at `<key>:lease`."""

    def __init__(self, key: str, *, ttl: float, lease_seconds: float | None = None) -> None:
        self.key = key
        self.ttl = ttl
        self.lease_seconds = lease_seconds
        self.channel = wakeups.channel(key)

    @property
    def lease(self) -> Lease:
        assert self.lease_seconds is not None, f"{self.key} has no lease"
        return Lease(f"{self.key}:lease", seconds=self.lease_seconds)

    def read(self) -> Snapshot:
        """One consistent read of the fields and the lease. Raises RedisError."""
        pipe = redis_client().pipeline()
        pipe.hgetall(self.key)
        pipe.exists(f"{self.key}:lease")
        raw, alive = pipe.execute()
        held = self.lease_seconds is not None and bool(alive)
        return Snapshot(
            fields={as_text(name): as_text(value) for name, value in raw.items()},
            alive=held,
            holder_gone=(
                self.lease_seconds is not None and not held and answering_for() >= self.lease_seconds
            ),
        )

    def update(self, mapping: Mapping[FieldT, EncodableT], *, pipeline: Pipeline | None = None) -> None:
        """Set fields and wake the waiters (on `pipeline` if given, else at once). Raises RedisError."""
        pipe = pipeline if pipeline is not None else redis_client().pipeline()
        pipe.hset(self.key, mapping=mapping)
        pipe.expire(self.key, int(self.ttl))
        wakeups.wake(self.channel, pipeline=pipe)
        if pipeline is None:
            pipe.execute()

    def apply(self, transition: Transition, *args: str | int) -> ScriptReply:
        """Run a transition of this record; its waiters are woken if it changed anything."""
        reply: ScriptReply = transition.script(redis_client())(
            keys=[self.key, f"{self.key}:lease"], args=[self.channel, *args]
        )
        return reply

    def wait(
        self,
        until: Callable[[Snapshot], T | None],
        *,
        deadline: float | None,
        also: Sequence[str] = (),
        hold_on: float | None = None,
    ) -> T:
        """What `until` makes of the record, once that is not None (wait() on the record's channel and
        the channels `also`). Waiters of one record in a process share their reads of it. A record
        with a lease is read at least four times a lease, so that a lapse is seen promptly."""
        with _SHARED.sharing(self) as shared:
            return wait(
                lambda: until(shared.read(max_age=self.poll / 2)),
                channels=[self.channel, *also],
                deadline=deadline,
                poll=self.poll,
                hold_on=hold_on,
            )

    @property
    def poll(self) -> float:
        return POLL_SECONDS if self.lease_seconds is None else min(POLL_SECONDS, self.lease_seconds / 4)


class _SharedReads:
    """The last read of each record this process waits on, shared by its waiters: reused until a
    message arrives on the record's channel or it is older than `max_age`."""

    class Entry:
        def __init__(self, record: Record) -> None:
            self.record = record
            self.lock = threading.Lock()
            self.waiters = 0
            self.snapshot: Snapshot | None = None
            self.generation = -1
            self.read_at = 0.0

        def read(self, *, max_age: float) -> Snapshot:
            with self.lock:  # one waiter reads; the others of this process use its read
                generation = wakeups.WAKEUPS.generation(self.record.channel)
                fresh = time.monotonic() - self.read_at < max_age
                if self.snapshot is None or self.generation != generation or not fresh:
                    self.snapshot = self.record.read()
                    self.generation, self.read_at = generation, time.monotonic()
                return self.snapshot

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, _SharedReads.Entry] = {}

    @contextmanager
    def sharing(self, record: Record) -> Iterator[_SharedReads.Entry]:
        with self._lock:
            entry = self._entries.setdefault(record.key, _SharedReads.Entry(record))
            entry.waiters += 1
        try:
            yield entry
        finally:
            with self._lock:
                entry.waiters -= 1
                if entry.waiters == 0:
                    del self._entries[record.key]


_SHARED = _SharedReads()


# --- Leases and presence -------------------------------------------------------------------------------


class Renewal:
    """Calls `renew` every `interval` seconds in the background until stopped; a Redis error is
    logged once per outage and retried at the next interval (the holder keeps working meanwhile)."""

    def __init__(self, renew: Callable[[], None], *, interval: float, name: str) -> None:
        self._renew = renew
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> Renewal:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        failing = False
        while not self._stopped.wait(self._interval):
            try:
                self._renew()
            except redis.exceptions.RedisError:
                _failed()
                if not failing:
                    logger.warning("Could not renew %s: Redis unavailable", self._thread.name)
                failing = True
            else:
                failing = False


@dataclass(frozen=True)
class Lease:
    """A key that lives `seconds` unless its holder renews it."""

    key: str
    seconds: float

    def take(self, holder: str, *, pipeline: Pipeline | None = None) -> None:
        """(Re)take the lease for `holder`, now. Raises RedisError."""
        (pipeline if pipeline is not None else redis_client()).set(
            self.key, holder, px=int(self.seconds * 1000)
        )

    @contextmanager
    def held(self, holder: str, *, also: Callable[[Pipeline], None] | None = None) -> Iterator[None]:
        """Keep the lease for `holder` while the block runs, renewed every third of its length
        (`also(pipeline)` adds what is renewed with it). The lease is taken at once."""

        def renew() -> None:
            pipe = redis_client().pipeline(transaction=False)
            self.take(holder, pipeline=pipe)
            if also is not None:
                also(pipe)
            pipe.execute()

        renew()
        renewal = Renewal(renew, interval=self.seconds / 3, name=f"lease {self.key}").start()
        try:
            yield
        finally:
            renewal.stop()


# Add or renew a member (expiry in ms of Redis's clock), or count the live ones; drops lapsed members.
_PRESENCE = """
local clock = redis.call('time')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
redis.call('zremrangebyscore', KEYS[1], '-inf', now)
if ARGV[1] ~= '' then redis.call('zadd', KEYS[1], now + tonumber(ARGV[2]), ARGV[1]) end
return redis.call('zrange', KEYS[1], 0, -1)
"""


class Presence:
    """Who is alive among the members of a group: each member renews its own lease in the group."""

    def __init__(self, name: str, *, lease_seconds: float) -> None:
        self.key = f"presence:{name}"
        self.lease_seconds = lease_seconds

    def live(self) -> list[str]:
        """The members whose lease is current. Raises RedisError."""
        return self._call("")

    def announce(self, member: str) -> Renewal:
        """`member` is alive from now on (or from when Redis answers), renewed every third of the
        lease, until the renewal returned is stopped (`withdraw`)."""
        try:
            self._call(member)
        except redis.exceptions.RedisError:
            logger.warning("Could not announce %s in %s yet: Redis unavailable", member, self.key)

        def renew() -> None:
            self._call(member)

        return Renewal(renew, interval=self.lease_seconds / 3, name=self.key).start()

    def withdraw(self, member: str, renewal: Renewal) -> None:
        """`member` is no longer alive."""
        renewal.stop()
        try:
            redis_client().zrem(self.key, member)
        except redis.exceptions.RedisError:
            logger.warning("Could not leave %s; the lease lapses by itself", self.key)

    def _call(self, member: str) -> list[str]:
        client = redis_client()
        found = client.eval(_PRESENCE, 1, self.key, member, int(self.lease_seconds * 1000))
        return [as_text(name) for name in found]
