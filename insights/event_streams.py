"""Bulk loading of events: PostgreSQL COPY, JSON Lines parsing, and a synthetic stream for demos.

Everything here streams: rows are produced lazily and written to COPY as they arrive, so loading ten
million events needs as much memory as loading ten.
"""

from __future__ import annotations

import json
import math
import random
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from itertools import accumulate
from typing import Generic, NamedTuple, NoReturn, TypeVar

from django.db import connection, transaction

from infra.json_types import JSONObject, JSONValue

MAX_NAME_LENGTH = 400  # `event` and `distinct_id` are varchar(400)

# Binary COPY: PostgreSQL parses no text, and psycopg encodes each column with the dumper of the type
# given to `set_types`, so `properties` can be written as a plain dict (jsonb's binary form is a
# version byte followed by the JSON text, which psycopg's jsonb dumper writes; a bare str would not).
_COPY_SQL = (
    "COPY insights_event (project_id, timestamp, event, distinct_id, properties) FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = ["int8", "timestamptz", "varchar", "varchar", "jsonb"]


class EventRow(NamedTuple):
    """One event to load. `timestamp` must be aware; `properties` must be JSON-serialisable."""

    timestamp: datetime
    event: str
    distinct_id: str
    properties: JSONObject


def events_copy(*, project_id: int, rows: Iterable[EventRow]) -> int:
    """Append `rows` to a project's events with one COPY in one transaction, and return how many.

    The iterable is consumed once, row by row, and never held: memory stays flat however many rows
    it yields. If it raises (a bad input line, say), the COPY is aborted and nothing is written.
    """
    count = 0
    with transaction.atomic(), connection.cursor() as cursor, connection.wrap_database_errors:
        # A COPY of millions of rows is one statement, and the statement timeout that protects the
        # API from runaway queries would abort it. A transaction-local setting would outlive this
        # block when it is only a savepoint in a caller's transaction, so the old value is put back.
        cursor.execute(
            "SELECT current_setting('statement_timeout'), set_config('statement_timeout', '0', true)"
        )
        (previous_timeout, _) = cursor.fetchone()
        with cursor.cursor.copy(_COPY_SQL) as copy:
            copy.set_types(_COPY_TYPES)
            for row in rows:
                if row.timestamp.tzinfo is None:
                    raise ValueError(f"Event timestamps must be aware, got {row.timestamp.isoformat()}.")
                copy.write_row((project_id, row.timestamp, row.event, row.distinct_id, row.properties))
                count += 1
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous_timeout])
    return count


# --- JSON Lines -----------------------------------------------------------------------------------


