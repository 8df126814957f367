"""Time in the Trends engine: a query's window in the project's time zone, and its buckets.

Python owns time, the stores only aggregate: the window's ends are exact instants, and each bucket is
named by its local (naive) start, as PostgreSQL's `date_trunc` on a local time names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from insights.dates import date_resolve
from insights.query_nodes import TrendsQuery
from insights.trends.common import DEFAULT_DATE_FROM, MAX_BUCKETS, UnsupportedQuery


@dataclass(frozen=True)
class TimeWindow:
    start: datetime  # aware, inclusive
    end: datetime  # aware, inclusive
    tz: ZoneInfo
    interval: str
    buckets: tuple[datetime, ...]  # naive local starts of each interval


def trends_window(
    query: TrendsQuery, *, tz: ZoneInfo, now: datetime, first_event: datetime | None
) -> TimeWindow:
    """Resolve the query's date range in the project's time zone. `first_event` is needed only for
    `date_from: "all"` (the window then starts at the project's first event)."""
    date_range = query.dateRange
    date_from = (date_range.date_from if date_range else None) or DEFAULT_DATE_FROM
    date_to = date_range.date_to if date_range else None
    if date_from == "all":
        start = first_event or now
    else:
        start = _resolve(date_from, tz=tz, now=now, end_of_day=False)
    end = _resolve(date_to, tz=tz, now=now, end_of_day=True) if date_to else now
    if end < start:
        raise UnsupportedQuery("invalid_date_range", "dateRange.date_to is before dateRange.date_from.")
    buckets = tuple(_buckets(start.astimezone(tz), end.astimezone(tz), query.interval))
    return TimeWindow(start=start, end=end, tz=tz, interval=query.interval, buckets=buckets)


def _resolve(value: str, *, tz: ZoneInfo, now: datetime, end_of_day: bool) -> datetime:
    try:
        return date_resolve(value, now=now, tz=tz, end_of_day=end_of_day)  # the one grammar of every route
    except ValueError as error:
        raise UnsupportedQuery("invalid_date_range", str(error)) from None


def _truncate(moment: datetime, interval: str) -> datetime:
    naive = moment.replace(tzinfo=None)
    if interval == "minute":
        return naive.replace(second=0, microsecond=0)
    if interval == "hour":
        return naive.replace(minute=0, second=0, microsecond=0)
    day = naive.replace(hour=0, minute=0, second=0, microsecond=0)
    if interval == "week":  # weeks start on Monday, as PostgreSQL's date_trunc
        return day - timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def _step(bucket: datetime, interval: str) -> datetime:
    if interval == "month":
        year, month = divmod(bucket.year * 12 + bucket.month, 12)
        return bucket.replace(year=year, month=month + 1)
    return bucket + {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1),
                     "week": timedelta(weeks=1)}[interval]  # fmt: skip


def _buckets(start_local: datetime, end_local: datetime, interval: str) -> list[datetime]:
    buckets, bucket, last = [], _truncate(start_local, interval), _truncate(end_local, interval)
    while bucket <= last:
        buckets.append(bucket)
        if len(buckets) > MAX_BUCKETS:
            raise UnsupportedQuery(
                "too_many_intervals",
                f"The date range has more than {MAX_BUCKETS} {interval}s; widen the interval.",
            )
        bucket = _step(bucket, interval)
    return buckets
