"""The lane (infra/lanes.py) on real Redis: a limit per tenant, arrival order, tenants apart,
and a waiter that dies or gives up never holds a place (docs/workload-isolation.md)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from infra import lanes, records
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
        self.outcome: str | None = None
        self.thread = threading.Thread(target=self._run, args=(lane, tenant, granted, name), daemon=True)

    def _run(self, lane: Lane, tenant: str, granted: list[str], name: str) -> None:
        ticket = uuid.uuid4().hex
        try:
            lane.take(tenant, ticket, abandoned=self.give_up.is_set, also_wake_on=[])
        except TurnAbandoned:
            self.outcome = "abandoned"
            return
        granted.append(name)
        self.release.wait(30)
        lane.release(tenant, ticket)
        self.outcome = "ran"


def queued(lane: Lane, tenant: str) -> int:
    return next((state.waiting for state in lane.states() if state.tenant == tenant), 0)


@contextmanager
def holders(lane: Lane, tenant: str, names: list[str], granted: list[str]) -> Iterator[dict[str, Holder]]:
    """Start a Holder per name, in order, each only once the previous one has a turn or a place."""
    started: dict[str, Holder] = {}
    with ExitStack() as stack:
        for name in names:
            holder = Holder(lane, tenant, granted, name)
            places = queued(lane, tenant)
            holder.thread.start()
            wait_until(
                lambda n=name, p=places: n in granted or queued(lane, tenant) > p, what=f"{name} to queue"
            )
            started[name] = holder
        stack.callback(lambda: [h.release.set() for h in started.values()])
        yield started
    for holder in started.values():
        holder.thread.join(10)


def test_at_most_the_limit_run_and_the_others_get_their_turns_in_arrival_order(lane):
    granted: list[str] = []
    with holders(lane, "p1", ["a", "b", "c", "d"], granted) as running:
        assert granted == ["a", "b"]
        assert queued(lane, "p1") == 2
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


def test_a_turn_taken_in_one_place_is_renewed_and_given_back_by_another(lane):
    """The driver of a query takes its turn; the query worker that runs it renews and releases it."""
    assert lane.take("p1", "run-1", abandoned=lambda: False, also_wake_on=[]) >= 0
    seconds, micros = redis_client().time()
    pipe = redis_client().pipeline()
    lane.renew(pipe, "p1", "run-1")
    pipe.execute()
    renewed_until = redis_client().zscore(lane._keys("p1")[0], "run-1")
    lane.release("p1", "run-1")

    assert (
        renewed_until >= seconds * 1000 + micros // 1000 + lanes.LEASE_SECONDS * 1000
    )  # from the renewal on

    assert lane.states() == [lanes.LaneState("p1", 0, 0)]


def test_a_waiter_past_its_deadline_leaves_the_queue(lane):
    granted: list[str] = []
    with holders(lane, "p1", ["a", "b"], granted):
        with pytest.raises(records.DeadlinePassed):
            lane.take("p1", "late", abandoned=lambda: False, also_wake_on=[], deadline=time.monotonic() + 0.3)
        assert queued(lane, "p1") == 0


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
