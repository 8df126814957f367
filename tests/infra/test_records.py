"""Shared records (infra/records.py) on real Redis: waits woken at once, deadlines, leases, presence,
and what a waiter sees while Redis is away (docs/workload-isolation.md)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import redis

from infra import records
from infra.records import DeadlinePassed, Presence, Record, RedisLost
from infra.redis import redis_client
from tests.live import wait_until


@pytest.fixture
def record() -> Record:
    return Record(f"test-record:{uuid.uuid4().hex}", ttl=60, lease_seconds=1.5)


def test_a_waiter_is_woken_by_a_change_made_elsewhere_long_before_it_would_read_again(record):
    found: list[str | None] = []
    reads: list[float] = []

    def read() -> str | None:
        reads.append(time.monotonic())
        return record.read()["answer"]

    waiter = threading.Thread(
        target=lambda: found.append(records.wait(read, channels=[record.channel], deadline=None, poll=30))
    )
    waiter.start()
    wait_until(lambda: len(reads) == 1, what="the waiter's first read, finding nothing")
    record.update({"answer": "42"})
    waiter.join(5)  # a missed wake-up would leave it asleep for its 30 s poll

    assert found == ["42"]


def test_a_wait_ends_at_its_deadline_when_nothing_happens(record):
    started = time.monotonic()
    with pytest.raises(DeadlinePassed):
        record.wait(lambda snapshot: snapshot["answer"], deadline=started + 0.3)


def test_a_waiter_holds_on_while_redis_is_away_and_reads_what_it_waits_for_once_redis_answers():
    failures = iter(range(3))

    def read() -> str | None:
        if next(failures, None) is not None:
            raise redis.exceptions.ConnectionError("Connection refused")
        return "answered"

    assert records.wait(read, channels=[], deadline=None, poll=0.05, hold_on=5) == "answered"


def test_a_waiter_gives_up_when_redis_stays_away_past_its_bound():
    def read() -> None:
        raise redis.exceptions.TimeoutError("Timeout reading from socket")

    started = time.monotonic()
    with pytest.raises(RedisLost):
        records.wait(read, channels=[], deadline=None, poll=0.05, hold_on=0.3)
    assert time.monotonic() - started < 5


def test_a_held_lease_outlives_its_length_and_lapses_once_its_holder_stops(record):
    with record.lease.held("me"):
        held_since, seen_alive = time.monotonic(), []
        while time.monotonic() - held_since < 3:  # twice the 1.5 s lease: only its renewals keep it
            seen_alive.append(record.read().alive)
            time.sleep(0.1)
    wait_until(lambda: not record.read().alive, timeout=10, what="the lease to lapse")

    assert all(seen_alive)
    assert record.read().holder_gone


def test_a_lease_that_lapsed_while_redis_was_away_counts_as_its_holders_death_only_a_lease_later(record):
    """Its holder (in another process) could not renew it either: it gets one lease period to."""
    record.update({"state": "running"})  # leased to nobody: lapsed
    flaky = iter([redis.exceptions.ConnectionError("refused"), None])

    def read() -> bool | None:
        error = next(flaky)
        if error is not None:
            raise error
        return True

    records.wait(read, channels=[], deadline=None, poll=0.05)  # this process saw Redis away
    right_after = record.read()
    wait_until(lambda: record.read().holder_gone, timeout=10, what="a lease period of Redis answering")

    assert not right_after.alive and not right_after.holder_gone


def test_presence_counts_members_that_renew_and_forgets_those_that_stop():
    presence = Presence(f"test-{uuid.uuid4().hex[:8]}", lease_seconds=0.6)
    staying = presence.announce("staying")
    leaving = presence.announce("leaving")
    both = sorted(presence.live())
    presence.withdraw("leaving", leaving)
    after_withdrawal = presence.live()
    hung = presence.announce("hung")
    hung.stop()  # stops renewing, as a stopped or dead process does
    wait_until(lambda: presence.live() == ["staying"], timeout=5, what="the hung member to lapse")
    presence.withdraw("staying", staying)

    assert both == ["leaving", "staying"]
    assert after_withdrawal == ["staying"]
    assert presence.live() == []


def test_fifty_waiters_of_one_record_in_a_process_share_their_reads_of_it(record):
    client = redis_client()
    client.config_resetstat()
    answers: list[str | None] = []
    waiters = [
        threading.Thread(target=lambda: answers.append(record.wait(lambda s: s["answer"], deadline=None)))
        for _ in range(50)
    ]
    for waiter in waiters:
        waiter.start()
    time.sleep(1.0)  # let them poll a few times: what is counted is how often they read
    record.update({"answer": "shared"})
    for waiter in waiters:
        waiter.join(5)
    reads = client.info("commandstats").get("cmdstat_hgetall", {}).get("calls", 0)

    assert answers == ["shared"] * 50
    assert reads < 20  # one read per poll interval and wake-up for all fifty, not fifty each
