"""Wake-ups across processes: one Redis subscription per process, shared by all its waiters.

A request that waits (for a coalesced answer, for its turn in a lane, for a cancel) registers the
channels that concern it and sleeps on a local event. One listener per process (a thread, or a
greenlet under gevent) holds a single pattern subscription to every `wake:*` channel and sets the
events of whoever watches a channel a message arrives on. So a crowd of waiters costs one Redis
connection per process, not one each.

A wake-up is only a hint: every waiter also re-reads the state it waits for at a bounded interval,
so a message lost while Redis restarts delays a waiter by that interval, never loses its answer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import redis
from redis.client import Pipeline

from infra.redis import redis_client

logger = logging.getLogger(__name__)

PREFIX = "wake:"
RECONNECT_SECONDS = 0.5
STARTUP_SECONDS = 1.0  # how long the first waiter of a process waits for the subscription


def channel(name: str) -> str:
    """The wake-up channel called `name`."""
    return f"{PREFIX}{name}"


def wake(*channels: str, pipeline: Pipeline | None = None) -> None:
    """Wake whoever watches these channels, in any process (on `pipeline` if given)."""
    target = pipeline if pipeline is not None else redis_client()
    for name in channels:
        target.publish(name, "1")


class Wakeups:
    """The process's listener and the events of the waiters it serves."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._watchers: dict[str, set[threading.Event]] = {}
        self._generations: dict[str, int] = {}  # wake-ups delivered per watched channel
        self._listener_pid: int | None = None
        self._subscribed = threading.Event()

    @contextmanager
    def watching(self, channels: Sequence[str]) -> Iterator[threading.Event]:
        """An event set whenever a message arrives on one of `channels`, for the block's duration.
        Clear it before reading the state you wait for, then wait on it: a message that arrives in
        between is not lost."""
        event = threading.Event()
        with self._lock:
            for name in channels:
                self._watchers.setdefault(name, set()).add(event)
            started = self._ensure_listener()
        if started:  # the process's first waiter: messages sent before the subscription would be lost
            self._subscribed.wait(STARTUP_SECONDS)
        try:
            yield event
        finally:
            with self._lock:
                for name in channels:
                    watchers = self._watchers.get(name)
                    if watchers is not None:
                        watchers.discard(event)
                        if not watchers:
                            del self._watchers[name]
                            self._generations.pop(name, None)

    def generation(self, name: str) -> int:
        """How many wake-ups this process has received on a watched channel: what a waiter read
        after the last one is still current (the waiters of one execution share their reads)."""
        with self._lock:
            return self._generations.get(name, 0)

    def _ensure_listener(self) -> bool:
        """Start the listener unless it runs; True if this call started it."""
        # A forked child inherits the parent's bookkeeping but not its threads: it starts its own.
        if self._listener_pid == os.getpid():
            return False
        self._listener_pid = os.getpid()
        self._subscribed.clear()
        threading.Thread(target=self._listen, name="wakeups", daemon=True).start()
        return True

    def _listen(self) -> None:
        while True:
            try:
                subscription = redis_client().pubsub()  # type: ignore[no-untyped-call]  # untyped in redis-py's stubs
                subscription.psubscribe(f"{PREFIX}*")
                try:
                    while True:
                        message = subscription.get_message(timeout=1.0)
                        if message is None:
                            continue
                        if message["type"] == "psubscribe":
                            self._subscribed.set()
                        elif message["type"] == "pmessage":
                            self._deliver(message["channel"].decode())
                finally:
                    self._subscribed.clear()
                    subscription.close()
            except redis.exceptions.RedisError:
                # Waiters poll meanwhile; listen again once Redis answers.
                time.sleep(RECONNECT_SECONDS)
            except Exception:  # never let the listener die: every waiter of the process relies on it
                logger.exception("Wake-up listener failed; restarting it")
                time.sleep(RECONNECT_SECONDS)

    def _deliver(self, name: str) -> None:
        with self._lock:
            watchers = list(self._watchers.get(name, ()))
            if watchers:
                self._generations[name] = self._generations.get(name, 0) + 1
        for event in watchers:
            event.set()


WAKEUPS = Wakeups()
