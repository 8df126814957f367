"""What every part of the Trends engine shares: the breakdown markers, its limits and its refusals."""

from __future__ import annotations

from infra.errors import DomainError
from insights.query_nodes import TrendsQuery

BREAKDOWN_OTHER = "$$_posthog_breakdown_other_$$"
BREAKDOWN_NULL = "$$_posthog_breakdown_null_$$"
DEFAULT_BREAKDOWN_LIMIT = 25
DEFAULT_DATE_FROM = "-7d"
MAX_BUCKETS = 10_000


class UnsupportedQuery(DomainError, ValueError):
    """A valid query this engine cannot run (yet); `code` says what is unsupported."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail, code=code)


def breakdown_key(query: TrendsQuery) -> str | None:
    """The one event property the query is broken down by, or None."""
    breakdown = query.breakdownFilter
    if breakdown is None:
        return None
    key: str | int | list[str | int] | None
    if breakdown.breakdowns:
        if len(breakdown.breakdowns) > 1:
            raise UnsupportedQuery("unsupported_breakdown", "Only one breakdown property is supported.")
        key, kind = breakdown.breakdowns[0].property, breakdown.breakdowns[0].type
    else:
        key, kind = breakdown.breakdown, breakdown.breakdown_type
    if key is None or key == "":
        return None
    if isinstance(key, list):
        if len(key) != 1:
            raise UnsupportedQuery("unsupported_breakdown", "Only one breakdown property is supported.")
        key = key[0]
    if kind not in (None, "event"):
        raise UnsupportedQuery("unsupported_breakdown", f"Breakdowns by {kind} properties are not supported.")
    return str(key)


def breakdown_limit(query: TrendsQuery) -> int:
    return (
        query.breakdownFilter.breakdown_limit if query.breakdownFilter else None
    ) or DEFAULT_BREAKDOWN_LIMIT
