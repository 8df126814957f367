"""Workload isolation (docs/workload-isolation.md): what a crowd of slow result requests does to the service.

Three scenarios, each against a running server, with nothing but HTTP and PostgreSQL's own
statistics (pg_stat_statements counts query executions from the database's side):

- `crowd`: N identical `force_blocking` runs of one slow query from two users at the same moment,
  while a user of another project lists insights every 100 ms.
- `storm`: twenty different slow queries of one project at once (a heavy dashboard refreshed),
  while a user of another project lists insights every 100 ms.
- `two_projects`: two projects send their slow queries at the same moment; when does each get
  its first answer?

`make bench` runs them against the service as it ships (bench/cases.py); `bench/run.py
--alternatives` against the other designs measured for it (bench/alternatives.py).
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bench.measure import Client

# How pg_stat_statements names a Trends execution (the statement reads the events table by bucket).
EXECUTION_PATTERN = "%date_trunc%insights_event%"


def slow_query(days: int, variant: int = 0) -> dict[str, Any]:
    """A Trends query that reads every event of the last `days` days: distinct users per day, by
    browser. Variants differ only in how many browsers they keep apart (more than there are), so
    they cost the same but are different queries: no cache entry or coalesced execution is shared."""
    return {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
        "interval": "day",
        "dateRange": {"date_from": f"-{days}d"},
        "breakdownFilter": {"breakdown": "$browser", "breakdown_limit": 25 + variant},
    }


def slow_queries(count: int, days: int) -> list[dict[str, Any]]:
    return [slow_query(days, variant) for variant in range(count)]


def run_body(query: dict[str, Any]) -> dict[str, Any]:
    return {"query": query, "refresh": "force_blocking"}


@dataclass
class Answer:
    status: int
    seconds: float  # from the common start
    retry_after: str | None = None


def at_once(calls: Sequence[Callable[[], tuple[int, bytes, dict[str, str]]]]) -> tuple[float, list[Answer]]:
    """Run every call on a thread of its own, released together; wall seconds to the last answer, and
    each answer with the seconds from the release to its arrival."""
    start = threading.Barrier(len(calls) + 1)
    released = [0.0]

    def one(call: Callable[[], tuple[int, bytes, dict[str, str]]]) -> Answer:
        start.wait()
        try:
            status, _, headers = call()
        except OSError:  # refused or reset: the server gave up on it
            status, headers = 0, {}
        return Answer(status, time.perf_counter() - released[0], headers.get("Retry-After"))

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        pending = [pool.submit(one, call) for call in calls]
        released[0] = time.perf_counter()
        start.wait()
        answers = [future.result() for future in pending]
    return max(answer.seconds for answer in answers), answers


def statuses(answers: Sequence[Answer]) -> str:
    return ", ".join(
        f"{count} x {status}" for status, count in sorted(Counter(a.status for a in answers).items())
    )


# --- crowd ---------------------------------------------------------------------------------------


@dataclass
class CrowdResult:
    size: int
    executions: int
    answers: list[Answer]
    wall: float
    single: float
    cpu: float  # CPU seconds the server spent on the crowd
    listed: list[float]  # another project's list latencies during the crowd
    lister_failures: Counter

    @property
    def ratio(self) -> float:
        return self.wall / self.single

    @property
    def all_ok(self) -> bool:
        return all(answer.status == 200 for answer in self.answers)


def crowd(
    url: str,
    keys: Sequence[str],
    project: int,
    *,
    size: int,
    days: int,
    executions: Callable[[], int],
    lister: Lister,
    cpu: Callable[[], float] = lambda: 0.0,
) -> CrowdResult:
    """`size` identical force_blocking runs from the callers of `keys` (in turn), at the same moment,
    while `lister` lists another project's insights; compared with one run alone. `executions()`
    reads how many query executions completed so far, `cpu()` the server's CPU seconds so far."""
    path, body = f"/api/projects/{project}/query/", run_body(slow_query(days))
    alone = Client(url, keys[0])
    single = statistics.median(alone.timed("POST", path, body) for _ in range(2))
    callers = [Client(url, keys[n % len(keys)]) for n in range(size)]  # one connection each
    # Warm the server up first: the callers' connections and the server's pools for `size` requests.
    at_once([functools.partial(caller.call, "GET", "/_health") for caller in callers])
    before, cpu_before = executions(), cpu()
    listing = lister.start()
    wall, answers = at_once([functools.partial(caller.call, "POST", path, body) for caller in callers])
    listed = lister.stop(listing)
    return CrowdResult(
        size, executions() - before, answers, wall, single, cpu() - cpu_before, listed, lister.failures
    )


# --- storm ---------------------------------------------------------------------------------------


