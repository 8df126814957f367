"""Work slots (infra/slots.py): requests work a bounded number at a time, projects in turn and each
project's requests in arrival order, and a waiting request holds no slot (docs/workload-isolation.md)."""

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


def test_a_crowd_of_one_project_never_sits_in_front_of_another_projects_request():
    """Fifty requests of project 1 queue for the one slot, then one of project 2 and one of no
    project (a health check): each of those is served after at most one request of the crowd."""
    fair = FairSlots(1)
    fair.acquire("1")
    order: list[str] = []

    def take(tenant: str, name: str) -> None:
        fair.acquire(tenant)
        order.append(name)
        fair.release()

    arrivals = [("1", f"crowd-{n}") for n in range(50)] + [("2", "list"), ("", "health")]
    threads = []
    for queued, (tenant, name) in enumerate(arrivals, start=1):
        thread = threading.Thread(target=take, args=(tenant, name))
        thread.start()
        threads.append(thread)
        wait_until(lambda n=queued: fair.waiting == n, what=f"{name} queued")
    fair.release()
    for thread in threads:
        thread.join(5)

    assert order[:4] == ["crowd-0", "list", "health", "crowd-1"]  # the crowd in its own order, in turn
    assert order[4:] == [f"crowd-{n}" for n in range(2, 50)]


def test_both_names_of_a_projects_routes_wait_in_its_turn_and_other_routes_in_one_shared_turn():
    factory = RequestFactory()

    assert {
        slots.tenant_of(factory.get(path))
        for path in ("/api/projects/7/insights/", "/api/environments/7/query/")
    } == {"7"}
    assert {slots.tenant_of(factory.get(path)) for path in ("/_health", "/api/login/", "/api/projects/")} == {
        ""
    }


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
