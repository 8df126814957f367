"""Request latency by route for Prometheus, and one structured log line per request."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from infra.metrics import REQUEST_LATENCY

logger = logging.getLogger("insights_api.request")

_NAMED_GROUP = re.compile(r"\(\?P<(\w+)>[^)]*\)")
_REGEX_SYNTAX = re.compile(r"\^|\$|\?")
# Any other method (callers may send anything) is counted as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_of(request: HttpRequest) -> str:
    """The URL pattern that served the request (`/api/projects/{project_id}/insights/{pk}/`), never
    the raw path, so the metric's label values stay few whatever URLs callers invent."""
    match = getattr(request, "resolver_match", None)
    if match is None:  # answered before URL resolution (static files) or no route matched
        return "(static)" if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")) else "(unmatched)"
    pattern = _NAMED_GROUP.sub(r"{\1}", match.route)
    return "/" + _REGEX_SYNTAX.sub("", pattern)  # anchors, and the optional trailing slash kept as "/"


class RequestMetricsMiddleware:
    """Times each request into `insights_http_request_duration_seconds{method, route, status}` and
    logs `METHOD route status` with the duration (the request id comes from the log context)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        seconds = time.perf_counter() - started
        route = route_of(request)
        method = request.method if request.method in _METHODS else "other"
        REQUEST_LATENCY.labels(method=method, route=route, status=str(response.status_code)).observe(seconds)
        logger.info(
            "%s %s %s",
            method,
            route,
            response.status_code,
            extra={"method": method, "route": route, "status": response.status_code,
                   "duration_ms": round(seconds * 1000, 1)},
        )  # fmt: skip
        return response
