"""Results in docs/queries.md#results's shape, from the rows either store returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from insights.query_nodes import EventsNode, TrendsQuery
from insights.trends.common import BREAKDOWN_NULL, BREAKDOWN_OTHER
from insights.trends.window import TimeWindow


def trends_shape(
    query: TrendsQuery,
    *,
    window: TimeWindow,
    rows: list[tuple[int, datetime, str | None, Any]],
    broken_down: bool,
) -> list[dict[str, Any]]:
    position = {bucket: index for index, bucket in enumerate(window.buckets)}
    cells: dict[tuple[int, str | None], list[float]] = {}
    for series_index, bucket, breakdown, value in rows:
        data = cells.setdefault((series_index, breakdown), [0] * len(window.buckets))
        if bucket in position:
            data[position[bucket]] = _number(value)
    if not broken_down:
        for index in range(len(query.series)):
            cells.setdefault((index, None), [0] * len(window.buckets))
    days = [_day_label(bucket, window.interval) for bucket in window.buckets]
    labels = [_display_label(bucket, window.interval) for bucket in window.buckets]
    results = []
    for (index, breakdown), data in cells.items():
        series = query.series[index]
        assert isinstance(series, EventsNode)  # trends_sql refuses any other series
        name = series.custom_name or series.event or "All events"
        result: dict[str, Any] = {
            "label": name if not broken_down else f"{name} - {_breakdown_label(breakdown)}",
            "count": _number(sum(data)),
            "data": data,
            "days": days,
            "labels": labels,
            "action": {"order": index, "id": series.event, "name": series.event or "All events",
                       "custom_name": series.custom_name, "math": series.math or "total"},
        }  # fmt: skip
        if broken_down:
            result["breakdown_value"] = breakdown
        results.append(result)
    # Series in query order; within a series, the biggest breakdown values first.
    return sorted(
        results,
        key=lambda result: (result["action"]["order"], -result["count"], str(result.get("breakdown_value"))),
    )


def _number(value: Any) -> float | int:
    if value is None:
        return 0
    number = float(value)
    return int(number) if number.is_integer() else round(number, 6)


def _breakdown_label(value: str | None) -> str:
    return {BREAKDOWN_OTHER: "Other", BREAKDOWN_NULL: "None"}.get(value or BREAKDOWN_NULL, value or "None")


def _day_label(bucket: datetime, interval: str) -> str:
    return bucket.strftime("%Y-%m-%d %H:%M:%S" if interval in ("hour", "minute") else "%Y-%m-%d")


def _display_label(bucket: datetime, interval: str) -> str:
    label = f"{bucket.day}-{bucket:%b-%Y}"
    return f"{label} {bucket:%H:%M}" if interval in ("hour", "minute") else label
