"""Results in docs/queries.md#results's shape, from the rows either store returns."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from infra.json_types import JSONObject
from insights.query_nodes import EventsNode, TrendsQuery
from insights.trends.common import BREAKDOWN_NULL, BREAKDOWN_OTHER
from insights.trends.window import TimeWindow

Number = int | float | Decimal | None  # a row's value, as PostgreSQL or ClickHouse answers it


def trends_shape(
    query: TrendsQuery,
    *,
    window: TimeWindow,
    rows: list[tuple[int, datetime, str | None, Number]],
    broken_down: bool,
) -> list[JSONObject]:
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
    results: list[tuple[tuple[int, float, str], JSONObject]] = []  # (order, result)
    for (index, breakdown), data in cells.items():
        series = query.series[index]
        assert isinstance(series, EventsNode)  # trends_sql refuses any other series
        name = series.custom_name or series.event or "All events"
        count = _number(sum(data))
        result: JSONObject = {
            "label": name if not broken_down else f"{name} - {_breakdown_label(breakdown)}",
            "count": count,
            "data": data,
            "days": days,
            "labels": labels,
            "action": {"order": index, "id": series.event, "name": series.event or "All events",
                       "custom_name": series.custom_name, "math": series.math or "total"},
        }  # fmt: skip
        if broken_down:
            result["breakdown_value"] = breakdown
        results.append(((index, -count, str(breakdown if broken_down else None)), result))
    # Series in query order; within a series, the biggest breakdown values first.
    return [result for _, result in sorted(results, key=lambda ordered: ordered[0])]


def _number(value: Number) -> float | int:
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
