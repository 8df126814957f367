"""Names and descriptions of the lists and programs an insight may show (docs/posthog-clients.md): events, persons
(on their own or behind a slice of an insight), groups, SQL and Hog."""

from __future__ import annotations

from ai_metadata.heuristic.insights import INSIGHT_DESCRIBERS
from ai_metadata.heuristic.sql import sql_description, sql_name, sql_shape
from ai_metadata.heuristic.wording import (
    INTERVAL_WORDS,
    Describer,
    filter_phrase,
    humanize_event,
    humanize_property,
    join_labels,
    lower_label,
    period_phrase,
)
from insights.query_nodes.common import ActionsNode, DateRange, EventsNode, Properties
from insights.query_nodes.data import (
    ActorsQuery,
    EventsQuery,
    FunnelsActorsQuery,
    GroupsQuery,
    HogQLQuery,
    HogQuery,
    InsightActorsQuery,
    StickinessActorsQuery,
)
from insights.query_nodes.insight import LifecycleQuery

MAX_SEARCH_WORDS = 4


def _events_list(query: EventsQuery) -> tuple[str, str]:
    # An aggregation (`select: ["count()"]`, the default of PostHog's table insights) reads like SQL.
    shape = sql_shape(f"SELECT {', '.join(query.select)} FROM events")
    if shape.aggregates:
        shape.events = [query.event] if query.event else []
        window = _relative(query.after)
        return sql_name(shape), sql_description(shape, window=window).replace(
            "A SQL query that", "A table that"
        )
    subject = humanize_event(query.event) if query.event else "Activity"
    return f"Latest {subject}", f"Lists the most recent {lower_label(subject)} with the selected columns."


def _events_node(node: EventsNode) -> tuple[str, str]:
    subject = humanize_event(node.event) if node.event else "Activity"
    return f"Latest {subject}", f"Lists the most recent {lower_label(subject)}."


def _subject(node: object) -> str:
    """What a series is about, without its math: "Pageviews", "Purchase", "Signed Up" (an action)."""
    if isinstance(node, EventsNode):
        return node.custom_name or humanize_event(node.event)
    if isinstance(node, ActionsNode):
        return node.custom_name or node.name or f"Action {node.id}"
    return "Activity"


def _insight_actors(source: InsightActorsQuery) -> tuple[str, str]:
    insight = source.source
    series = getattr(insight, "series", None) or []
    node = series[min(source.series or 0, len(series) - 1)] if series else None
    subject = _subject(node) if node is not None else INSIGHT_DESCRIBERS[type(insight)](insight)[0]
    when = f" on {source.day[:10]}" if isinstance(source.day, str) else ""
    breakdown = f" whose breakdown is {source.breakdown}" if source.breakdown not in (None, "", []) else ""
    if isinstance(insight, LifecycleQuery) and source.status:
        status = source.status.capitalize()
        return (
            f"{status} Persons for {subject}",
            f"Lists the persons who were {source.status} for {lower_label(subject)}{when}{breakdown}.",
        )
    return (
        f"Persons Who Performed {subject}",
        f"Lists the persons who performed {lower_label(subject)}{when}{breakdown}.",
    )


def _funnel_actors(source: FunnelsActorsQuery) -> tuple[str, str]:
    steps = [_subject(node) for node in source.source.series]
    funnel = " → ".join(steps)
    step = source.funnelStep
    if step is None:
        return (
            f"Persons in the {funnel} Funnel",
            f"Lists the persons who entered the {lower_label(funnel)} funnel.",
        )
    index = min(abs(step), len(steps)) - 1
    if step > 0:
        return (
            f"Persons Who Converted to {steps[index]}",
            f"Lists the persons who reached step {abs(step)} ({lower_label(steps[index])}) of the "
            f"{lower_label(funnel)} funnel.",
        )
    return (
        f"Persons Who Dropped Off Before {steps[index]}",
        f"Lists the persons who dropped off at step {abs(step)} ({lower_label(steps[index])}) of the "
        f"{lower_label(funnel)} funnel.",
    )


def _stickiness_actors(source: StickinessActorsQuery) -> tuple[str, str]:
    series = source.source.series
    subject = _subject(series[min(source.series or 0, len(series) - 1)])
    unit = INTERVAL_WORDS[source.source.interval]
    if isinstance(source.day, int):
        plural = "s" if source.day != 1 else ""
        return (
            f"Persons Who Performed {subject} on {source.day} {unit.capitalize()}{plural}",
            f"Lists the persons who performed {lower_label(subject)} on exactly {source.day} {unit}{plural}.",
        )
    return f"Persons Who Performed {subject}", f"Lists the persons who performed {lower_label(subject)}."


def _search(text: str | None) -> str:
    words = (text or "").split()[:MAX_SEARCH_WORDS]
    return " ".join(word.strip("'\"`") for word in words)


def _actors(query: ActorsQuery) -> tuple[str, str]:
    source = query.source
    if isinstance(source, InsightActorsQuery):
        return _insight_actors(source)
    if isinstance(source, FunnelsActorsQuery):
        return _funnel_actors(source)
    if isinstance(source, StickinessActorsQuery):
        return _stickiness_actors(source)
    if isinstance(source, HogQLQuery):
        shape = sql_shape(source.query)
        return f"Persons from {sql_name(shape)}", "Lists the persons a SQL query returns."
    return _list_of("Persons", "persons", query.search, query.properties)


def _list_of(plural: str, lower: str, search: str | None, properties: Properties | None) -> tuple[str, str]:
    if search and _search(search):
        return f"{plural} Matching {_search(search)}", f"Lists the {lower} matching “{_search(search)}”."
    filters = properties if isinstance(properties, list) else []
    if filters:
        keys = join_labels(list(dict.fromkeys(humanize_property(item.key) for item in filters)))
        return f"{plural} Filtered on {keys}", f"Lists the {lower}{filter_phrase(filters)}."
    return f"All {plural} in the Project", f"Lists all of the project's {lower}."


def _groups(query: GroupsQuery) -> tuple[str, str]:
    kind = f"type {query.group_type_index}"
    return _list_of(f"Groups of {kind.title()}", f"groups of {kind}", query.search, query.properties)


def _sql(query: HogQLQuery) -> tuple[str, str]:
    shape = sql_shape(query.query)
    window = period_phrase(query.filters.dateRange) if query.filters and query.filters.dateRange else None
    return sql_name(shape), sql_description(shape, window=window)


def _hog(query: HogQuery) -> tuple[str, str]:
    return "Hog Program Output", "Shows what a Hog program returns when it runs."


def _relative(after: str | None) -> str | None:
    return period_phrase(DateRange(date_from=after)) if after and after.startswith("-") else None


LIST_DESCRIBERS: dict[type, Describer] = {
    EventsQuery: _events_list,
    EventsNode: _events_node,
    ActorsQuery: _actors,
    GroupsQuery: _groups,
    HogQLQuery: _sql,
    HogQuery: _hog,
}
