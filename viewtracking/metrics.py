"""The rollup's lag as a Prometheus gauge, read at scrape time (registered with infra.metrics by
ViewTrackingConfig.ready)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from django.db.models import Min
from prometheus_client.core import GaugeMetricFamily

from viewtracking.models import PendingView

logger = logging.getLogger(__name__)


class RollupLagCollector:
    """`insights_view_rollup_lag_seconds`: the age of the oldest view not yet rolled up into daily
    counts (0 when none waits). Read from PostgreSQL at scrape time, so it keeps growing while beat
    or the workers are down, which a value reported by the rollup task itself could not show."""

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # registering must not query the database (the registry calls collect() otherwise)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            oldest = PendingView.objects.aggregate(oldest=Min("viewed_at"))["oldest"]
        except Exception:  # a scrape must never fail because PostgreSQL is down; /_ready reports that
            logger.warning("Rollup lag unavailable: PostgreSQL unreachable", exc_info=True)
            return
        lag = max(0.0, time.time() - oldest.timestamp()) if oldest is not None else 0.0
        yield GaugeMetricFamily(
            "insights_view_rollup_lag_seconds",
            "Age of the oldest view not yet rolled up into daily counts (0 when none is waiting).",
            value=lag,
        )
