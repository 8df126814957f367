"""Processes the fault tests start, break and restart themselves: a Celery worker that can be killed,
a Redis brought back on the port it died on, a private PostgreSQL cluster that can be stopped, and
an HTTP client that times every call. Everything started here is stopped when its block ends."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import redis

from tests import live
from tests.live import RedisProcess, free_port
from tests.missing import missing

ROOT = Path(__file__).resolve().parents[2]


# --- Celery ---------------------------------------------------------------------------------------


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def children(self) -> list[int]:
        """Pids of the pool's child processes (prefork)."""
        return live.children(self.process.pid)

    def kill(self) -> None:
        """kill -9 the worker's main process (its children die with it: they watch their parent)."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@contextmanager
def celery_worker(
    workdir: Path, *, broker: str, backend: str, pool: str = "threads", concurrency: int = 2, **env: str
) -> Iterator[Worker]:
    """A real worker on `broker`, private to the test, so the test may kill it."""
    log = workdir / f"worker-{uuid.uuid4().hex[:8]}.log"
    with live.celery_worker(
        log, name="reliability", pool=pool, concurrency=concurrency,
        CELERY_BROKER_URL=broker, CELERY_RESULT_BACKEND=backend, **env,
    ) as process:  # fmt: skip
        yield Worker(process, log)


# --- Redis ----------------------------------------------------------------------------------------


def redis_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])


@contextmanager
def redis_on_port(port: int, workdir: Path) -> Iterator[RedisProcess]:
    """A Redis on a given port: the one a test stopped comes back where clients expect it."""
    with live.redis_server(workdir, port=port) as handle:
        yield handle


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port, socket_connect_timeout=0.2).ping())
    except redis.exceptions.RedisError:
        return False


# --- PostgreSQL -----------------------------------------------------------------------------------


def load_stack() -> ModuleType:
    """scripts/stack.py, the module `make test` starts its PostgreSQL with (scripts/ is no package)."""
    if "insights_stack" not in sys.modules:
        spec = importlib.util.spec_from_file_location("insights_stack", ROOT / "scripts" / "stack.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["insights_stack"] = module  # dataclasses look their module up while decorating
        spec.loader.exec_module(module)
    return sys.modules["insights_stack"]


@dataclass
class PrivatePostgres:
    """A cluster of our own, which the test may stop and start again on the same port."""

    stack: ModuleType
    pg: Any  # stack.Postgres
    bindir: Path
    data: Path

    def url(self, database: str = "insights") -> str:
        return self.pg.url(database)

    def stop(self, *, mode: str = "immediate") -> None:
        """`immediate` is a crash (no checkpoint; recovery replays the WAL on start); `fast` a clean
        shutdown. Either way every client connection is cut."""
        argv = [self.bindir / "pg_ctl", "stop", "-D", self.data, "-m", mode, "-w", "-t", "30"]
        self.stack.run_checked(self.stack._as_postgres(argv), what=f"pg_ctl stop -m {mode}")

    def start(self) -> None:
        port = self.stack._start_cluster(self.bindir / "pg_ctl", self.data, self.pg.port, durable=True)
        assert port == self.pg.port, "PostgreSQL came back on another port"


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh, durable cluster (fsync on, as in production) with an empty `insights` database."""
    stack = load_stack()
    bindir = stack.system_postgres_bindir()
    if bindir is None:  # `make test` installs it; a bare developer machine may lack it
        missing(
            "PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)",
            install="apt-get install postgresql (`make test` does, when run as root)",
        )
    # As root the `postgres` user must reach the data directory: /tmp, traversable.
    scratch = Path(tempfile.mkdtemp(prefix="insights-reliability-pg-", dir="/tmp"))
    scratch.chmod(0o711)
    try:
        with stack.postgres_cluster(bindir, scratch / "pg", free_port(), durable=True) as pg:
            stack.create_database(pg, "insights")
            yield PrivatePostgres(stack, pg, bindir, scratch / "pg")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def manage(*args: str, env: dict[str, str]) -> str:
    """Run a manage.py command as an operator would; its stdout."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**os.environ, **env},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


# --- HTTP -----------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    content: bytes
    headers: httpx.Headers
    seconds: float
    started: float  # time.monotonic() when sent
    error: str | None = None  # a transport failure (no HTTP answer at all)

    def json(self) -> Any:
        return httpx.Response(self.status, content=self.content).json()


@dataclass
class Caller:
    """An HTTP client for a live server: keeps cookies (for sessions), times every call, and records a
    transport failure (refused, reset, timed out) as an answer with status 0 instead of raising."""

    base_url: str
    key: str | None = None
    timeout: float = 30.0
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url, timeout=self.timeout)

    def __call__(
        self, method: str, path: str, *, body: Any = None, content: bytes | None = None, **headers: str
    ) -> Answer:
        if self.key:
            headers.setdefault("Authorization", f"Bearer {self.key}")
        if "posthog_csrftoken" in self.client.cookies and method not in ("GET", "HEAD", "OPTIONS"):
            headers.setdefault("X-CSRFToken", self.client.cookies["posthog_csrftoken"])
        started = time.monotonic()
        try:
            response = self.client.request(
                method, path, json=body if content is None else None, content=content, headers=headers
            )
        except httpx.HTTPError as error:
            return Answer(0, b"", httpx.Headers(), time.monotonic() - started, started, repr(error))
        return Answer(
            response.status_code, response.content, response.headers, time.monotonic() - started, started
        )

    def close(self) -> None:
        self.client.close()
