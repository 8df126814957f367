"""What HTTP knows of coalescing (docs/queries.md#coalescing): when a request arrived, what makes two
requests identical, and the `X-Coalesced` header. The protocol itself is infra/executions.py, and
insights/results.py uses it for result requests, after each request's own checks.

`CoalescingMiddleware` notes when each request arrived, keys the requests of the actions a view
lists in `coalesced_actions` (before the view reads the body), and stamps the response with the role
the view gave it (`leader`, `follower`, or `off`: nothing shared). The key is the project and the
normalised request, without `client_query_id` and `session_id`.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "X-Coalesced"
# Per-request identifiers that must not split otherwise identical requests.
IGNORED_FIELDS = frozenset({"client_query_id", "session_id"})
# The two names of a project's routes (docs/posthog-clients.md).
PROJECTS, ENVIRONMENTS = "/api/projects/", "/api/environments/"


@dataclass
class Coalescing:
    """What the middleware and the view note on a request, kept on it under one attribute."""

    arrived: float  # time.monotonic()
    key: str | None = None  # for a coalesced action's request
    role: str | None = None  # the `X-Coalesced` the view gave it


def _coalescing(request: HttpRequest) -> Coalescing:
    """The request's notes; a request the middleware did not see arrives now."""
    notes = vars(request)  # HttpRequest declares no attribute of ours: the notes go in its __dict__
    noted = notes.get("coalescing")
    if not isinstance(noted, Coalescing):
        noted = notes["coalescing"] = Coalescing(arrived=time.monotonic())
    return noted


class CoalescingMiddleware:
    """Notes each request's arrival, keys the requests that may be coalesced, labels their answers."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        noted = _coalescing(request)
        response = self.get_response(request)
        role = noted.role
        if role is not None:
            response[HEADER] = role
        return response

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., HttpResponse],
        view_args: tuple[object, ...],
        view_kwargs: dict[str, object],
    ) -> None:
        view_class = getattr(view_func, "cls", None)
        action = (getattr(view_func, "actions", None) or {}).get((request.method or "").lower())
        if action and action in getattr(view_class, "coalesced_actions", ()):
            _coalescing(request).key = key_of(request)


def coalescing_key(request: HttpRequest) -> str:
    """The key the middleware gave a request of a coalesced action."""
    key = _coalescing(request).key
    assert key is not None, "not a request of a coalesced action"
    return key


def arrived(request: HttpRequest) -> float:
    """When the request arrived (time.monotonic())."""
    return _coalescing(request).arrived


def label(request: HttpRequest, role: str) -> None:
    """Say in `X-Coalesced` what the request was: leader, follower or off."""
    _coalescing(request).role = role


def key_of(request: HttpRequest) -> str:
    """The request minus what differs between identical requests: method, path (which names the
    project; `/api/environments/` is the same route as `/api/projects/`), query parameters and JSON
    body, each without client_query_id and session_id. With COALESCING_ENABLED off, every request's
    key is its own."""
    if not settings.COALESCING_ENABLED:
        return "coalesce:{" + uuid.uuid4().hex + "}"
    params = sorted(
        (name, value)
        for name, values in request.GET.lists()
        for value in values
        if name not in IGNORED_FIELDS
    )
    try:
        body: object = json.loads(request.body or b"null")
        if isinstance(body, dict):
            body = {name: value for name, value in body.items() if name not in IGNORED_FIELDS}
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to parse: key the raw bytes
        body = request.body.hex()
    path = request.path.rstrip("/")
    if path.startswith(ENVIRONMENTS):
        path = PROJECTS + path.removeprefix(ENVIRONMENTS)
    canonical = json.dumps([request.method, path, params, body], sort_keys=True, default=str)
    return "coalesce:{" + hashlib.sha256(canonical.encode()).hexdigest() + "}"
