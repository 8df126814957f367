"""Structured logs: one JSON object per line, carrying the request id of the work being done.

The request id lives in a context variable. The request-id middleware (apikit/request_id.py)
sets it for each HTTP request; the Celery signals (insights_api/celery_signals.py) send it with every
task as a message header and set it again on the worker while the task runs, so a task's log lines
name the request that caused them.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime

# What the current line of work is: {"request_id": …} in a request, plus task_id/task_name in a task.
_context: ContextVar[dict[str, str]] = ContextVar("insights_log_context", default={})  # noqa: B039 - never mutated
# What `log_context_set` returns, for `log_context_reset` to restore the fields before it.
LogContextToken = Token[dict[str, str]]

# The attributes every LogRecord has; anything else on a record was passed through `extra=` and is
# written out as a field of its own.
_STANDARD_ATTRIBUTES = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime", "taskName"}
)


def current_request_id() -> str | None:
    return _context.get().get("request_id")


def current_request_uuid() -> uuid.UUID:
    """The current request id as a UUID (what the activity log stores), or a fresh one when there
    is none or it is not a UUID (a caller may send any well-formed id)."""
    try:
        return uuid.UUID(current_request_id() or "")
    except ValueError:
        return uuid.uuid4()


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Add fields to every log line written inside the block (None values are left out)."""
    token = _context.set({**_context.get(), **{name: value for name, value in fields.items() if value}})
    try:
        yield
    finally:
        _context.reset(token)


def log_context_set(**fields: str | None) -> LogContextToken:
    """Like `log_context` for code that cannot wrap a block (signal handlers); pass the returned
    token to `log_context_reset`."""
    return _context.set({**_context.get(), **{name: value for name, value in fields.items() if value}})


def log_context_reset(token: LogContextToken) -> None:
    _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the current context (request id, task) onto each record, for any formatter to use."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _context.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


class JSONFormatter(logging.Formatter):
    """`{"time", "level", "logger", "message", …context and extra fields…, "exception"}` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """Human-readable lines for a terminal (`LOG_FORMAT=plain`), with the request id when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [request_id={request_id}]" if request_id else line
