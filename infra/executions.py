"""Executions: one run of a piece of work for everyone who asks for it at once (the coalescing protocol).

For a coalescing key K (`coalesce:{<hash>}`; the braces keep its keys on one Redis Cluster node):

- `K`, a hash: `current`, the execution identical requests join; and the last outcome that may be
  reused, with its execution (`done_id`), when that started and when it finished (`done_started`,
  `done_finished`, ms of Redis's clock).
- Each execution `K:<token>`, a records.Record: `state` — `turn` (waiting for its tenant's turn),
  `queued` (handed to whoever runs it), `running` (taken by them), `done` (`outcome` published) —
  `started`, `abandoned` (1 once nobody waits), and a lease held by whoever drives it: the leader,
  then the process that runs the work. `K:<token>:waiters` is the set of requests waiting for it.

1. `join()`, in one script: follow the current execution unless it is done or abandoned; else reuse
   the last outcome if its execution finished after the request arrived — it was running then, so
   the request would have followed it had it joined at once (a crowd's last requests reach `join`
   only after their own checks, which under load can outlast the run); else lead a new execution.
   Joining adds the request to the waiters.
2. The leader drives the execution (its caller's code, in the background, since others may be
   waiting when its own caller gives up): `hand_off()` when the work is sent away, `claim()` by
   whoever runs it (from any process, knowing only the id), `finish()` with the outcome.
3. Each request waits on the record for the outcome. A waiter that stops waiting `leave()`s; the
   last one out marks the execution abandoned, and whoever drives it stops.
4. A lapsed lease (records.Snapshot.holder_gone) is settled once, by the first waiter to see it
   (`settle()`): before the work ran, the leader died — the execution is abandoned and its waiters
   join again (one of them leads); while it ran, its runner died — the outcome is `lost` for all.

An outcome is JSON: `{"value": …}` (reused by later arrivals), `{"error": …}` (a DomainError of the
work, as infra.errors publishes it) or `{"lost": true}`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from django.conf import settings

from infra.json_types import JSONObject
from infra.records import Record, ScriptReply, Snapshot, Transition
from infra.redis import as_text, redis_client

STATE_TTL_SECONDS = 600  # how long an execution's record outlives its last change
LOST: JSONObject = {"lost": True}

# KEYS[1] = K. ARGV: token, holder, lease (ms), max age of a reused outcome (ms), ttl, waiter.
_JOIN = """
local K, waiter, ttl = KEYS[1], ARGV[6], ARGV[5]
local clock = redis.call('time')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
local current = redis.call('hget', K, 'current')
if current then
    local found = redis.call('hmget', current, 'state', 'abandoned')
    if found[1] and found[1] ~= 'done' and found[2] ~= '1' then
        redis.call('sadd', current .. ':waiters', waiter)
        redis.call('expire', current .. ':waiters', ttl)
        return {'follow', current}
    end
end
local last = redis.call('hmget', K, 'done_finished', 'done_outcome', 'done_id')
if last[1] and tonumber(last[1]) >= now - tonumber(ARGV[4]) then
    return {'reuse', last[3], last[2]}
end
local id = K .. ':' .. ARGV[1]
redis.call('hset', id, 'state', 'turn', 'started', now, 'abandoned', '0', 'ttl', ttl)
redis.call('expire', id, ttl)
redis.call('set', id .. ':lease', ARGV[2], 'PX', ARGV[3])
redis.call('sadd', id .. ':waiters', waiter)
redis.call('expire', id .. ':waiters', ttl)
redis.call('hset', K, 'current', id)
redis.call('expire', K, ttl)
return {'lead', id}
"""

# What every transition below needs: the execution's key K, and forgetting it as K's current one.
_FORGET = """
local function forget()
    local K = string.match(KEYS[1], '^(.*):[^:]+$')
    if redis.call('hget', K, 'current') == KEYS[1] then redis.call('hdel', K, 'current') end
    return K
