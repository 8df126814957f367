"""What the two result routes — insight retrieve and `POST …/query/` — share at the HTTP layer: their
parsed request as insights/results.py takes it, and what their OpenAPI descriptions add."""

from __future__ import annotations

from typing import Any

from rest_framework.request import Request

from accounts.api.authentication import request_user
from accounts.models import Project
from apikit.coalescing import arrived, coalescing_key
from apikit.schema import error_response
from insights.query_nodes import AnyQueryNode
from insights.query_runner import RefreshMode
from insights.results import ResultRequest


def result_request(
    request: Request, *, project: Project, node: AnyQueryNode, params: dict[str, Any]
) -> ResultRequest:
    """The result request a view parsed (`params`: its validated `refresh` and `client_query_id`),
    with when it arrived and what makes it identical to others."""
    refresh: RefreshMode = params["refresh"]
    return ResultRequest(
        project=project, user_id=request_user(request).pk, node=node, refresh=refresh,
        client_query_id=params.get("client_query_id"), coalescing_key=coalescing_key(request._request),
        arrived=arrived(request._request),
    )  # fmt: skip


# What the result routes (insight retrieve, the query route) add to their description, and their errors.
RESULT_DOCS = (
    " Queries run in the project's lane: at most QUERY_CONCURRENCY_PER_PROJECT at once (2 by default), "
    "the others wait in arrival order; a request that gets no turn within QUERY_QUEUE_TIMEOUT_SECONDS "
    "(30 by default) answers 429 `too_many_concurrent_queries` with `Retry-After`. QUERY_TIMEOUT_MS "
    "bounds the run itself (400 `query_timeout`), never the wait for a turn. A query no query worker "
    "takes — none is running, or every one is stopped — answers 503 `query_workers_unavailable` within "
    "QUERY_PICKUP_TIMEOUT_SECONDS (5 by default), with `Retry-After`."
)
RESULT_ERRORS = {
    429: error_response(
        "Throttled (`throttled`), or `too_many_concurrent_queries`: the project already runs its share of "
        "queries and no turn came within the queue bound. Retry after `Retry-After` seconds."
    ),
    503: error_response(
        "`query_workers_unavailable`: no query worker took the query (none is running, all are stopped, "
        "or all stayed busy). `service_unavailable`: PostgreSQL or Redis is unreachable, or the query's "
        "worker stopped before it finished. Retry after `Retry-After` seconds."
    ),
}
