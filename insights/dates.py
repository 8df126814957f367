"""Date parameters: ISO 8601 dates or datetimes, or relative offsets like `-7d`."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.utils.dateparse import parse_date, parse_datetime

RELATIVE = re.compile(r"^-(?P<amount>\d{1,4})(?P<unit>[hdwmy])$")
UNIT_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}


def parse_date_param(value: str, *, now: datetime, tz: ZoneInfo, end_of_day: bool = False) -> datetime:
    """Turn a date parameter into an aware datetime, or raise ValueError with a readable reason.

    A bare date means its start (or its end, with `end_of_day`) in `tz`. `-Nh` counts hours back from
    now; `-Nd`/`-Nw`/`-Nm`/`-Ny` count days back to the start of that day.
    """
    value = value.strip()
    match = RELATIVE.match(value)
    if match:
        amount, unit = int(match["amount"]), match["unit"]
        try:
            if unit == "h":
                return now - timedelta(hours=amount)
            start = (now.astimezone(tz) - timedelta(days=amount * UNIT_DAYS[unit])).date()
        except OverflowError:  # -9999y reaches before year 1
            raise ValueError(f"{value!r} reaches back before the year 1.") from None
        return datetime.combine(start, time.min, tzinfo=tz)
    try:
        moment = parse_datetime(value)
        day = None if moment else parse_date(value)
    except ValueError:  # well-formed but impossible, e.g. 2024-02-30
        raise ValueError(f"{value!r} is not a valid date.") from None
    if moment is not None:
        return moment if moment.tzinfo else moment.replace(tzinfo=tz)
    if day is not None:
        return datetime.combine(day, time.max if end_of_day else time.min, tzinfo=tz)
    raise ValueError(f"{value!r} is not a date; use YYYY-MM-DD, an ISO 8601 datetime, or e.g. -7d.")
