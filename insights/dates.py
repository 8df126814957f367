"""Dates as every route reads them — list filters, Trends' `dateRange`, usage windows: one grammar,
PostHog's (docs/queries.md#dates).

- `-Nh`: N hours before now.
- `-Nd`, `-Nw`, `-Nm`, `-Nq`, `-Ny`: the start of the day N days, weeks, calendar months, quarters or
  years ago (`-3m` on 31 May is the start of 28 February: calendar months, not 30-day blocks).
- `dStart`, `wStart`, `mStart`, `qStart`, `yStart`: the start of the current day, week (Monday),
  month, quarter or year.
- `YYYY-MM-DD`: the start of that day (its end, for an end bound); an ISO 8601 datetime as given
  (in the project's time zone when it names none).
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils.dateparse import parse_date, parse_datetime

RELATIVE = re.compile(r"^-(?P<amount>\d{1,4})(?P<unit>[hdwmqy])$")
MONTHS = {"m": 1, "q": 3, "y": 12}
BARE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def date_resolve(value: str, *, now: datetime, tz: ZoneInfo, end_of_day: bool = False) -> datetime:
    """The aware moment a date value means in `tz`, or ValueError with a readable reason."""
    value = value.strip()
    local_today = now.astimezone(tz).date()
    if match := RELATIVE.match(value):
        amount, unit = int(match["amount"]), match["unit"]
        if unit == "h":
            return now - timedelta(hours=amount)
        try:
            return _day_edge(_back(local_today, unit, amount), tz, end_of_day=False)
        except (OverflowError, ValueError):  # -9999y reaches before year 1
            raise ValueError(f"{value!r} reaches back before the year 1.") from None
    starts = {
        "dStart": local_today,
        "wStart": local_today - timedelta(days=local_today.weekday()),
        "mStart": local_today.replace(day=1),
        "qStart": local_today.replace(month=(local_today.month - 1) // 3 * 3 + 1, day=1),
        "yStart": local_today.replace(month=1, day=1),
    }
    if value in starts:
        return _day_edge(starts[value], tz, end_of_day=False)
    try:
        if BARE_DATE.match(value):  # its start, or its end for an end bound
            day = parse_date(value)
            return _day_edge(day, tz, end_of_day) if day else _not_a_date(value)
        moment = parse_datetime(value)
    except ValueError:  # well-formed but impossible, e.g. 2024-02-30
        raise ValueError(f"{value!r} is not a valid date.") from None
    if moment is not None:
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    return _not_a_date(value)


def _not_a_date(value: str) -> datetime:
    raise ValueError(f"{value!r} is not a date; use YYYY-MM-DD, an ISO 8601 datetime, or e.g. -7d or -3m.")


def _back(day: date, unit: str, amount: int) -> date:
    """`amount` days, weeks, calendar months, quarters or years before `day` (the last day of a
    shorter month when `day` does not exist there)."""
    if unit in ("d", "w"):
        return day - timedelta(days=amount * (7 if unit == "w" else 1))
    year, month = divmod(day.year * 12 + day.month - 1 - amount * MONTHS[unit], 12)
    month += 1
    return day.replace(year=year, month=month, day=min(day.day, calendar.monthrange(year, month)[1]))


def _day_edge(day: date, tz: ZoneInfo, end_of_day: bool) -> datetime:
    return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=tz)
