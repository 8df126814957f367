"""Measuring tools for the benchmarks: an HTTP client, latency percentiles, statement counts
(pg_stat_statements), CPU time of process trees, and peak memory."""

from __future__ import annotations

import http.client
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg


@dataclass(frozen=True)
class Figure:
    """One line of the report: a measurement, its target and whether it was met."""

    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""

    def shown(self) -> str:
        return f"{self.value:,.0f}" if self.value >= 100 else f"{self.value:.3g}"


class Client:
    """A keep-alive HTTP client (one connection per thread) with an API key."""

    def __init__(self, base_url: str, key: str) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url
        self.host, self.port, self.key = parts.hostname or "127.0.0.1", parts.port or 80, key
        self._local = threading.local()

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, dict[str, str]]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = http.client.HTTPConnection(
                self.host, self.port, timeout=120
            )
        headers = {"Authorization": f"Bearer {self.key}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        except (http.client.HTTPException, OSError):
            self._local.connection = None  # reconnect next time (e.g. the server closed keep-alive)
            raise

    def timed(self, method: str, path: str, body: Any = None, *, expect: int = 200) -> float:
        started = time.perf_counter()
        status, content, _ = self.call(method, path, body)
        elapsed = time.perf_counter() - started
        if status != expect:
            raise RuntimeError(f"{method} {path} answered {status}: {content[:300]!r}")
        return elapsed


def p50_ms(samples: Iterable[float]) -> float:
    return statistics.median(samples) * 1000


def repeat(times: int, call: Callable[[], float], *, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        call()
    return [call() for _ in range(times)]


class Statements:
    """Counts the SQL statements the service runs, from PostgreSQL's own pg_stat_statements."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url

    def reset(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            connection.execute("SELECT pg_stat_statements_reset()")

    # The service's own statements: not this tool's, and not the foreign-key checks PostgreSQL runs
    # itself at commit, one per written row (their cost shows in the latencies).
    OWN = (
        "FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid "
        "WHERE d.datname = current_database() AND position('pg_stat_statements' in s.query) = 0 "
        "AND s.query !~ '^SELECT (1|\\$[0-9]+) FROM ONLY '"
    )

    def total(self) -> int:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return int(connection.execute(f"SELECT coalesce(sum(calls), 0) {self.OWN}").fetchone()[0])

    def busiest(self, limit: int = 3) -> list[tuple[int, str]]:
        """The most-called statements since the last reset, to explain a count."""
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            rows = connection.execute(
                f"SELECT calls, left(s.query, 80) {self.OWN} ORDER BY calls DESC LIMIT %s", [limit]
            )
            return [(int(calls), " ".join(query.split())) for calls, query in rows]

    def per_request(self, requests: int, call: Callable[[], object]) -> float:
        """Run `call` `requests` times (after one warm-up) and divide the statements they ran."""
        call()
        self.reset()
        for _ in range(requests):
            call()
        return self.total() / requests

    def calls_matching(self, pattern: str) -> int:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            row = connection.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query ILIKE %s", [pattern]
            ).fetchone()
        return int(row[0])


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants, from /proc (no procps needed)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def cpu_seconds(root: int) -> float:
    """User + system CPU seconds used so far by `root` and its descendants, the ones that have
    exited included: a PostgreSQL backend that served a connection and ended is reaped by the
    postmaster, which accounts its time as its children's (cutime, cstime)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(field) for field in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


def peak_rss_mb(pid: int) -> float:
    """The high-water mark of a running process's resident memory (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
