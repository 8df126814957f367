"""Celery wiring for operators: the request id travels with every task, and every task's outcome is
counted. Connected by insights_api/celery.py, so it is active in web processes (which publish) and in
workers (which run tasks).

1. Publishing (`before_task_publish`): the current request id goes into the message's headers.
2. Running (`task_prerun`/`task_postrun`): the worker puts that request id, the task id and the
   task name in the log context, so every line the task logs names the request that caused it.
3. Finishing: `insights_celery_tasks_total{task, outcome}` counts success, failure, retry, revoked,
   rejected and unknown for every task, without any code in the tasks themselves.
4. With WORKER_METRICS_PORT set, the worker serves its processes' metrics over HTTP (for a worker
   that shares no PROMETHEUS_MULTIPROC_DIR with the web processes, e.g. in its own container).
"""

from __future__ import annotations

from celery import Task, signals
from django.conf import settings
from kombu import Message
from prometheus_client import start_http_server

from infra.logs import LogContextToken, current_request_id, log_context_reset, log_context_set
from infra.metrics import CELERY_TASKS, metrics_registry

HEADER = "request_id"

# Log-context tokens of the tasks running in this process, by task id (a thread pool runs several).
_tokens: dict[str, LogContextToken] = {}


@signals.before_task_publish.connect
def _send_request_id(headers: dict[str, object] | None = None, **_: object) -> None:
    request_id = current_request_id()
    if request_id and headers is not None:
        headers.setdefault(HEADER, request_id)


@signals.task_prerun.connect
def _enter_task_context(task_id: str | None = None, task: Task | None = None, **_: object) -> None:
    if task_id is None or task is None:
        return
    _tokens[task_id] = log_context_set(
        request_id=getattr(task.request, HEADER, None), task_id=task_id, task_name=task.name
    )


@signals.task_postrun.connect
def _leave_task_context(task_id: str | None = None, **_: object) -> None:
    token = _tokens.pop(task_id, None) if task_id is not None else None
    if token is not None:
        log_context_reset(token)


def _count(task_name: str | None, outcome: str) -> None:
    CELERY_TASKS.labels(task=task_name or "unknown", outcome=outcome).inc()


@signals.task_success.connect
def _count_success(sender: Task | None = None, **_: object) -> None:
    _count(getattr(sender, "name", None), "success")


@signals.task_failure.connect
def _count_failure(sender: Task | None = None, **_: object) -> None:
    _count(getattr(sender, "name", None), "failure")


@signals.task_retry.connect
def _count_retry(sender: Task | None = None, **_: object) -> None:
    _count(getattr(sender, "name", None), "retry")


@signals.task_revoked.connect
def _count_revoked(sender: Task | None = None, request: object = None, **_: object) -> None:
    _count(getattr(sender, "name", None) or getattr(request, "task", None), "revoked")


@signals.task_rejected.connect
def _count_rejected(message: Message | None = None, **_: object) -> None:
    headers = getattr(message, "headers", None) or {}
    _count(headers.get("task"), "rejected")


@signals.task_unknown.connect
def _count_unknown(name: str | None = None, **_: object) -> None:
    _count(name, "unknown")


@signals.worker_ready.connect
def _serve_worker_metrics(**_: object) -> None:
    if settings.WORKER_METRICS_PORT:
        start_http_server(settings.WORKER_METRICS_PORT, registry=metrics_registry(shared_state=False))
