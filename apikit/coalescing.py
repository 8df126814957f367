"""Coalescing for result requests: identical concurrent requests run once, whatever the crowd
(docs/queries.md, docs/workload-isolation.md). The protocol itself is apikit/coalescer.py.

`CoalescingMiddleware` notes when each eligible request arrived, derives its key — the project and
the normalised request, without `client_query_id` and `session_id` — and stamps the response with
`X-Coalesced`. A view calls `CoalescedResultMixin.coalesced()` only after the request's own
authentication, permission, scope and object checks have passed, so a follower is checked like any
request and an invisible object is a 404 for it, never the leader's body. If Redis cannot be
reached, the request runs on its own (`X-Coalesced: off`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.response import Response

from apikit.coalescer import Coalescer, Produce, Waiter
from infra.metrics import COALESCING_OUTCOMES

HEADER = "X-Coalesced"
# Per-request identifiers that must not split otherwise identical requests.
IGNORED_FIELDS = frozenset({"client_query_id", "session_id"})
# The two names of a project's routes (docs/posthog-clients.md).
PROJECTS, ENVIRONMENTS = "/api/projects/", "/api/environments/"


class CoalescingMiddleware:
    """Keys eligible requests (views list them in `coalesced_actions`) and labels their responses."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.arrived = time.monotonic()  # type: ignore[attr-defined]
        response = self.get_response(request)
        role = getattr(request, "coalescing_role", None)
        if role is not None:
            response[HEADER] = role
        return response

    def process_view(self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any) -> None:
        view_class = getattr(view_func, "cls", None)
        action = (getattr(view_func, "actions", None) or {}).get((request.method or "").lower())
        if action and action in getattr(view_class, "coalesced_actions", ()):
            request.coalescing_key = coalescing_key(request)  # type: ignore[attr-defined]


def coalescing_key(request: HttpRequest) -> str:
    """The request minus what differs between identical requests: method, path (which names the
    project; `/api/environments/` is the same route as `/api/projects/`), query parameters and JSON
    body, each without client_query_id and session_id."""
    params = sorted(
        (name, value)
        for name, values in request.GET.lists()
        for value in values
        if name not in IGNORED_FIELDS
    )
    try:
        body: Any = json.loads(request.body or b"null")
        if isinstance(body, dict):
            body = {name: value for name, value in body.items() if name not in IGNORED_FIELDS}
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse: key the raw bytes
        body = request.body.hex()
    path = request.path.rstrip("/")
    if path.startswith(ENVIRONMENTS):
        path = PROJECTS + path.removeprefix(ENVIRONMENTS)
    canonical = json.dumps([request.method, path, params, body], sort_keys=True, default=str)
    return "coalesce:{" + hashlib.sha256(canonical.encode()).hexdigest() + "}"


class CoalescedResultMixin:
    """For views whose result requests may be shared. Set `coalesced_actions` on the view."""

    coalesced_actions: tuple[str, ...] = ()

    def uncoalesced(self, body: Any) -> Response:
        """An answer with nothing to compute (a fresh cache hit), so nothing to share."""
        self.request._request.coalescing_role = "off"  # type: ignore[attr-defined]
        COALESCING_OUTCOMES.labels(role="off").inc()
        return Response(body)

    def coalesced(self, produce: Produce, *, waiter: Waiter, stop: Callable[[str], None]) -> Response:
        """Run `produce` once for every identical request waiting at the same time; `stop(id)` stops
        an execution nobody waits for any more. Raises CallerCancelled or TurnNotReached."""
        request = self.request._request  # type: ignore[attr-defined]
        key = getattr(request, "coalescing_key", None)
        if key is None or not settings.COALESCING_ENABLED:
            status, body = produce(None)
            role = "off"
        else:
            status, body, role = Coalescer(key, stop=stop).run(produce, waiter=waiter)
        COALESCING_OUTCOMES.labels(role=role).inc()
        request.coalescing_role = "leader" if role == "takeover" else role  # leader|follower|off
        return Response(body, status=status)
