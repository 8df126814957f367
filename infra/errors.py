"""The one base of the service's own errors: what a rule refused, said once where the rule lives.

A `DomainError` carries the HTTP status it answers, a machine code, the error envelope's type, the
request field at fault (`attr`), a message and, for a 429 or 503, when to retry. Services, selectors
and the query path raise them; nothing below the HTTP plumbing knows HTTP beyond these numbers: the
exception handler (apikit/exceptions.py) writes every one in the envelope
`{"type", "code", "detail", "attr"}`, with `Retry-After` when it says when to retry. An error of the
work itself (`of_the_work`: a query past its time limit) is answered by every coalesced waiter of
that work; any other is the caller's own.
"""

from __future__ import annotations

from typing import ClassVar, TypedDict


class ErrorJSON(TypedDict):
    """A DomainError as JSON (`as_json()`), as one process publishes it for others."""

    type: str
    code: str
    detail: str
    attr: str | None
    status: int
    retry_after: float | None


class DomainError(Exception):
    status: int = 400
    code: str = "invalid_request"
    type: str = "invalid_request"
    attr: ClassVar[str | None] = None
    default_detail: ClassVar[str] = "The request cannot be carried out."
    of_the_work: ClassVar[bool] = False
    retry_after: float | None = None  # seconds, for a 429 or 503 that knows

    def __init__(self, detail: str | None = None, *, code: str | None = None) -> None:
        self.detail = detail or self.default_detail
        if code is not None:
            self.code = code
        super().__init__(self.detail)

    def as_json(self) -> ErrorJSON:
        return {
            "type": self.type,
            "code": self.code,
            "detail": self.detail,
            "attr": self.attr,
            "status": self.status,
            "retry_after": self.retry_after,
        }


class PublishedError(DomainError):
    """A copy of a DomainError that another process published (`as_json()`), raised where it is
    read: a coalesced waiter's copy of an error of the work it waited for."""

    of_the_work = True

    def __init__(self, published: ErrorJSON) -> None:
        super().__init__(published["detail"], code=published["code"])
        self.status = published["status"]
        self.type = published["type"]
        self.retry_after = published.get("retry_after")


class Unavailable(DomainError):
    """A part of the service the request needs is unavailable: 503, retried after `retry_after`
    seconds (the exception handler writes a default when a subclass knows no better)."""

    status = 503
    code = "service_unavailable"
    type = "server_error"
