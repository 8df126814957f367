"""Celery tasks of the insights app: query runs, on the `queries` queue of the query workers."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from insights.query_execution import query_run_perform
from insights.query_runner import RefreshMode


# Acknowledged when done, so a query worker holds no more runs than it computes (no run waits in one
# worker's buffer while another worker is free). A run whose worker dies is not redelivered: its
# dispatcher sees the lapsed lease and answers 503, and a redelivery would find the run `lost`.
@shared_task(name="insights.execute_query", acks_late=True, reject_on_worker_lost=False, ignore_result=True)
def execute_query(
    *, run_id: str, project_id: int, query: dict[str, Any], refresh: RefreshMode, execution_id: str
) -> None:
    """Compute one query run of the query lane (insights/query_execution.py)."""
    query_run_perform(
        run_id=run_id, project_id=project_id, query=query, refresh=refresh, execution_id=execution_id
    )
