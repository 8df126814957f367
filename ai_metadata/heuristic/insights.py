"""Names and descriptions of the six insight queries, from their structure (docs/insight-actions.md#generate_metadata)."""

from __future__ import annotations

from ai_metadata.heuristic.wording import (
    INTERVAL_WORDS,
    Describer,
    by_clause,
    filter_phrase,
    humanize_event,
    join_labels,
    lower_label,
    period_phrase,
    series_label,
    split_phrase,
)
from insights.query_nodes.insight import (
    FunnelsQuery,
    LifecycleQuery,
    PathsQuery,
    RetentionEntity,
    RetentionQuery,
    StickinessQuery,
    TrendsQuery,
)


def _trends(query: TrendsQuery) -> tuple[str, str]:
    labels = [series_label(node) for node in query.series]
    name = join_labels(labels) + by_clause(query.breakdownFilter)
    measured = join_labels([lower_label(label) for label in labels])
    verb = "Counts" if all((node.math or "total") == "total" for node in query.series) else "Measures"
    description = (
        f"{verb} {measured} per {INTERVAL_WORDS[query.interval]} {period_phrase(query.dateRange)}"
        f"{split_phrase(query.breakdownFilter)}{filter_phrase(query.properties)}."
    )
    return name, description


def _funnels(query: FunnelsQuery) -> tuple[str, str]:
    steps = [series_label(node) for node in query.series]
    shown = steps if len(steps) <= 4 else [steps[0], steps[1], "…", steps[-1]]
    name = " → ".join(shown) + " Conversion" + by_clause(query.breakdownFilter)
    description = (
        f"Shows how many users go from {' to '.join(lower_label(step) for step in steps)} "
        f"{period_phrase(query.dateRange)}{split_phrase(query.breakdownFilter)}."
    )
    return name, description


def _entity_label(entity: RetentionEntity | None, fallback: str) -> str:
    if entity is None or entity.id is None:
        return fallback
    if entity.type == "actions":
        return entity.name or f"Action {entity.id}"
    return humanize_event(str(entity.id))


def _retention(query: RetentionQuery) -> tuple[str, str]:
    retention = query.retentionFilter
    target = _entity_label(retention.targetEntity, "Any Activity")
    returning = _entity_label(retention.returningEntity, target)
    period = {"Hour": "Hourly", "Day": "Daily", "Week": "Weekly", "Month": "Monthly"}[retention.period]
    subject = "Retention" if returning == target else f"{returning} Retention"
    name = f"{period} {subject} After {target}" + by_clause(query.breakdownFilter)
    unit = retention.period.lower()
    first = "first did" if retention.retentionType == "retention_first_time" else "did"
    description = (
        f"Shows how many users who {first} {lower_label(target)} come back to do {lower_label(returning)} "
        f"in each of the next {retention.totalIntervals} {unit}s{split_phrase(query.breakdownFilter)}."
    )
    return name, description


def _paths(query: PathsQuery) -> tuple[str, str]:
    kinds = set(query.pathsFilter.includeEventTypes)
    if not kinds or {"$pageview", "$screen"} <= kinds:
        subject = "Page & Screen Paths" if len(kinds) <= 2 else "User Paths"
    elif kinds == {"$pageview"}:
        subject = "Page Paths"
    elif kinds == {"$screen"}:
        subject = "Screen Paths"
    else:
        subject = "Custom Event Paths" if kinds == {"custom_event"} else "User Paths"
    start, end = query.pathsFilter.startPoint, query.pathsFilter.endPoint
    name = subject + (f" From {start}" if start else "") + (f" to {end}" if end else "")
    description = f"Shows the most common paths users take{' from ' + start if start else ''}{' to ' + end if end else ''} {period_phrase(query.dateRange)}."
    return name, description


def _stickiness(query: StickinessQuery) -> tuple[str, str]:
    labels = [series_label(node) for node in query.series]
    name = f"Stickiness of {join_labels(labels)}"
    unit = INTERVAL_WORDS[query.interval]
    description = (
        f"Shows on how many {unit}s users did {join_labels([lower_label(label) for label in labels])} "
        f"{period_phrase(query.dateRange)}."
    )
    return name, description


def _lifecycle(query: LifecycleQuery) -> tuple[str, str]:
    label = series_label(query.series[0])
    unit = INTERVAL_WORDS[query.interval]
    name = f"User Lifecycle for {label}"
    description = (
        f"Splits users who did {lower_label(label)} each {unit} into new, returning, resurrecting and dormant "
        f"{period_phrase(query.dateRange)}."
    )
    return name, description


INSIGHT_DESCRIBERS: dict[type, Describer] = {
    TrendsQuery: _trends,
    FunnelsQuery: _funnels,
    RetentionQuery: _retention,
    PathsQuery: _paths,
    StickinessQuery: _stickiness,
    LifecycleQuery: _lifecycle,
}
