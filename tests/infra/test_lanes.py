"""The lane (infra/lanes.py) on real Redis: a limit per tenant, arrival order, tenants apart,
and a waiter that dies or gives up never holds a place (docs/workload-isolation.md)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from infra import lanes
from infra.lanes import Lane, TurnAbandoned
from infra.redis import redis_client
from tests.live import wait_until


@pytest.fixture
def lane() -> Iterator[Lane]:
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield Lane(name, limit=lambda: 2)
    lanes.LANES.pop(name, None)
    client = redis_client()
    stale = list(client.scan_iter(f"lane:{{{name}:*")) + list(client.scan_iter(f"lane:{name}:*"))
    if stale:
        client.delete(*stale)


class Holder:
    """A thread that waits for a turn, records when it got it, and holds it until released."""

    def __init__(self, lane: Lane, tenant: str, granted: list[str], name: str) -> None:
        self.release = threading.Event()
        self.give_up = threading.Event()
        self.places: list[int] = []
        self.outcome: str | None = None
        self.thread = threading.Thread(target=self._run, args=(lane, tenant, granted, name), daemon=True)

    def _run(self, lane: Lane, tenant: str, granted: list[str], name: str) -> None:
        try:
            with lane.turn(
                tenant,
                abandoned=self.give_up.is_set,
                on_queued=lambda queued: self.places.append(queued.ahead),
            ):
                granted.append(name)
                self.release.wait(30)
            self.outcome = "ran"
        except TurnAbandoned:
            self.outcome = "abandoned"


@contextmanager
def holders(lane: Lane, tenant: str, names: list[str], granted: list[str]) -> Iterator[dict[str, Holder]]:
    """Start a Holder per name, in order, each only once the previous one has a turn or a place."""
    started: dict[str, Holder] = {}
    with ExitStack() as stack:
        for name in names:
            holder = Holder(lane, tenant, granted, name)
            holder.thread.start()
            wait_until(lambda h=holder, n=name: n in granted or bool(h.places), what=f"{name} to queue")
            started[name] = holder
        stack.callback(lambda: [h.release.set() for h in started.values()])
        yield started
    for holder in started.values():
        holder.thread.join(10)


def test_at_most_the_limit_run_and_the_others_get_their_turns_in_arrival_order(lane):
    granted: list[str] = []
    with holders(lane, "p1", ["a", "b", "c", "d"], granted) as running:
        assert granted == ["a", "b"]
        assert running["c"].places[0] == 1 and running["d"].places[0] == 2  # turns that must end first
        running["a"].release.set()
        wait_until(lambda: granted == ["a", "b", "c"], what="c's turn")
        running["b"].release.set()
        wait_until(lambda: granted == ["a", "b", "c", "d"], what="d's turn")
    assert [holder.outcome for holder in running.values()] == ["ran"] * 4


def test_one_tenants_queue_never_delays_another_tenant(lane):
    granted: list[str] = []
    with holders(lane, "busy", ["a", "b", "c"], granted), holders(lane, "quiet", ["q"], granted):
        assert granted == ["a", "b", "q"]  # q ran at once, ahead of c, which waits for busy's turns


def test_a_waiter_that_gives_up_leaves_its_place_to_the_next(lane):
    granted: list[str] = []
    with holders(lane, "p1", ["a", "b", "c", "d"], granted) as running:
        running["c"].give_up.set()
        wait_until(lambda: running["c"].outcome == "abandoned", what="c to give up")
        running["a"].release.set()
        wait_until(lambda: granted == ["a", "b", "d"], what="d's turn")
    assert lane.states()[0].waiting == 0


def test_a_dead_holders_turn_returns_when_its_lease_lapses(lane):
    """A process that dies holding a turn stops renewing it; the turn is given on by lease expiry."""
    client = redis_client()
    running_key = lane._keys("p1")[0]
    client.zadd(running_key, {"dead-1": 0, "dead-2": 0})  # leases that lapsed long ago
    granted: list[str] = []
    with holders(lane, "p1", ["a"], granted):
        assert granted == ["a"]


def test_lane_states_count_running_and_waiting_turns_per_tenant(lane):
    granted: list[str] = []
    with holders(lane, "p1", ["a", "b", "c"], granted), holders(lane, "p2", ["x"], granted):
        states = {state.tenant: (state.running, state.waiting) for state in lane.states()}
    assert states == {"p1": (2, 1), "p2": (1, 0)}
