"""Read throughput (issue 15): wrk against each read route on its own, against `/_health` on the same
server, and against the mixed workload of the four routes, with each run's p50 latency and the CPU
one request costs in gunicorn, PostgreSQL and Redis.

`/_health` passes through the same gunicorn, gevent and middleware but does no work of its own, so
its rate is this machine's ceiling for the stack: a route's rate as a fraction of it says how much
the route's own work costs, and stays comparable from one machine (or one busy afternoon) to the
next. `make bench` runs these last; `bench/run.py --reads` runs only these, to iterate with.
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import stack

from bench.cases import Server, World
from bench.measure import Client, Figure, cpu_seconds, peak_rss_mb, process_tree

SECONDS = 10  # each run; the same for every route, so their error counts compare too
WARMUP_SECONDS = 3  # the mixed workload once first: pools filled, code paths warm, not reported
ROUTE_SHARE = 0.20  # issue 15: each read route at least a fifth of /_health's rate
MIXED_TARGET = 420  # issue 15: four times the 105 req/s the mixed workload served before
PARTS = ("gunicorn", "PostgreSQL", "Redis", "wrk")  # whose CPU each run adds up

WRK_SCRIPT = """
local paths = {%s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["Authorization"] = "Bearer %s"})
end
"""


@dataclass(frozen=True)
class Route:
    name: str
    paths: tuple[str, ...]  # requested in turn on each connection


HEALTH = Route("/_health", ("/_health",))


def routes(world: World) -> list[Route]:
    """The four read routes one by one, then the mixed workload: the four in turn."""
    insights = f"/api/projects/{world.project}/insights"
    single = [
        Route("list of 20", (f"{insights}/?limit=20",)),
        Route("retrieve, cached result", (f"{insights}/{world.insights[0]}/",)),
        Route(
            "trending, 1M view events, 30 days", (f"/api/projects/{world.large}/insights/trending/?days=30",)
        ),
        Route("my_last_viewed", (f"{insights}/my_last_viewed/",)),
    ]
    return [*single, Route("mixed (the four in turn)", tuple(route.paths[0] for route in single))]


@dataclass(frozen=True)
class Run:
    """One wrk run of a route, and the CPU seconds each part spent over it."""

    route: Route
    rate: float  # requests per second
    requests: int
    p50_ms: float
    errors: tuple[str, ...]  # wrk's "Non-2xx" and "Socket errors" lines
    cpu: dict[str, float]

    def cpu_ms(self, part: str) -> float:
        """CPU milliseconds of `part` per completed request."""
        return self.cpu[part] / self.requests * 1000 if self.requests else 0.0

    def cores_busy(self) -> float:
        """All parts' CPU over the run's wall time: near os.cpu_count(), the machine was the limit."""
        return sum(self.cpu.values()) / SECONDS


@dataclass(frozen=True)
class Reads:
    """Every run: /_health first and last (its drift over the runs shows), the routes between."""

    runs: list[Run]

    @property
    def health(self) -> float:
        first, last = self.runs[0], self.runs[-1]
        return (first.rate + last.rate) / 2

    def share(self, run: Run) -> float:
        return run.rate / self.health if self.health else 0.0

    def target(self, run: Run) -> tuple[str, bool | None]:
        """The issue's target for the run, and whether it was met (a run with errors never is)."""
        if run.route == HEALTH:
            return "measured", None
        if run.route.name.startswith("mixed"):
            return f"≥ {MIXED_TARGET} req/s", run.rate >= MIXED_TARGET and not run.errors
        return f"≥ {ROUTE_SHARE:.2f} of /_health", self.share(run) >= ROUTE_SHARE and not run.errors


def measure(server: Server, world: World, *, postgres_pid: int, redis_pid: int) -> Reads | None:
    """wrk for SECONDS on each route (2 threads, 16 connections), /_health first and last; None if
    wrk is missing and cannot be installed (not root)."""
    wrk = shutil.which("wrk") or _install_wrk()
    if wrk is None:
        return None
    pids = {"gunicorn": server.pid, "PostgreSQL": postgres_pid, "Redis": redis_pid}
    each = routes(world)
    _prepare(Client(server.url, world.key), world, [HEALTH, *each])
    stack.say(f"bench: wrk, {SECONDS} s on each of {len(each) + 2} read routes")
    _wrk(wrk, server.url, world.key, each[-1], seconds=WARMUP_SECONDS)
    return Reads([_run(wrk, server.url, world.key, route, pids) for route in [HEALTH, *each, HEALTH]])


def _prepare(client: Client, world: World, routes: list[Route]) -> None:
    """Fail loudly unless every path answers 200 with what it is meant to measure: the retrieve's
    result cached, my_last_viewed listing views (in `--reads` nothing else has recorded any)."""
    path = f"/api/projects/{world.project}/insights/viewed/"
    status, body, _ = client.call("POST", path, {"insight_ids": world.insights[:5]})
    if status != 201:
        raise stack.StackError(f"POST {path} answered {status}: {body[:300]!r}")
    for route in routes:
        for path in route.paths:
            answer = _get(client, path)  # the first retrieve computes and caches the result
            if route.name.startswith("retrieve") and not _get(client, path).get("is_cached"):
                raise stack.StackError(f"GET {path}: the result is not cached after a first request")
            if route.name == "my_last_viewed" and not answer:
                raise stack.StackError(f"GET {path}: no views listed")


def _get(client: Client, path: str) -> dict | list:
    status, body, _ = client.call("GET", path)
    if status != 200:
        raise stack.StackError(f"GET {path} answered {status}, not 200: {body[:300]!r}")
    return json.loads(body)


