"""The words names and descriptions are made of (docs/insight-actions.md#generate_metadata): humanised events and properties, Title
Case, series labels, periods, and the final shaping every answer gets, the models' included."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypedDict

from insights.query_nodes import ActionsNode, BreakdownFilter, DateRange, EventsNode
from insights.query_nodes.common import Properties

# A query node's (name, description), before the final shaping: one function per kind of node.
Describer = Callable[[Any], tuple[str, str]]


class Metadata(TypedDict):
    """A suggested name and description, shaped (finish_name, finish_description)."""

    name: str
    description: str


MAX_NAME = 100
MAX_DESCRIPTION = 200
MAX_NAMED_SERIES = 3
QUOTES = "\"'`\u201c\u201d\u2018\u2019"

EVENT_NAMES = {
    "$pageview": "Pageviews",
    "$pageleave": "Pageleaves",
    "$autocapture": "Autocaptured Events",
    "$screen": "Screen Views",
    "$identify": "Identifications",
    "$feature_flag_called": "Feature Flag Calls",
    "$rageclick": "Rage Clicks",
    "$exception": "Exceptions",
    "$web_vitals": "Web Vitals",
}
PROPERTY_NAMES = {
    "$browser": "Browser",
    "$os": "OS",
    "$device_type": "Device Type",
    "$current_url": "URL",
    "$pathname": "Path",
    "$host": "Host",
    "$referrer": "Referrer",
    "$referring_domain": "Referring Domain",
    "$geoip_country_code": "Country",
    "$geoip_country_name": "Country",
    "$geoip_city_name": "City",
    "$browser_version": "Browser Version",
    "$screen_width": "Screen Width",
    "utm_source": "UTM Source",
    "utm_medium": "UTM Medium",
    "utm_campaign": "UTM Campaign",
    "$initial_utm_source": "Initial UTM Source",
}
USER_MATH = {
    "dau": "Unique Users",
    "weekly_active": "Weekly Active Users",
    "monthly_active": "Monthly Active Users",
    "unique_session": "Unique Sessions",
    "first_time_for_user": "First-Time Users",
    "unique_group": "Unique Groups",
}
PROPERTY_MATH = {
    "sum": "Sum of {}",
    "avg": "Average {}",
    "min": "Minimum {}",
    "max": "Maximum {}",
    "median": "Median {}",
    "p75": "75th Percentile {}",
    "p90": "90th Percentile {}",
    "p95": "95th Percentile {}",
    "p99": "99th Percentile {}",
}
# Joining words kept lowercase inside a title (prepositions, articles, conjunctions).
SMALL_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "into",
        "of",
        "on",
        "or",
        "over",
        "per",
        "the",
        "to",
        "vs",
        "via",
        "with",
    }
)
INTERVAL_WORDS = {"minute": "minute", "hour": "hour", "day": "day", "week": "week", "month": "month"}
RELATIVE_UNITS = {"h": "hour", "d": "day", "w": "week", "m": "month", "q": "quarter", "y": "year"}
PERIOD_STARTS = {
    "dStart": "today",
    "wStart": "this week",
    "mStart": "this month",
    "qStart": "this quarter",
    "yStart": "this year",
}


def humanize_event(event: str | None) -> str:
    """`$pageview` → "Pageviews", `user_signed_up` → "User Signed Up", None → "All Events"."""
    if event is None:
        return "All Events"
    if event in EVENT_NAMES:
        return EVENT_NAMES[event]
    return _words(event.lstrip("$"))


def humanize_property(key: str | int) -> str:
    key = str(key)
    return PROPERTY_NAMES.get(key) or _words(key.lstrip("$"))


def _words(identifier: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", identifier)  # camelCase
    spaced = re.sub(r"[_\-.:/]+", " ", spaced)
    return title_case(" ".join(spaced.split())) or identifier


def title_case(text: str) -> str:
    """Capitalise each word except small joining words (not first), keeping words that already have
    capitals (OS, iOS) or are not plain words (/pricing, 2024-01-01) as they are."""
    words = text.split()
    result = []
    for position, word in enumerate(words):
        if not word.isalpha() or any(char.isupper() for char in word[1:]) or word[:1].isupper():
            result.append(word)
        elif position > 0 and word.lower() in SMALL_WORDS:
            result.append(word.lower())
        else:
            result.append(word[:1].upper() + word[1:])
    return " ".join(result)


def series_label(node: EventsNode | ActionsNode) -> str:
    """What one series measures: "Pageviews", "Unique Users for Purchase", "Sum of Revenue for Purchase"."""
    subject = node.custom_name or (
        humanize_event(node.event) if isinstance(node, EventsNode) else node.name or f"Action {node.id}"
    )
    math = node.math or "total"
    if math in USER_MATH:
        everything = isinstance(node, EventsNode) and node.event in (None, "$pageview") and math != "dau"
        return USER_MATH[math] if everything else f"{USER_MATH[math]} for {subject}"
    if math in PROPERTY_MATH:
        return f"{PROPERTY_MATH[math].format(humanize_property(node.math_property or ''))} for {subject}"
    if math == "hogql":
        return f"Custom Metric for {subject}"
    return subject


def join_labels(labels: list[str]) -> str:
    if len(labels) > MAX_NAMED_SERIES:
        labels = [*labels[:MAX_NAMED_SERIES], f"{len(labels) - MAX_NAMED_SERIES} More"]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def breakdown_keys(breakdown: BreakdownFilter | None) -> list[str]:
    if breakdown is None:
        return []
    if breakdown.breakdowns:
        return [humanize_property(item.property) for item in breakdown.breakdowns]
    values = breakdown.breakdown if isinstance(breakdown.breakdown, list) else [breakdown.breakdown]
    if breakdown.breakdown_type == "cohort":
        return ["Cohort"] if breakdown.breakdown is not None else []
    return [humanize_property(value) for value in values if value not in (None, "")]


def by_clause(breakdown: BreakdownFilter | None) -> str:
    keys = list(dict.fromkeys(breakdown_keys(breakdown)))
    return f" by {join_labels(keys)}" if keys else ""


def period_phrase(date_range: DateRange | None, default: str = "-7d") -> str:
    date_from = (date_range.date_from if date_range else None) or default
    date_to = date_range.date_to if date_range else None
    if date_from == "all":
        return "over all time"
    if date_from in PERIOD_STARTS:
        return f"since the start of {PERIOD_STARTS[date_from]}" if date_from != "dStart" else "today"
    match = re.match(r"^-(\d+)([hdwmqy])$", date_from)
    if match:
        amount, unit = int(match[1]), RELATIVE_UNITS[match[2]]
        return f"over the last {amount} {unit}{'s' if amount != 1 else ''}"
    start = date_from[:10]
    return f"from {start} to {date_to[:10]}" if date_to else f"since {start}"


def lower_label(label: str) -> str:
    """A label inside a sentence: "Unique Users for Purchase" → "unique users for purchase"."""
    return " ".join(
        word if any(char.isupper() for char in word[1:]) else word.lower() for word in label.split()
    )


def split_phrase(breakdown: BreakdownFilter | None) -> str:
    keys = list(dict.fromkeys(breakdown_keys(breakdown)))
    return f", broken down by {lower_label(join_labels(keys))}" if keys else ""


def filter_phrase(properties: Properties | None) -> str:
    filters = properties if isinstance(properties, list) else []
    if not filters:
        return ""
    keys = list(dict.fromkeys(humanize_property(item.key) for item in filters))
    return f", filtered on {lower_label(join_labels(keys))}"


def finish_name(name: str) -> str:
    """Title Case, no surrounding quotes, at most 100 characters (97 + "...")."""
    cleaned = " ".join(name.strip().strip(QUOTES).split())
    return _cut(title_case(cleaned), MAX_NAME)


def finish_description(description: str) -> str:
    """One plain sentence, at most 200 characters (197 + "...")."""
    cleaned = " ".join(description.strip().strip(QUOTES).split())
    first_sentence = re.split(r"(?<=[.!?])\s+(?=[A-Z])", cleaned, maxsplit=1)[0]
    if first_sentence and first_sentence[-1] not in ".!?":
        first_sentence += "."
    return _cut(first_sentence, MAX_DESCRIPTION)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."
