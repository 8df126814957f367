"""Names for SQL (docs/posthog-clients.md): from what a query selects and from where, never from its text.

A light reading of the main SELECT, enough to name it: its columns and aggregations (and their
aliases, the author's own labels), its table, the events its WHERE picks, its GROUP BY and any
`interval N unit` window. Comments and string literals are set aside first, so nothing of the
query's text can reach a name but identifiers, humanised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ai_metadata.heuristic.wording import (
    PROPERTY_MATH,
    humanize_event,
    humanize_property,
    join_labels,
    lower_label,
)

_CLAUSE = re.compile(
    r"\b(select|from|where|group\s+by|having|order\s+by|limit|union|settings|window)\b", re.I
)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.S)
_STRINGS = re.compile(r"'(?:[^'\\]|\\.|'')*'")
_IDENTIFIER = re.compile(r"[A-Za-z_$][\w$.]*")
_CALL = re.compile(r"^([A-Za-z_]\w*)\s*\((.*)\)$", re.S)
_ALIAS = re.compile(r"^(.*?)\s+as\s+[`\"]?([A-Za-z_][\w$]*)[`\"]?$", re.I | re.S)
_INTERVAL = re.compile(
    r"interval\s+(\d+)\s+(hour|day|week|month|year)s?\b|toInterval(Hour|Day|Week|Month|Year)\((\d+)\)", re.I
)
_EVENT_MATCH = re.compile(r"\bevent\s*(?:=\s*(\x00\d+\x00)|in\s*\(([^)]*)\))", re.I)
TIME_BUCKETS = {
    "tostartofhour": "hour",
    "tostartofday": "day",
    "todate": "day",
    "tostartofweek": "week",
    "tomonday": "week",
    "tostartofmonth": "month",
    "tostartofyear": "year",
}
UNIQUE_FUNCTIONS = frozenset({"uniq", "uniqexact", "uniqcombined", "count_distinct"})
MATH_FUNCTIONS = {"sum": "sum", "avg": "avg", "min": "min", "max": "max", "median": "median"}
PERSON_COLUMNS = frozenset({"person_id", "distinct_id", "person.id", "pdi.person_id", "id"})
TABLE_NAMES = {"events": "Events", "persons": "Persons", "sessions": "Sessions", "groups": "Groups"}


@dataclass
class SqlShape:
    """What the main SELECT of a query computes, in words."""

    table: str = ""  # "events", "persons", ... ("" when unknown)
    events: list[str] = field(default_factory=list)  # the events its WHERE picks
    aggregates: list[str] = field(default_factory=list)  # labels, with "{subject}" where the subject goes
    columns: list[str] = field(default_factory=list)  # plain columns, humanised
    groups: list[str] = field(default_factory=list)  # GROUP BY, humanised (time buckets apart)
    bucket: str | None = None  # hour/day/week/month of a time GROUP BY
    bucket_aliases: set[str] = field(default_factory=set)  # what the SELECT calls its time buckets
    window: str | None = None  # "over the last 7 days"
    empty: bool = False  # no FROM at all (`SELECT 1`)


def sql_shape(sql: str) -> SqlShape:
    literals: list[str] = []

    def keep(match: re.Match[str]) -> str:
        literals.append(match.group(0)[1:-1])
        return f"\x00{len(literals) - 1}\x00"

    return _shape(_STRINGS.sub(keep, _COMMENTS.sub(" ", sql)), literals)


def _shape(text: str, literals: list[str]) -> SqlShape:
    """The shape of `text`, a query whose string literals are set aside in `literals`."""
    clauses = _clauses(text)
    shape = SqlShape()
    source = clauses.get("from", "").strip()
    inner: SqlShape | None = None
    if source.startswith("("):  # FROM (SELECT …): it reads what the inner query reads
        inner = _shape(_inner(source), literals)
    elif match := _IDENTIFIER.match(source.strip('`"')):
        shape.table = match.group(0).split(".")[-1].lower()
        # A table defined by the query's own WITH: it reads what that query reads.
        if cte := re.search(rf"\b{re.escape(match.group(0))}\s+as\s*(\()", text, re.I):
            inner = _shape(_inner(text[cte.start(1) :]), literals)
    if inner is not None:
        shape.table, shape.events = inner.table, inner.events
    shape.empty = not source
    if match := _EVENT_MATCH.search(clauses.get("where", "")):
        picked = match.group(1) or match.group(2) or ""
        shape.events = [literals[int(index)] for index in re.findall(r"\x00(\d+)\x00", picked)]
    for expression in _split(clauses.get("select", "")):
        _read_select(expression, shape)
    for expression in _split(clauses.get("group by", "")):
        bucket, label = _read_column(expression)
        if bucket or expression.strip().strip('`"').lower() in shape.bucket_aliases:
            shape.bucket = bucket or shape.bucket
        elif label and not label.isdigit():
            shape.groups.append(label)
    if match := _INTERVAL.search(text):
        amount = int(match.group(1) or match.group(4))
        unit = (match.group(2) or match.group(3)).lower()
        shape.window = f"over the last {amount} {unit}{'s' if amount != 1 else ''}"
    return shape


def sql_subject(shape: SqlShape) -> str:
    if shape.events:
        return join_labels([humanize_event(event) for event in shape.events])
    if shape.table in ("", "events"):
        return "All Events"
    return TABLE_NAMES.get(shape.table) or humanize_property(shape.table)


def sql_name(shape: SqlShape) -> str:
    if shape.empty:
        return "Custom SQL Query Result"
    subject = sql_subject(shape)
    groups = list(dict.fromkeys(shape.groups))
    by = f" by {join_labels(groups)}" if groups else ""
    if shape.aggregates:
        return join_labels([label.format(subject=subject) for label in shape.aggregates]) + by
    if shape.table in ("", "events"):
        return f"Latest {'Activity' if subject == 'All Events' else subject}"
    shown = list(dict.fromkeys(shape.columns))
    return (
        f"{subject} with {join_labels(shown)}" if 0 < len(shown) <= 3 else f"{subject} with Selected Columns"
    )


def sql_description(shape: SqlShape, *, window: str | None = None) -> str:
    if shape.empty:
        return "Shows the result of a SQL query that reads no table."
    subject = lower_label(sql_subject(shape))
    groups = list(dict.fromkeys(shape.groups))
    split = f", broken down by {lower_label(join_labels(groups))}" if groups else ""
    period = f" {window or shape.window}" if (window or shape.window) else ""
    per = f" per {shape.bucket}" if shape.bucket else ""
    if shape.aggregates:
        labels = [lower_label(label.format(subject=subject)) for label in shape.aggregates]
        verb = "counts" if all(label == "{subject}" for label in shape.aggregates) else "computes"
        return f"A SQL query that {verb} {join_labels(labels)}{per}{period}{split}."
    columns = list(dict.fromkeys(shape.columns))
    with_columns = f" with their {lower_label(join_labels(columns))}" if columns else ""
    return f"A SQL query that lists {subject}{with_columns}{period}."


# --- Reading expressions -----------------------------------------------------------------------------


def _read_select(expression: str, shape: SqlShape) -> None:
    expression = re.sub(r"^distinct\s+", "", expression.strip(), flags=re.I)
    alias = None
    if match := _ALIAS.match(expression):
        expression, alias = match.group(1).strip(), match.group(2)
    aggregate = _aggregate(expression)
    if aggregate is not None:
        # An alias is the author's own label; the events picked still say what it is about.
        if alias:
            aggregate = humanize_property(alias) + (" for {subject}" if shape.events else "")
        shape.aggregates.append(aggregate)
        return
    bucket, label = _read_column(expression)
    if bucket:
        shape.bucket = bucket
        if alias:
            shape.bucket_aliases.add(alias.lower())
    elif label:
        shape.columns.append(humanize_property(alias) if alias else label)


def _aggregate(expression: str) -> str | None:
    """The label of an aggregation ("{subject}" for a count), or None for anything else."""
    match = _CALL.match(expression.strip())
    if match is None:
        return None
    function, argument = match.group(1).lower(), match.group(2).strip()
    distinct = re.match(r"^distinct\s+(.*)$", argument, re.I | re.S)
    if function == "count" and distinct:
        function, argument = "uniq", distinct.group(1)
    if function == "count":
        return "{subject}"
    if function in UNIQUE_FUNCTIONS:
        column = argument.strip().lower()
        if column in PERSON_COLUMNS or column.endswith("person_id"):
            return "Unique Users for {subject}"
        if "session_id" in column:
            return "Unique Sessions for {subject}"
        return f"Unique {_read_column(argument)[1] or 'Values'} for {{subject}}"
    math = MATH_FUNCTIONS.get(function) or ("median" if function.startswith("quantile") else None)
    if math:
        label = _read_column(argument)[1] or "Value"
        return PROPERTY_MATH[math].format(label) + " for {subject}"
    return None


def _read_column(expression: str) -> tuple[str | None, str]:
    """(the time bucket it truncates to, or None; its label) for a column expression."""
    expression = expression.strip().strip('`"')
    match = _CALL.match(expression)
    if match:
        function, argument = match.group(1).lower(), match.group(2)
        if function in TIME_BUCKETS:
            return TIME_BUCKETS[function], ""
        first = _split(argument)[0] if argument.strip() else ""
        return None, _read_column(first)[1] if first else ""
    identifier = _IDENTIFIER.match(expression)
    if identifier is None or "\x00" in expression:
        return None, ""
    name = identifier.group(0).strip('`"')
    if name.lower() in ("timestamp", "created_at"):
        return None, "Time"
    if name.lower() in PERSON_COLUMNS:
        return None, "Person"
    if name.lower().split(".")[-1] == "event":
        return None, "Event Name"
    return None, humanize_property(name.split(".")[-1])


# --- Splitting a query into its parts ----------------------------------------------------------------


def _clauses(text: str) -> dict[str, str]:
    """The main SELECT's clauses (only at nesting depth 0, so subqueries and CTEs stay inside)."""
    marks = [(match.start(), match.end(), " ".join(match.group(1).lower().split()))
             for match in _CLAUSE.finditer(text) if _depth(text, match.start()) == 0]  # fmt: skip
    clauses: dict[str, str] = {}
    for index, (_start, end, clause) in enumerate(marks):
        if clause == "union":
            break
        following = marks[index + 1][0] if index + 1 < len(marks) else len(text)
        clauses.setdefault(clause, text[end:following])
    return clauses


def _depth(text: str, position: int) -> int:
    return text.count("(", 0, position) - text.count(")", 0, position)


def _split(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _inner(source: str) -> str:
    """The text inside the parentheses that open `source`."""
    depth = 0
    for index, char in enumerate(source):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return source[1:index]
    return source[1:]
