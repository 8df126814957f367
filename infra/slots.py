"""Work slots: how many requests of a process work at once, served project by project; a waiting request holds none (docs/workload-isolation.md).

Under gevent a process serves any number of requests at once (WEB_CONNECTIONS, waiting ones
included), but only WEB_WORK_SLOTS of them work at a time — run Python, hold a database connection.
A request that waits (for its query's turn, for an identical request's answer, for a model's reply)
gives its slot back for the wait (`waiting()`), so a crowd of waiters never keeps a cheap request
from working.

When requests queue for a slot, the projects they belong to take turns (the project is read from
the URL; requests of no project form one more turn), and each project's requests are served in
arrival order. So a crowd of one project's requests — a thousand identical slow queries each
running its checks — never sits in front of another project's cheap request: that request waits for
at most one slot per other waiting project. A released slot goes straight to the next waiter, never
to a request that arrives meanwhile; and requests queue here rather than on the connection pool,
which is larger than the slots (the work a query waits on needs connections too).
"""

from __future__ import annotations

import os
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.http import HttpRequest, HttpResponse


class FairSlots:
    """A counting semaphore whose waiters are served tenant by tenant in turn, and in arrival order
    within a tenant: a released slot goes to the oldest waiter of the next tenant in the rotation
    (who then moves to its end), never to a request that arrives meanwhile. (A plain semaphore lets
    newcomers barge in, and under steady load an unlucky request then waits for seconds.)"""

    def __init__(self, size: int) -> None:
        self._lock = threading.Lock()
        self._free = size
        # Tenants with waiters, in the order they are served next; each tenant's waiters in arrival order.
        self._queues: OrderedDict[str, deque[threading.Event]] = OrderedDict()

    @property
    def free(self) -> int:
        return self._free

    @property
    def waiting(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    def acquire(self, tenant: str = "") -> None:
        with self._lock:
            if self._free and not self._queues:
                self._free -= 1
                return
            handed = threading.Event()
            self._queues.setdefault(tenant, deque()).append(handed)
        handed.wait()

    def release(self) -> None:
        with self._lock:
            if not self._queues:
                self._free += 1
                return
            tenant, queue = next(iter(self._queues.items()))
            handed = queue.popleft()  # the slot passes straight to the next tenant's oldest waiter
            del self._queues[tenant]
            if queue:
                self._queues[tenant] = queue  # to the end of the rotation
        handed.set()


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


# The project a request belongs to, from its URL (docs/posthog-clients.md: two names for one route).
PROJECT_PATH = re.compile(r"^/api/(?:projects|environments)/(\d+)/")


def tenant_of(request: HttpRequest) -> str:
    """Whose turn a request waits in: its project's, or (no project) the one shared turn."""
    found = PROJECT_PATH.match(request.path)
    return found.group(1) if found else ""


class WorkSlotsMiddleware:
    """A request works only with a slot, taken in its project's turn and held until it answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        slots = _semaphore()
        tenant = tenant_of(request)
        slots.acquire(tenant)
        _local.holding, _local.tenant = True, tenant
        try:
            return self.get_response(request)
        finally:
            if _local.holding:
                _local.holding = False
                slots.release()


@contextmanager
def waiting() -> Iterator[None]:
    """The block waits and works on nothing: its request's slot serves another meanwhile, and is
    taken back (in its project's turn) when the block ends."""
    if not getattr(_local, "holding", False):
        yield
        return
    slots = _semaphore()
    _local.holding = False
    slots.release()
    try:
        yield
    finally:
        slots.acquire(_local.tenant)
        _local.holding = True