class BadEventLine(ValueError):
    """An input line that is not a valid event. The message names the line and what is wrong."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason


class _Invalid(Exception):
    """Why one line is refused; `events_from_jsonl` adds the line number."""


def events_from_jsonl(
    lines: Iterable[str], *, timestamps: tuple[datetime, datetime] | None = None
) -> Iterator[EventRow]:
    """Parse JSON Lines events lazily, one `EventRow` per non-blank line; raise `BadEventLine` at
    the first line that is not a valid event.

    A line is `{"event", "distinct_id", "timestamp", "properties"}`: `event` a non-empty string;
    `distinct_id` a non-empty string or an integer (stored as its decimal text, as capture SDKs
    do); `timestamp` ISO 8601 **with** a UTC offset or `Z` (a naive time is refused rather than
    guessed: exporters write local times as often as UTC, and a silent shift of hours corrupts every
    hourly and daily series); `properties` an object, `{}` when absent. Other keys are ignored.
    Lines are numbered from 1, blank lines included, so the number matches an editor's. `timestamps`
    bounds the instants the events store can hold (ClickHouse's 1900-2299; None: any).
    """
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = _event_row(line)
            if timestamps is not None and not timestamps[0] <= row.timestamp <= timestamps[1]:
                raise _Invalid(
                    f"'timestamp' {row.timestamp.isoformat()} is outside what the events store holds "
                    f"({timestamps[0]:%Y-%m-%d} to {timestamps[1]:%Y-%m-%d})"
                )
        except _Invalid as invalid:
            raise BadEventLine(line_number, str(invalid)) from None
        yield row


def _event_row(line: str) -> EventRow:
    try:
        data = json.loads(line, parse_constant=_refuse_constant, parse_float=_finite_float)
    except json.JSONDecodeError as error:
        raise _Invalid(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except (ValueError, RecursionError) as error:
        raise _Invalid(f"not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise _Invalid("not a JSON object")
    event = _name(data, "event")
    distinct_id = _name(data, "distinct_id")
    properties = data.get("properties", {})
    if not isinstance(properties, dict):
        raise _Invalid(f"'properties' must be an object, got {_json_type(properties)}")
    # NUL and lone surrogates can only come from a \u escape or a non-ASCII character, so plain ASCII
    # lines (nearly all of them) skip the walk over every string.
    if "\\u" in line or not line.isascii():
        _check_strings({"event": event, "distinct_id": distinct_id, "properties": properties})
    return EventRow(_timestamp(data.get("timestamp")), event, distinct_id, properties)


def _name(data: JSONObject, key: str) -> str:
    value = data.get(key)
    if value is None:
        raise _Invalid(f"'{key}' is missing")
    # Capture SDKs accept numeric distinct ids and store their text; an event name must be a string.
    if key == "distinct_id" and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise _Invalid(f"'{key}' must be a string, got {_json_type(value)}")
    if not value.strip():
        raise _Invalid(f"'{key}' is empty")
    if len(value) > MAX_NAME_LENGTH:
        raise _Invalid(f"'{key}' is longer than {MAX_NAME_LENGTH} characters ({len(value)})")
    return value


def _timestamp(value: JSONValue) -> datetime:
    if value is None:
        raise _Invalid("'timestamp' is missing")
    if not isinstance(value, str):
        raise _Invalid(f"'timestamp' must be an ISO 8601 string, got {_json_type(value)}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _Invalid(f"'timestamp' {value[:60]!r} is not an ISO 8601 date-time") from None
    if parsed.tzinfo is None:
        raise _Invalid(f"'timestamp' {value[:60]!r} has no UTC offset (add 'Z' for UTC, or e.g. '+02:00')")
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise _Invalid(f"'timestamp' {value[:60]!r} is out of range") from None


def _check_strings(root: JSONObject) -> None:
    """Refuse strings PostgreSQL cannot store: text and jsonb hold no NUL character, and a lone
    surrogate (from an escape like \\ud800, or bytes that were not UTF-8) has no UTF-8 encoding."""
    pending: list[tuple[str, JSONValue]] = list(root.items())
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                _check_string(f"a key in '{path}'", key)
                pending.append((f"{path}.{key}", item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, str):
            _check_string(f"'{path}'", value)


def _check_string(where: str, value: str) -> None:
    if "\x00" in value:
        raise _Invalid(f"{where[:200]} contains a NUL character (\\u0000)")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Invalid(
                f"{where[:200]} is not valid Unicode (a lone surrogate or non-UTF-8 bytes)"
            ) from None


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    # Python reads 1e400 as inf, which neither JSON nor jsonb can hold.
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is out of range for a JSON number")
    return value


def _json_type(value: object) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "an array"}
    return "null" if value is None else names.get(type(value), "an object")


# --- Synthetic events -----------------------------------------------------------------------------


T = TypeVar("T")


class _Weighted(Generic[T]):
    """Picks from a small fixed table with the given relative weights, from one uniform draw."""

    def __init__(self, choices: Sequence[tuple[T, float]]) -> None:
        self.values = [value for value, _ in choices]
        self.cumulative = list(accumulate(weight for _, weight in choices))
        self.total = self.cumulative[-1]
        self.last = len(self.values) - 1

    def pick(self, uniform: float) -> T:
        # `hi` keeps a rounding of uniform * total up to total on the last value.
        return self.values[bisect_right(self.cumulative, uniform * self.total, 0, self.last)]


def _long_tail(values: Sequence[str], exponent: float) -> list[tuple[str, float]]:
    return [(value, 1 / (rank**exponent)) for rank, value in enumerate(values, start=1)]


# Shares of all events, drawn independently per event: pageviews dominate as on any website, clicks
# (autocapture) and page leaves follow, and conversions (purchases, sign-ups) are rare.
EVENT_SHARES = {
    "$pageview": 0.60,
    "$autocapture": 0.20,
    "$pageleave": 0.12,
    "purchase": 0.05,
    "user_signed_up": 0.03,
}
_EVENTS = _Weighted(list(EVENT_SHARES.items()))
# A user keeps one browser and OS; the OS depends on the browser (Safari is Apple's, Edge mostly Windows).
_BROWSERS = _Weighted(
    [
        (("Chrome", _Weighted([("Windows", 45), ("Android", 25), ("Mac OS X", 20), ("Linux", 5), ("Chrome OS", 5)])), 62),
        (("Safari", _Weighted([("iOS", 65), ("Mac OS X", 35)])), 20),
        (("Firefox", _Weighted([("Windows", 55), ("Linux", 30), ("Mac OS X", 15)])), 7),
        (("Edge", _Weighted([("Windows", 90), ("Mac OS X", 10)])), 6),
        (("Opera", _Weighted([("Windows", 60), ("Android", 40)])), 2.5),
        (("Samsung Internet", _Weighted([("Android", 1)])), 1.5),
        (("UC Browser", _Weighted([("Android", 1)])), 0.5),
        (("Yandex", _Weighted([("Windows", 70), ("Android", 30)])), 0.3),
        (("Vivaldi", _Weighted([("Windows", 60), ("Linux", 40)])), 0.1),
        (("Internet Explorer", _Weighted([("Windows", 1)])), 0.1),
    ]
)  # fmt: skip
_COUNTRIES = _Weighted(
    _long_tail(
        [
            "US", "GB", "DE", "IN", "FR", "CA", "BR", "NL", "ES", "AU", "JP", "IT", "PL", "SE", "MX",
            "CH", "BE", "IE", "AT", "DK", "NO", "FI", "PT", "CZ", "IL", "SG", "KR", "AR", "NZ", "ZA",
            "RO", "UA", "TR", "ID", "PH", "VN", "NG", "KE", "EG", "CO", "CL", "GR", "HU",
        ],
        exponent=1.1,
    )
)  # fmt: skip
_HOST = "https://shop.example.com"
_PAGES = _Weighted(
    _long_tail(
        [
            "/", "/products", "/pricing", "/search", "/products/espresso-machine", "/cart", "/blog",
            "/products/grinder", "/docs", "/login", "/products/kettle", "/signup", "/account",
            "/products/scale", "/docs/getting-started", "/blog/brewing-guide", "/products/filters",
            "/about", "/account/orders", "/blog/spring-sale", "/products/mugs", "/docs/api", "/contact",
            "/blog/origin-stories", "/products/beans-ethiopia", "/products/beans-colombia", "/help",
            "/help/shipping", "/help/returns", "/careers", "/legal/privacy", "/legal/terms",
        ],
        exponent=0.9,
    )
)  # fmt: skip
# Conversions happen on their own pages.
_EVENT_PAGES = {"purchase": "/checkout", "user_signed_up": "/signup"}
# Traffic by hour of day (UTC) and by weekday (Monday first): busy European and American afternoons,
# quiet nights and weekends.
_HOURLY = (45, 35, 30, 25, 25, 30, 40, 55, 70, 80, 85, 90, 95, 100, 100, 100, 95, 90, 85, 80, 75, 70, 60, 50)
_WEEKDAY = (100, 100, 100, 100, 95, 70, 65)
# Users are ranked by activity with weights ~ rank^-0.7 (Zipf-like): a few power users, a long tail,
# and with ~20 events per user on average even the rarest users appear a handful of times.
_USER_EXPONENT = 0.7
_MASK64 = (1 << 64) - 1


def events_generate(*, count: int, days: int, seed: int, now: datetime) -> Iterator[EventRow]:
    """A realistic synthetic stream of `count` events over [now - days, now), in time order.

    Deterministic (the same arguments give the same stream; names, users and properties do not
    depend on `now`) and lazy, with memory independent of `count`:
    1. Timestamps are the order statistics of `count` draws from the traffic curve (hour of day, times
       weekday, times slow growth), produced in increasing order without storing them.
    2. Each event draws its name from EVENT_SHARES and its user from a Zipf-like population of
       max(10, count // 20) users.
    3. A user's browser, OS and country follow from a hash of (seed, user), so each user keeps them.
    """
    if count < 0 or days < 1:
        raise ValueError("count must be >= 0 and days >= 1.")
    if now.tzinfo is None:
        raise ValueError("now must be aware.")
    rng = random.Random(seed)
    now = now.astimezone(UTC)  # the traffic curve is in UTC hours
    start, last = now - timedelta(days=days), now - timedelta(microseconds=1)
    slots = _traffic_slots(start=start, hours=days * 24)
    total = slots[-1]
    users = max(10, count // 20)
    user_span = (users + 1) ** (1 - _USER_EXPONENT) - 1
    # Bounded, so memory stays independent of `count`; the Zipf head it holds covers most events.
    user = lru_cache(maxsize=1024)(partial(_user, id_base=_mix(seed & _MASK64)))
    slot, descending = 0, 1.0
    for remaining in range(count, 0, -1):
        # Step 1: the next order statistic of `count` uniform draws (Bentley & Saxe), mapped through
        # the cumulative traffic of the hourly slots.
        descending *= rng.random() ** (1 / remaining)
        target = (1 - descending) * total
        while slot < len(slots) - 1 and slots[slot] <= target:
            slot += 1
        slot_start = slots[slot - 1] if slot else 0.0
        hours = slot + (target - slot_start) / (slots[slot] - slot_start)
        timestamp = min(start + timedelta(hours=hours), last)
        # Steps 2 and 3.
        event = _EVENTS.pick(rng.random())
        rank = min(int((1 + rng.random() * user_span) ** (1 / (1 - _USER_EXPONENT))), users)
        distinct_id, traits = user(rank)
        yield EventRow(timestamp, event, distinct_id, _properties(event=event, traits=traits, rng=rng))


def _traffic_slots(*, start: datetime, hours: int) -> list[float]:
    """Cumulative relative traffic at the end of each hour after `start` (O(days), not O(count))."""
    weights = []
    for hour in range(hours):
        moment = start + timedelta(hours=hour)
        growth = 0.9 + 0.2 * hour / hours
        weights.append(_HOURLY[moment.hour] * _WEEKDAY[moment.weekday()] * growth)
    return list(accumulate(weights))


def _user(rank: int, *, id_base: int) -> tuple[str, dict[str, str]]:
    """The distinct id and the browser, OS and country of the user of a given activity rank."""
    user_hash = _mix((id_base + rank) & _MASK64)
    browser, systems = _BROWSERS.pick(_unit(user_hash))
    os_hash = _mix(user_hash)
    traits = {
        "$browser": browser,
        "$os": systems.pick(_unit(os_hash)),
        "$geoip_country_code": _COUNTRIES.pick(_unit(_mix(os_hash))),
    }
    return f"{user_hash:016x}", traits


def _properties(*, event: str, traits: dict[str, str], rng: random.Random) -> JSONObject:
    page = _EVENT_PAGES.get(event) or _PAGES.pick(rng.random())
    properties: JSONObject = {**traits, "$current_url": _HOST + page}
    if event == "purchase":
        # Order values are log-normal: median about 33, a long tail of large orders.
        properties["revenue"] = round(rng.lognormvariate(3.5, 0.8), 2)
    return properties


def _mix(value: int) -> int:
    """splitmix64's finaliser: a bijection on 64-bit integers, so distinct users get distinct ids."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _unit(value: int) -> float:
    return (value >> 11) / (1 << 53)
