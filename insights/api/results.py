"""Answering a result request — insight retrieve and `POST …/query/` — with one flow (docs/queries.md, docs/workload-isolation.md).

1. `async` / `force_async`: a fresh cached result (`async` only), else start a run in the query lane
   and answer its status at once.
2. A fresh cached result (`blocking`) or whatever is cached (`force_cache`): answered at once,
   without coalescing (nothing to compute).
3. Otherwise the request coalesces with identical ones and the one execution takes its project's
   turn in the query lane (insights/query_execution.py). Each caller waits for its turn at most
   QUERY_QUEUE_TIMEOUT_SECONDS (then 429 `too_many_concurrent_queries`, with Retry-After); a cancel
   of its `client_query_id` ends its wait at once (400 `query_cancelled`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from django.conf import settings
from rest_framework import status
from rest_framework.response import Response

from accounts.models import Project
from apikit.coalescer import CallerCancelled, TurnNotReached, Waiter
from apikit.schema import error_response
from infra.metrics import QUERY_CANCELLATIONS, QUERY_LANE_REJECTIONS
from insights.cancellation import Registration, query_registration
from insights.query_execution import QueryTurnTimeout, query_execute, query_start_later
from insights.query_nodes import AnyQueryNode
from insights.query_runner import (
    QueryCancelled,
    RefreshMode,
    query_fresh_cached,
    query_run,
    query_stop,
)

# How the response fields of a result (`results`, `is_cached`, …) become a route's body.
Render = Callable[[dict[str, Any]], dict[str, Any]]

# What the result routes add to their OpenAPI description, and the errors of their own.
LANE_DOCS = (
    " Queries run in the project's lane: at most QUERY_CONCURRENCY_PER_PROJECT at once (2 by default), "
    "the others wait in arrival order; a request that gets no turn within QUERY_QUEUE_TIMEOUT_SECONDS "
    "(30 by default) answers 429 `too_many_concurrent_queries` with `Retry-After`. QUERY_TIMEOUT_MS "
    "bounds the run itself (400 `query_timeout`), never the wait for a turn."
)
RESULT_ERRORS = {
    429: error_response(
        "Throttled (`throttled`), or `too_many_concurrent_queries`: no turn in the project's query lane "
        "came within the queue bound. Retry after `Retry-After` seconds."
    ),
    503: error_response(
        "PostgreSQL or Redis is unreachable, or the query's worker stopped before it finished; retry."
    ),
}


def result_response(
    view: Any,
    *,
    node: AnyQueryNode,
    refresh: RefreshMode,
    client_query_id: str | None,
    render: Render,
    started_status: int = status.HTTP_202_ACCEPTED,
) -> Response:
    """The answer to a result request of `view` (a project-scoped, coalescing viewset) whose own
    checks have passed. `render` turns the result fields into the route's body; an async run that
    started answers `started_status`."""
    project: Project = view.project
    if refresh in ("async", "force_async"):
        fields = _fresh(project, node) if refresh == "async" else None
        if fields is None:
            query_status = query_start_later(
                project=project, node=node, refresh=refresh, user_id=view.request.user.pk,
                client_query_id=client_query_id,
            )  # fmt: skip
            fields = {"results": None, "is_cached": False, "last_refresh": None, "timezone": project.timezone,
                      "query_status": query_status}  # fmt: skip
        return Response(
            render(fields), status=status.HTTP_200_OK if fields["query_status"] is None else started_status
        )

    ready = _cached(project, node, refresh)
    if ready is not None:
        return view.uncoalesced(render(ready))

    def produce(execution: Any) -> tuple[int, dict[str, Any]]:
        return 200, render(_computed(project, node, refresh, execution))

    arrived = getattr(view.request._request, "arrived", time.monotonic())
    waiter = Waiter(
        arrived=arrived,
        turn_seconds=settings.QUERY_QUEUE_TIMEOUT_SECONDS,
        cancellation=_cancellation(project.id, view.request.user.pk, client_query_id),
    )
    try:
        return view.coalesced(produce, waiter=waiter, stop=_stop)
    except CallerCancelled:  # the coalescer's word for it; the caller's, to the caller
        QUERY_CANCELLATIONS.labels(effect="waiter").inc()
        raise QueryCancelled from None
    except TurnNotReached:
        QUERY_LANE_REJECTIONS.labels(project=str(project.id)).inc()
        raise QueryTurnTimeout from None


def _stop(execution_id: str) -> None:
    """Nobody waits for this execution any more: stop its statement (a queued run is dropped by its
    dispatcher, which sees the execution abandoned)."""
    if query_stop(execution_id):
        QUERY_CANCELLATIONS.labels(effect="backend").inc()


def _cancellation(
    project_id: int, user_id: int, client_query_id: str | None
) -> Callable[[str], AbstractContextManager[Registration | None]]:
    """Registers a wait under the caller's client_query_id, so that `cancel` can end it."""

    def register(execution_id: str) -> AbstractContextManager[Registration | None]:
        if client_query_id is None:
            return nullcontext()
        return query_registration(
            project_id=project_id, user_id=user_id, client_query_id=client_query_id, execution_id=execution_id
        )

    return register


def _fresh(project: Project, node: AnyQueryNode) -> dict[str, Any] | None:
    fresh = query_fresh_cached(project=project, node=node)
    return None if fresh is None else {**fresh.as_json(), "query_status": None}


def _cached(project: Project, node: AnyQueryNode, refresh: RefreshMode) -> dict[str, Any] | None:
    """The result fields without computing anything, when the refresh mode allows it: a fresh
    cached result for `blocking`, whatever is cached (or null) for `force_cache`. None: compute."""
    if refresh == "force_cache":
        return {**query_run(project=project, node=node, refresh=refresh).as_json(), "query_status": None}
    if refresh == "blocking":
        return _fresh(project, node)
    return None


def _computed(project: Project, node: AnyQueryNode, refresh: RefreshMode, execution: Any) -> dict[str, Any]:
    """The result fields of a computation in the query lane. Its failures are DomainErrors: a
    timeout is the query's own (every waiter answers it), a cancel or a refusal only this caller's."""
    outcome = query_execute(project=project, node=node, refresh=refresh, execution=execution)
    return {**outcome.as_json(), "query_status": None}
