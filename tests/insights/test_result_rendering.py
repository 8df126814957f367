"""Rendering an execution's outcome once per process (insights/results.py, step 6)."""

from __future__ import annotations

import threading

import pytest
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory

from infra import slots
from infra.json_types import JSONObject
from infra.slots import WorkSlotsMiddleware
from insights.results import _Rendered
from tests.live import wait_until


@pytest.fixture
def two_slots(settings):
    settings.WEB_WORK_SLOTS = 2
    slots._slots = None  # the process's slots are made from the setting on first use
    yield
    slots._slots = None


def test_a_request_waiting_for_another_s_render_of_the_same_outcome_holds_no_work_slot(two_slots):
    rendered, rendering, finish = _Rendered(), threading.Event(), threading.Event()
    bodies: dict[str, JSONObject] = {}
    following = threading.Event()

    def render() -> JSONObject:
        rendering.set()
        finish.wait(10)
        return {"results": [42]}

    def renders(request: HttpRequest) -> HttpResponse:
        bodies["leader"] = rendered.once("execution", render)
        return HttpResponse()

    def follows(request: HttpRequest) -> HttpResponse:
        following.set()
        bodies["follower"] = rendered.once("execution", lambda: {"results": ["rendered twice"]})
        return HttpResponse()

    factory = RequestFactory()
    leader = threading.Thread(target=lambda: WorkSlotsMiddleware(renders)(factory.get("/a")))
    leader.start()
    wait_until(rendering.is_set, what="the first request to render")
    follower = threading.Thread(target=lambda: WorkSlotsMiddleware(follows)(factory.get("/b")))
    follower.start()
    # The renderer holds one slot; the follower took the other and gives it back to wait.
    wait_until(
        lambda: following.is_set() and (made := slots._slots) is not None and made.free == 1,
        what="the follower to wait without its slot",
    )
    cheap = WorkSlotsMiddleware(lambda request: HttpResponse("worked"))(factory.get("/cheap"))
    finish.set()
    leader.join(5)
    follower.join(5)

    assert cheap.content == b"worked"
    assert bodies == {"leader": {"results": [42]}, "follower": {"results": [42]}}