class Lister:
    """A user of another project who lists insights every 100 ms, timing each answer.

    The lister runs in a process of its own, as that user would on a machine of their own: inside the
    benchmark's process its timings would include waiting for the GIL behind the crowd's own client
    threads (a thousand of them parsing answers), which is the load generator's cost, not the server's.
    """

    def __init__(self, client: Client, path: str) -> None:
        self.client, self.path = client, path
        self.failures: Counter = Counter()
        self._context = multiprocessing.get_context("spawn")

    def run_for(self, seconds: float) -> list[float]:
        running = self.start()
        time.sleep(seconds)
        return self.stop(running)

    def start(self) -> _Listing:
        """The lister's process, listing once this returns (a new process needs its imports first)."""
        ready, stop, answers = self._context.Event(), self._context.Event(), self._context.SimpleQueue()
        process = self._context.Process(
            target=_list_until_stopped,
            args=(self.client.base_url, self.client.key, self.path, ready, stop, answers),
            daemon=True,
        )
        process.start()
        if not ready.wait(60):
            process.kill()
            raise RuntimeError("the lister's process did not start within 60 s")
        return _Listing(process, stop, answers)

    def stop(self, running: _Listing) -> list[float]:
        running.stop.set()
        latencies, failures = running.answers.get()
        running.process.join(60)
        self.failures = Counter(failures)
        return latencies


@dataclass
class _Listing:
    process: multiprocessing.process.BaseProcess
    stop: Any  # multiprocessing.Event
    answers: Any  # multiprocessing.SimpleQueue of one (latencies, failures)


def _list_until_stopped(base_url: str, key: str, path: str, ready: Any, stop: Any, answers: Any) -> None:
    client, latencies, failures = Client(base_url, key), list[float](), Counter[int]()
    ready.set()
    while not stop.is_set():
        started = time.perf_counter()
        try:
            status, _, _ = client.call("GET", path)
        except OSError:
            status = 0
        elapsed = time.perf_counter() - started
        if status == 200:
            latencies.append(elapsed)
        else:
            failures[status] += 1
        stop.wait(max(0.0, 0.1 - elapsed))
    answers.put((latencies, dict(failures)))


def p95(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] if ordered else math.nan


@dataclass
class StormResult:
    answers: list[Answer]
    wall: float
    idle_p95: float
    load_p95: float
    load_max: float
    lister_failures: Counter

    @property
    def ratio(self) -> float:
        return self.load_p95 / self.idle_p95

    @property
    def only_200_or_429(self) -> bool:
        return all(a.status == 200 or (a.status == 429 and a.retry_after) for a in self.answers)


def storm(
    url: str, key: str, project: int, *, days: int, lister_key: str, lister_project: int, queries: int = 20
) -> StormResult:
    """`queries` different slow queries of one project at once, while another project's user lists."""
    lister = Lister(Client(url, lister_key), f"/api/projects/{lister_project}/insights/?limit=5")
    lister.run_for(2)  # warm-up
    idle = lister.run_for(10)
    heavy = Client(url, key)
    path = f"/api/projects/{project}/query/"
    thread = lister.start()
    wall, answers = at_once(
        [
            functools.partial(heavy.call, "POST", path, run_body(query))
            for query in slow_queries(queries, days)
        ]
    )
    loaded = lister.stop(thread)
    return StormResult(answers, wall, p95(idle), p95(loaded), max(loaded, default=math.nan), lister.failures)


# --- two projects ----------------------------------------------------------------------------------


@dataclass
class TwoProjectsResult:
    first: list[Answer]
    second: list[Answer]

    @staticmethod
    def _ok(answers: Sequence[Answer]) -> list[float]:
        return sorted(a.seconds for a in answers if a.status == 200)

    @property
    def first_answers(self) -> tuple[float, float]:
        """Seconds to each project's first answer (inf: none)."""
        return tuple(min(self._ok(answers), default=math.inf) for answers in (self.first, self.second))  # type: ignore[return-value]

    @property
    def both_progress(self) -> bool:
        """Each project got an answer before the other project's last one: neither waited for the
        other's whole queue."""
        first, second = self._ok(self.first), self._ok(self.second)
        return bool(first and second) and first[0] < second[-1] and second[0] < first[-1]

    def summary(self) -> str:
        parts = []
        for name, answers in (("first", self.first), ("second", self.second)):
            ok = self._ok(answers)
            shown = f"answers at {ok[0]:.1f} s … {ok[-1]:.1f} s" if ok else "no answer"
            parts.append(f"{name} project: {shown} ({statuses(answers)})")
        return "; ".join(parts)


def two_projects(
    url: str, first: tuple[str, int], second: tuple[str, int], *, days: int, queries: int = 6
) -> TwoProjectsResult:
    """Both projects send `queries` different slow queries at the same moment."""
    calls = []
    for key, project in (first, second):
        client = Client(url, key)
        path = f"/api/projects/{project}/query/"
        calls += [
            functools.partial(client.call, "POST", path, run_body(q)) for q in slow_queries(queries, days)
        ]
    _, answers = at_once(calls)
    return TwoProjectsResult(answers[:queries], answers[queries:])
