"""A task's reply to the request that sent it, through Redis and the process's wake-ups.

The request sends a task carrying a reply id and waits; the task sets the reply and wakes it. The
wait sleeps on the process's one subscription (infra/wakeups.py) and re-reads the key at a
bounded interval, so a wake-up lost to a Redis restart costs at most that interval. (Celery's own
result backend keeps a consumer per process that, under gevent, drains in the background and gives
up for good after a Redis outage: "The Celery application must be restarted.")
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from infra import wakeups
from infra.redis import redis_client

REPLY_TTL_SECONDS = 300
POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Reply:
    id: str

    @classmethod
    def new(cls) -> Reply:
        return cls(uuid.uuid4().hex)

    @property
    def key(self) -> str:
        return f"reply:{self.id}"

    @property
    def channel(self) -> str:
        return wakeups.channel(f"reply:{self.id}")

    def send(self, value: Any) -> None:
        """Set the reply (the task's side). Raises RedisError."""
        pipe = redis_client().pipeline()
        pipe.set(self.key, json.dumps(value, default=str), ex=REPLY_TTL_SECONDS)
        wakeups.wake(self.channel, pipeline=pipe)
        pipe.execute()

    def wait(self, timeout: float) -> Any | None:
        """The reply, or None if none came within `timeout` seconds. Raises RedisError."""
        deadline = time.monotonic() + timeout
        client = redis_client()
        with wakeups.WAKEUPS.watching([self.channel]) as woken:
            while True:
                woken.clear()
                raw = client.getdel(self.key)
                if raw is not None:
                    return json.loads(raw)
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                woken.wait(min(remaining, POLL_SECONDS))
