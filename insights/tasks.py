"""Celery tasks of the insights app: asynchronous query runs."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from accounts.models import Project
from insights.cancellation import query_registration
from insights.query_nodes import query_parse
from insights.query_runner import QueryCancelled, QueryTimedOut, query_run, query_status_set
from insights.trends import UnsupportedQuery


@shared_task(name="insights.run_query", acks_late=True)
def run_query(
    *, project_id: int, query: dict[str, Any], query_id: str, user_id: int, client_query_id: str | None
) -> None:
    """Compute a query for `refresh=async` and record its status; a cancel of its client_query_id
    stops the statement (nobody waits on it but the status route)."""
    project = Project.objects.get(id=project_id)
    execution = f"query-async:{project_id}:{query_id}"
    query_status_set(project_id=project_id, query_id=query_id)
    try:
        if client_query_id:
            with query_registration(project_id=project_id, user_id=user_id, client_query_id=client_query_id,
                                    execution_id=execution, stop_on_cancel=True):  # fmt: skip
                outcome = query_run(
                    project=project,
                    node=query_parse(query),
                    refresh="force_blocking",
                    execution_key=execution,
                )
        else:
            outcome = query_run(
                project=project, node=query_parse(query), refresh="force_blocking", execution_key=execution
            )
    except (QueryCancelled, QueryTimedOut, UnsupportedQuery) as exc:
        message = "Query cancelled." if isinstance(exc, QueryCancelled) else str(exc) or "Query timed out."
        query_status_set(
            project_id=project_id, query_id=query_id, complete=True, error=True, error_message=message
        )
        return
    query_status_set(project_id=project_id, query_id=query_id, complete=True, **outcome.as_json())