end
"""
_HAND_OFF = Transition("""
local found = redis.call('hmget', KEYS[1], 'state', 'abandoned')
if found[1] ~= 'turn' or found[2] == '1' then return 0 end
redis.call('hset', KEYS[1], 'state', 'queued')
return 1
""")
# ARGV: holder, lease (ms).
_CLAIM = Transition("""
local found = redis.call('hmget', KEYS[1], 'state', 'abandoned')
if found[1] ~= 'queued' or found[2] == '1' then return 0 end
redis.call('hset', KEYS[1], 'state', 'running')
redis.call('set', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
""")
# ARGV: outcome, the states it may finish from (",turn,queued,"), whether it may be reused (1/0).
_FINISH = Transition(
    _FORGET
    + """
local state = redis.call('hget', KEYS[1], 'state')
if not state or not string.find(ARGV[3], ',' .. state .. ',', 1, true) then return 0 end
local ttl = redis.call('hget', KEYS[1], 'ttl')
redis.call('hset', KEYS[1], 'state', 'done', 'outcome', ARGV[2])
redis.call('expire', KEYS[1], ttl)
redis.call('del', KEYS[2])
local K = forget()
if ARGV[4] == '1' then
    local kept, started = redis.call('hget', K, 'done_started'), redis.call('hget', KEYS[1], 'started')
    if not kept or tonumber(kept) <= tonumber(started) then
        local clock = redis.call('time')
        redis.call('hset', K, 'done_id', KEYS[1], 'done_started', started, 'done_outcome', ARGV[2],
            'done_finished', clock[1] * 1000 + math.floor(clock[2] / 1000))
        redis.call('expire', K, ttl)
    end
end
return 1
"""
)
# ARGV: waiter. The last waiter out abandons an execution that has not finished.
_LEAVE = Transition("""
local waiters = KEYS[1] .. ':waiters'
redis.call('srem', waiters, ARGV[2])
if redis.call('scard', waiters) > 0 then return 0 end
local state = redis.call('hget', KEYS[1], 'state')
if not state or state == 'done' then return 0 end
redis.call('hset', KEYS[1], 'abandoned', '1')
return 1
""")
# ARGV: the lost outcome. Returns what the waiters do now: 'alive', 'rejoin', 'lost' or 'done'.
Settled = Literal["alive", "rejoin", "lost", "done"]
_SETTLED: dict[ScriptReply, Settled] = {
    b"alive": "alive",
    b"rejoin": "rejoin",
    b"lost": "lost",
    b"done": "done",
}
_SETTLE = Transition(
    _FORGET
    + """
if redis.call('exists', KEYS[2]) == 1 then return 'alive' end
local state = redis.call('hget', KEYS[1], 'state')
if state == 'running' then
    redis.call('hset', KEYS[1], 'state', 'done', 'outcome', ARGV[2])
    forget()
    return 'lost'
end
if state == 'done' then return 'done' end
if not state then return 'rejoin' end
redis.call('hset', KEYS[1], 'abandoned', '1')
forget()
return 'rejoin'
"""
)


def lease_seconds() -> float:
    """How long a driver's lease lasts: two heartbeats (a waiter takes over within two of them)."""
    return 2 * settings.COALESCING_HEARTBEAT_SECONDS


@dataclass(frozen=True)
class Execution:
    """One execution, known by its id in any process."""

    id: str

    @property
    def record(self) -> Record:
        return Record(self.id, ttl=STATE_TTL_SECONDS, lease_seconds=lease_seconds())

    @property
    def key(self) -> str:
        """The coalescing key the execution belongs to."""
        return self.id.rsplit(":", 1)[0]

    def hand_off(self) -> bool:
        """`turn` → `queued`: the work was sent to whoever runs it (False: abandoned meanwhile)."""
        return bool(self.record.apply(_HAND_OFF))

    def claim(self, holder: str) -> bool:
        """`queued` → `running`, the lease now `holder`'s (False: abandoned, taken or never queued)."""
        return bool(self.record.apply(_CLAIM, holder, int(lease_seconds() * 1000)))

    def finish(
        self, outcome: Mapping[str, object], *, states: tuple[str, ...] = ("running",), reusable: bool = False
    ) -> bool:
        """Publish the outcome if the execution is still in one of `states` (False: it is not)."""
        return bool(
            self.record.apply(
                _FINISH, json.dumps(outcome, default=str), f",{','.join(states)},", "1" if reusable else "0"
            )
        )

    def leave(self, waiter: str) -> bool:
        """`waiter` stops waiting; True if it was the last, so that the execution is now abandoned."""
        return bool(self.record.apply(_LEAVE, waiter))

    def settle(self) -> Settled:
        """What a lapsed lease means, decided once for every waiter (see the module)."""
        return _SETTLED[self.record.apply(_SETTLE, json.dumps(LOST))]


def is_abandoned(snapshot: Snapshot) -> bool:
    return snapshot["abandoned"] == "1"


@dataclass(frozen=True)
class Joined:
    """What `join()` decided: lead or follow `execution`, or reuse an outcome."""

    role: Literal["leader", "follower", "reused"]
    execution: Execution
    outcome: JSONObject | None = None  # when reused


def join(
    key: str,
    *,
    waiter: str,
    holder: str,
    max_age: float,
    token: str | None = None,
    ttl: int = STATE_TTL_SECONDS,
) -> Joined:
    """Join the execution of `key` as `waiter` (see the module); a new one, `<key>:<token>` (a random
    token unless given), is leased to `holder` and kept `ttl` seconds after its last change. An
    outcome is reused if its execution finished at most `max_age` seconds ago. Raises RedisError."""
    decision, *found = redis_client().eval(
        _JOIN, 1, key, token or uuid.uuid4().hex, holder, int(lease_seconds() * 1000), int(max_age * 1000),
        ttl, waiter,
    )  # fmt: skip
    role = as_text(decision)
    if role == "reuse":
        return Joined("reused", Execution(as_text(found[0])), json.loads(found[1]))
    return Joined("leader" if role == "lead" else "follower", Execution(as_text(found[0])))
