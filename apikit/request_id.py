"""Every request gets an id: the caller's `X-Request-ID` when well-formed, else a new UUID.

The id is returned in the response's `X-Request-ID` header, written on every log line of the request
(infra/logs.py), sent along with the Celery tasks the request enqueues
(insights_api/celery_signals.py), and stored on the activity-log entries it writes, so one id ties
together what a caller saw and what the service did.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from infra.logs import log_context_reset, log_context_set

HEADER = "X-Request-ID"
# What a proxy or client may send: short, and safe to echo in a header and a log line.
WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def request_id_from(request: HttpRequest) -> str:
    incoming = request.headers.get(HEADER, "")
    return incoming if WELL_FORMED.fullmatch(incoming) else str(uuid.uuid4())


class RequestIdMiddleware:
    """The outermost middleware, so that every log line and every response has the id."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_from(request)
        token = log_context_set(request_id=request_id)
        try:
            response = self.get_response(request)
        finally:
            log_context_reset(token)
        response[HEADER] = request_id
        return response
