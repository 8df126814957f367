"""The errors a query over the events store ends with, whichever store holds the events."""

from __future__ import annotations

from infra.errors import DomainError

# How long a client should wait before retrying when the events store does not answer.
UNAVAILABLE_RETRY_SECONDS = 5


class QueryCancelled(DomainError):
    """The statement was cancelled on request (or the caller's wait for it was)."""

    code = "query_cancelled"
    default_detail = "The query was cancelled."


class QueryTimedOut(DomainError):
    """The statement ran past the query timeout: every caller waiting for it answers this."""

    code = "query_timeout"
    default_detail = "The query ran past the time limit; narrow its date range or filters."
    of_the_work = True


class EventsStoreUnavailable(DomainError):
    """The events store (ClickHouse) does not answer, or is not set up: the service failed, not the
    request, so it is a 503 that says when to retry."""

    status = 503
    code = "events_store_unavailable"
    type = "server_error"
    default_detail = "The events store is unavailable; try again shortly."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail)
        self.retry_after = UNAVAILABLE_RETRY_SECONDS


class EventsRefused(ValueError):
    """The store refused events it was given (a value it cannot hold); nothing was written."""
