"""Celery tasks of the insights app: computing executions, on QUERY_QUEUE (the query workers)."""

from __future__ import annotations

from celery import shared_task

from infra.json_types import JSONObject
from insights.query_workers import COMPUTE_TASK, execution_compute


# Acknowledged as it starts, never redelivered: an execution whose worker dies is settled through its
# lease (its waiters answer 503), and a redelivery would find it settled and skip it. (Acknowledging
# when done would also crash the worker whenever Redis drops its connection mid-run: kombu 5.7 then
# restores unacknowledged messages through the connection it has just closed.) Workers fetch a task
# only when a process is free (CELERY_WORKER_DISABLE_PREFETCH), so none waits in a busy worker.
@shared_task(name=COMPUTE_TASK, acks_late=False, ignore_result=True)
def compute_execution(*, execution_id: str, project_id: int, query: JSONObject) -> None:
    """Compute one execution of a result request (insights/query_workers.py)."""
    execution_compute(execution_id=execution_id, project_id=project_id, query=query)
