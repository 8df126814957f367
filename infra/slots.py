"""Work slots: how many requests of a process work at once; a waiting request holds none (docs/workload-isolation.md).

Under gevent a process serves any number of requests at once (WEB_CONNECTIONS, waiting ones
included), but only WEB_WORK_SLOTS of them work at a time — run Python, hold a database connection —
in arrival order, as a thread pool would. A request that waits (for its query's turn, for an identical
request's answer, for a model's reply) gives its slot back for the wait (`waiting()`), so a crowd of
waiters never keeps a cheap request from working. Two things follow from working in order: a burst is
answered first come, first served, instead of every request in it progressing slowly at once (a
crowd's first request reaches its query at once instead of after everyone's checks), and it queues
here rather than timing out on the connection pool, which is larger than the slots (the work a
coalesced execution does in the background needs connections too).
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class FairSlots:
    """A counting semaphore that serves strictly in arrival order: a released slot is handed to the
    longest waiter, never taken by a request that arrives meanwhile (a plain semaphore lets newcomers
    barge in, and under steady load an unlucky request then waits for seconds)."""

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._free = size
        self._queue: deque[threading.Event] = deque()

    @property
    def free(self) -> int:
        return self._free

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def acquire(self) -> None:
        with self._lock:
            if self._free and not self._queue:
                self._free -= 1
                return
            handed = threading.Event()
            self._queue.append(handed)
        handed.wait()

    def release(self) -> None:
        with self._lock:
            if self._queue:
                self._queue.popleft().set()  # the slot passes straight to the longest waiter
            else:
                self._free += 1


_slots: FairSlots | None = None
_slots_pid: int | None = None
_slots_lock = threading.Lock()
# Whether the current request (thread, or greenlet under gevent) holds a slot. Not a context variable:
# work a request starts in the background copies its context, but never holds its slot.
_local = threading.local()


def _semaphore() -> FairSlots:
    global _slots, _slots_pid
    with _slots_lock:
        if _slots is None or _slots_pid != os.getpid():  # each forked process has its own
            _slots, _slots_pid = FairSlots(settings.WEB_WORK_SLOTS), os.getpid()
        return _slots


class WorkSlotsMiddleware:
    """A request works only with a slot, taken in arrival order and held until it answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        slots = _semaphore()
        slots.acquire()
        _local.holding = True
        try:
            return self.get_response(request)
        finally:
            if _local.holding:
                _local.holding = False
                slots.release()


@contextmanager
def waiting() -> Iterator[None]:
    """The block waits and works on nothing: its request's slot serves another meanwhile, and is
    taken back (in turn) when the block ends."""
    if not getattr(_local, "holding", False):
        yield
        return
    slots = _semaphore()
    _local.holding = False
    slots.release()
    try:
        yield
    finally:
        slots.acquire()
        _local.holding = True
