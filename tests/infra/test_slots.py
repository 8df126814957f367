"""Work slots (infra/slots.py): requests work a bounded number at a time, in arrival order,
and a waiting request holds no slot (docs/workload-isolation.md)."""

from __future__ import annotations

import threading

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from infra import slots
from infra.slots import FairSlots, WorkSlotsMiddleware, waiting
from tests.live import wait_until


def test_slots_are_taken_in_arrival_order_and_a_newcomer_never_jumps_the_queue():
    fair = FairSlots(1)
    fair.acquire()
    order: list[str] = []

    def take(name: str) -> None:
        fair.acquire()
        order.append(name)
        fair.release()

    threads = []
    for queued, name in enumerate(("first", "second", "third"), start=1):
        thread = threading.Thread(target=take, args=(name,))
        thread.start()
        threads.append(thread)
        wait_until(lambda n=queued: fair.waiting == n, what=f"{name} queued")
    fair.release()
    fair.acquire()  # a newcomer: served only after everyone queued before it
    order.append("newcomer")
    fair.release()
    for thread in threads:
        thread.join(5)

    assert order == ["first", "second", "third", "newcomer"]


@pytest.fixture
def one_slot(settings):
    settings.WEB_WORK_SLOTS = 1
    slots._slots = None  # the process's slots are made from the setting on first use
    yield
    slots._slots = None


def test_a_waiting_request_gives_its_slot_to_another_request_meanwhile(one_slot):
    released, served = threading.Event(), []

    def waits(request):
        with waiting():
            released.wait(10)
        return HttpResponse("waited")

    def works(request):
        served.append(request.path)
        return HttpResponse("worked")

    factory = RequestFactory()
    waiter = threading.Thread(target=lambda: WorkSlotsMiddleware(waits)(factory.get("/slow")))
    waiter.start()
    # Read the process's slots once per check: the condition must not see two different objects.
    wait_until(
        lambda: (made := slots._slots) is not None and made.free == 1, what="the waiter to give its slot"
    )
    answer = WorkSlotsMiddleware(works)(factory.get("/cheap"))  # the only slot serves it meanwhile
    released.set()
    waiter.join(5)

    assert answer.content == b"worked" and served == ["/cheap"]
    assert slots._slots.free == 1  # the waiter took its slot back, answered, and returned it
