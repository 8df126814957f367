"""The coalescing protocol (infra/executions.py) on real Redis: join, hand off, claim, finish, leave
and settle, each decided once for every waiter (docs/queries.md#coalescing)."""

from __future__ import annotations

import time
import uuid

import pytest

from infra.executions import LOST, Execution, is_abandoned, join
from infra.redis import redis_client
from tests.live import wait_until


@pytest.fixture
def key() -> str:
    return "coalesce:{test-" + uuid.uuid4().hex + "}"


@pytest.fixture(autouse=True)
def short_leases(settings):
    settings.COALESCING_HEARTBEAT_SECONDS = 0.2  # leases of 0.4 s


def joined(key: str, waiter: str, *, arrived_ago: float = 1.0):
    return join(key, waiter=waiter, holder=f"holder-of-{waiter}", max_age=arrived_ago)


def test_the_first_request_leads_and_identical_ones_follow_its_execution(key):
    first, second, third = (joined(key, name) for name in ("a", "b", "c"))

    assert [first.role, second.role, third.role] == ["leader", "follower", "follower"]
    assert first.execution == second.execution == third.execution
    assert redis_client().smembers(f"{first.execution.id}:waiters") == {b"a", b"b", b"c"}


def test_an_outcome_is_reused_by_requests_that_arrived_before_its_execution_finished(key):
    execution = joined(key, "a").execution
    execution.hand_off()
    execution.claim("worker")
    time.sleep(0.2)  # the run takes a while
    execution.finish({"value": {"results": [1]}}, reusable=True)
    finished = time.monotonic()
    time.sleep(0.05)  # so that "arrived just now" is later than the execution's end

    before_it_started = joined(key, "arrived-before-it-started", arrived_ago=5)
    # Arrived 0.1 s before the end, while the run went on; its own checks outlasted the run.
    while_it_ran = joined(key, "arrived-while-it-ran", arrived_ago=time.monotonic() - finished + 0.1)
    after_it_finished = joined(key, "arrived-after-it-finished", arrived_ago=0)

    assert (before_it_started.role, before_it_started.outcome) == ("reused", {"value": {"results": [1]}})
    assert (while_it_ran.role, while_it_ran.outcome) == ("reused", {"value": {"results": [1]}})
    assert after_it_finished.role == "leader" and after_it_finished.execution != execution


def test_only_a_queued_unabandoned_execution_can_be_claimed_and_only_once(key):
    execution = joined(key, "a").execution
    before_hand_off = execution.claim("worker-1")
    execution.hand_off()

    assert not before_hand_off
    assert execution.claim("worker-1")
    assert not execution.claim("worker-2")  # a second delivery of the same task
    assert redis_client().get(f"{execution.id}:lease") == b"worker-1"


def test_the_last_waiter_out_abandons_the_execution_and_the_next_request_leads_a_new_one(key):
    execution = joined(key, "a").execution
    joined(key, "b")

    first_out = execution.leave("a")
    last_out = execution.leave("b")
    after = joined(key, "c")

    assert (first_out, last_out) == (False, True)
    assert is_abandoned(execution.record.read())
    assert not execution.hand_off()  # whoever drives it stops
    assert after.role == "leader" and after.execution != execution


def test_a_leader_that_dies_before_handing_off_lets_its_waiters_join_again(key):
    execution = joined(key, "a").execution  # its lease is never renewed: its process "died"
    joined(key, "b")
    wait_until(lambda: execution.record.read().holder_gone, what="the lease to lapse")

    settled = [execution.settle(), execution.settle()]
    again = joined(key, "b")

    assert settled == ["rejoin", "rejoin"]
    assert again.role == "leader"  # the follower leads a new execution
    assert not execution.claim("late-worker")  # a late pickup of the old one never runs it


def test_a_worker_that_dies_mid_run_makes_the_outcome_lost_for_everyone_and_a_late_finish_changes_nothing(
    key,
):
    execution = joined(key, "a").execution
    execution.hand_off()
    execution.claim("worker")
    redis_client().delete(f"{execution.id}:lease")  # the worker's process died
    wait_until(lambda: execution.record.read().holder_gone, what="the lapse to be trusted")

    settled = execution.settle()
    late = execution.finish({"value": {"results": []}})

    assert settled == "lost"
    assert not late
    assert execution.record.read().json("outcome") == LOST


def test_finishing_wakes_and_answers_every_waiter_with_the_same_outcome(key):
    execution = joined(key, "a").execution
    execution.hand_off()
    execution.claim("worker")

    finished = execution.finish({"error": {"code": "query_timeout"}})
    snapshot = execution.record.read()

    assert finished
    assert (snapshot["state"], snapshot.json("outcome")) == ("done", {"error": {"code": "query_timeout"}})
    assert redis_client().hget(key, "current") is None  # identical requests now lead anew
    assert Execution(execution.id).record.read().fields == snapshot.fields