def _run(wrk: str, url: str, key: str, route: Route, pids: dict[str, int]) -> Run:
    """One measured wrk run: its figures, and the CPU of each process tree (exited PostgreSQL
    backends included, see cpu_seconds) and of wrk itself (the only child that ends meanwhile)."""
    before = {part: cpu_seconds(pid) for part, pid in pids.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = _wrk(wrk, url, key, route, seconds=SECONDS)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {part: cpu_seconds(pid) - before[part] for part, pid in pids.items()}
    cpu["wrk"] = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    rate, requests, p50, errors = _parse(output)
    return Run(route, rate, requests, p50, errors, cpu)


def _wrk(wrk: str, url: str, key: str, route: Route, *, seconds: int) -> str:
    """wrk's output for `seconds` of `route`, 2 threads and 16 connections, with latency percentiles."""
    with tempfile.NamedTemporaryFile("w", prefix="insights-bench-", suffix=".lua") as script:  # 0600: a key
        script.write(WRK_SCRIPT % (", ".join(f'"{path}"' for path in route.paths), key))
        script.flush()
        return subprocess.run(
            [wrk, "-t2", "-c16", f"-d{seconds}s", "--latency", "-s", script.name, url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip


_LATENCY_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _parse(output: str) -> tuple[float, int, float, tuple[str, ...]]:
    """(requests per second, requests completed, p50 in ms, error lines) from wrk's report."""
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    requests = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    p50 = re.search(r"^\s*50(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.MULTILINE)
    if not (rate and requests and p50):
        raise stack.StackError(f"unexpected wrk output:\n{output}")
    errors = tuple(
        line.strip() for line in output.splitlines() if "Non-2xx" in line or "Socket errors" in line
    )
    return float(rate[1]), int(requests[1]), float(p50[1]) * _LATENCY_MS[p50[2]], errors


def _install_wrk() -> str | None:
    if not stack.IS_ROOT:
        return None
    stack.say("bench: installing wrk")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
    return shutil.which("wrk")


def mixed_throughput(url: str, world: World, *, seconds: int = 20) -> float:
    """Requests per second of the mixed read workload against the server at `url` (0: no wrk), for
    bench/alternatives.py, which compares designs by this one number."""
    wrk = shutil.which("wrk") or _install_wrk()
    if wrk is None:
        return 0.0
    mixed = routes(world)[-1]
    client = Client(url, world.key)
    for path in mixed.paths:
        _get(client, path)
    return _parse(_wrk(wrk, url, world.key, mixed, seconds=seconds))[0]


def bench_reads(server: Server, world: World, *, postgres_pid: int, redis_pid: int) -> list[Figure]:
    """The read throughput figures of `make bench`, and a web worker's peak memory after them."""
    reads = measure(server, world, postgres_pid=postgres_pid, redis_pid=redis_pid)
    if reads is None:
        return [Figure("read throughput", 0, "req/s", "measured", None, "wrk unavailable (not root)")]
    worker_rss = max(peak_rss_mb(pid) for pid in process_tree(server.pid) if pid != server.pid)
    return [
        *figures(reads),
        Figure("gunicorn worker peak RSS under the read loads", worker_rss, "MB", "measured", None),
    ]


def figures(reads: Reads) -> list[Figure]:
    """One line per route: /_health's rate, each route's share of it, the mixed workload's rate."""
    first, last = reads.runs[0], reads.runs[-1]
    lines = [
        Figure("read throughput: /_health (same server and middleware, no work)", reads.health, "req/s",
               "measured", None, f"first {first.rate:,.0f}, last {last.rate:,.0f} req/s; {_details(first)}; "
               f"wrk 2 threads, 16 connections, {SECONDS} s per route"),
    ]  # fmt: skip
    for run in reads.runs[1:-1]:
        target, met = reads.target(run)
        if run.route.name.startswith("mixed"):
            value, unit, share = run.rate, "req/s", f"{reads.share(run):.2f} of /_health; "
        else:
            value, unit, share = reads.share(run), "of /_health", f"{run.rate:,.0f} req/s; "
        lines.append(
            Figure(f"read throughput: {run.route.name}", value, unit, target, met, share + _details(run))
        )
    return lines


def _details(run: Run) -> str:
    cpu = ", ".join(f"{part} {run.cpu_ms(part):.2f} ms" for part in PARTS[:2])
    errors = "".join(f"; {error}" for error in run.errors)
    return f"p50 under load {run.p50_ms:.1f} ms; CPU per request: {cpu}{errors}"


def table(reads: Reads) -> str:
    """The markdown table of `bench/run.py --reads`: every run, CPU per request of every part."""
    lines = [
        "| route | req/s | of /_health | target | met | p50 | "
        + " | ".join(f"{part} CPU/request" for part in PARTS)
        + " | cores busy | wrk errors |",
        "|---|---|---|---|---|---|" + "---|" * len(PARTS) + "---|---|",
    ]
    for run in reads.runs:
        target, met = reads.target(run)
        shown = "—" if met is None else ("yes" if met else "**no**")
        cpu = " | ".join(f"{run.cpu_ms(part):.2f} ms" for part in PARTS)
        lines.append(
            f"| {run.route.name} | {run.rate:,.0f} | {reads.share(run):.2f} | {target} | {shown} | "
            f"{run.p50_ms:.1f} ms | {cpu} | {run.cores_busy():.2f} | {'; '.join(run.errors) or 'none'} |"
        )
    return "\n".join(lines)
