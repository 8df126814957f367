"""Query results for API responses, shared by `POST …/query/` and insight retrieve."""

from __future__ import annotations

import uuid
from typing import Any

import redis
from kombu.exceptions import OperationalError as BrokerUnavailable

from accounts.models import Project
from insights.query_nodes import AnyQueryNode
from insights.query_runner import (
    QueryCancelled,
    QueryTimedOut,
    RefreshMode,
    query_fresh_cached,
    query_run,
    query_status_set,
)
from insights.trends import UnsupportedQuery
from insights_api.api.exceptions import InvalidRequest, ServiceUnavailable
from insights_api.celery import app as celery_app

RUN_QUERY_TASK = "insights.run_query"  # insights/tasks.py; sent by name


def results_now(
    *, project: Project, node: AnyQueryNode, refresh: RefreshMode, execution_key: str | None
) -> dict[str, Any]:
    """Results per a blocking refresh mode, as the response fields `results`, `is_cached`,
    `last_refresh`, `timezone` and `query_status`."""
    try:
        outcome = query_run(project=project, node=node, refresh=refresh, execution_key=execution_key)
    except QueryCancelled:
        raise InvalidRequest("The query was cancelled.", code="query_cancelled") from None
    except QueryTimedOut:
        raise InvalidRequest(
            "The query ran past the time limit; narrow its date range or filters.", code="query_timeout"
        ) from None
    except UnsupportedQuery as exc:
        raise InvalidRequest(str(exc), code=exc.code) from None
    return {**outcome.as_json(), "query_status": None}


def results_cached(*, project: Project, node: AnyQueryNode, refresh: RefreshMode) -> dict[str, Any] | None:
    """The response fields without computing anything, when the refresh mode allows it: a fresh
    cached result for `blocking`, whatever is cached (or null) for `force_cache`. None: compute."""
    if refresh == "force_cache":
        return results_now(project=project, node=node, refresh=refresh, execution_key=None)
    if refresh == "blocking":
        fresh = query_fresh_cached(project=project, node=node)
        return None if fresh is None else {**fresh.as_json(), "query_status": None}
    return None


def results_later(
    *, project: Project, node: AnyQueryNode, refresh: RefreshMode, user_id: int, client_query_id: str | None
) -> dict[str, Any]:
    """`async`: the cached result if fresh (not for `force_async`), else start a run on a worker and
    answer its status at once; poll GET …/query/{id}/ for the outcome."""
    if refresh == "async":
        fresh = query_fresh_cached(project=project, node=node)
        if fresh is not None:
            return {**fresh.as_json(), "query_status": None}
    query_id = uuid.uuid4().hex
    try:
        status = query_status_set(project_id=project.id, query_id=query_id)
        celery_app.send_task(
            RUN_QUERY_TASK,
            kwargs={
                "project_id": project.id,
                "query": node.model_dump(mode="json", exclude_none=True),
                "query_id": query_id,
                "user_id": user_id,
                "client_query_id": client_query_id,
            },
            retry=False,
        )
    # RuntimeError: Celery's result consumer could not reach Redis to subscribe to the task.
    except (BrokerUnavailable, redis.exceptions.RedisError, RuntimeError):
        raise ServiceUnavailable("Asynchronous queries need the broker; use refresh=blocking.") from None
    return {
        "results": None,
        "is_cached": False,
        "last_refresh": None,
        "timezone": project.timezone,
        "query_status": status,
    }
