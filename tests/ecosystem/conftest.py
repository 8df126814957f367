"""A private, production-shaped stack for the ecosystem tests (SDK, fuzzing, docs in a browser,
observability): gunicorn (several processes) and a Celery worker process on the test database, with
their own Redis (so the worker started here is the only consumer of its broker) and a shared
Prometheus multiprocess directory (so the server's /metrics shows the worker's samples too).

Data the server or the worker must see has to be committed: tests use `transaction=True`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.backends.redis import RedisBackend
from celery.result import AsyncResult
from django.utils import timezone
from kombu import Connection

from accounts.models import User
from accounts.services import personal_api_key_create
from insights.models import Event
from tests.live import LiveServer, celery_worker, free_port, live_server, redis_server

# Only publishes, always with explicit connections; the worker runs the project's own app.
_publisher = Celery("ecosystem-tests")


@dataclass
class Stack:
    server: LiveServer
    env: dict[str, str]  # what the server and the worker run with
    worker_log: Path
    worker_metrics_url: str  # the worker's own exporter (WORKER_METRICS_PORT)

    @property
    def url(self) -> str:
        return self.server.url

    def send_task(self, name: str, **kwargs: Any) -> AsyncResult:
        """Publish a task to the stack's broker, as the web processes do. (Celery lets this process's
        CELERY_BROKER_URL and CELERY_RESULT_BACKEND variables win over any configuration, so the
        stack's connection and result backend are passed explicitly.)"""
        with Connection(self.env["CELERY_BROKER_URL"]) as connection:
            sent = _publisher.send_task(name, kwargs=kwargs, connection=connection)
        backend = RedisBackend(app=_publisher, url=self.env["CELERY_RESULT_BACKEND"])
        return _publisher.AsyncResult(sent.id, backend=backend)

    def worker_lines(self, *, queries: bool = False) -> list[dict[str, Any]]:
        """The log lines of the worker (or, with `queries`, of the query worker) after its start-up
        banner, parsed: each must be a JSON object."""
        log = self.server.query_worker_log if queries else self.worker_log
        assert log is not None
        return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]

    def server_lines(self) -> list[dict[str, Any]]:
        """The app's log lines in gunicorn's output (gunicorn's own lines are not JSON)."""
        return [json.loads(line) for line in self.server.log.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, django_db_setup: None) -> Iterator[Stack]:
    workdir = tmp_path_factory.mktemp("ecosystem")
    metrics_dir = workdir / "metrics"
    metrics_dir.mkdir()
    with ExitStack() as running:
        redis = running.enter_context(redis_server(workdir))
        base = redis.url.rsplit("/", 1)[0]
        env = {
            "REDIS_URL": f"{base}/0",
            "CELERY_BROKER_URL": f"{base}/1",
            "CELERY_RESULT_BACKEND": f"{base}/2",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "LOG_FORMAT": "json",
        }
        worker_metrics_port = free_port()
        running.enter_context(
            celery_worker(
                workdir / "worker.log", name="ecosystem", **env, WORKER_METRICS_PORT=str(worker_metrics_port)
            )
        )
        server = running.enter_context(live_server(workdir, workers=2, redis_url=env["REDIS_URL"], **env))
        started = Stack(
            server=server,
            env=env,
            worker_log=workdir / "worker.log",
            worker_metrics_url=f"http://127.0.0.1:{worker_metrics_port}/metrics",
        )
        yield started


@pytest.fixture
def key_for(db: None) -> Callable[..., str]:
    """A fresh API key secret of `user` with `scopes` (default `*`)."""

    def issue(user: User, scopes: list[str] | None = None, projects: list[int] | None = None) -> str:
        return personal_api_key_create(
            user=user, label="ecosystem", scopes=scopes or ["*"], scoped_project_ids=projects
        ).secret

    return issue


@pytest.fixture
def pageviews(project) -> None:
    """29 pageviews, one an hour over the last 29 hours, by three people on two browsers (committed:
    the server sees them)."""
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(project=project, timestamp=now - timedelta(hours=hours), event="$pageview", distinct_id=f"u{hours % 3}",
               properties={"$browser": "Firefox" if hours % 2 else "Chrome"})
         for hours in range(1, 30)]
    )  # fmt: skip
