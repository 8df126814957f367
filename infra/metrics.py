"""Prometheus metrics. With PROMETHEUS_MULTIPROC_DIR set (as `make run` and the compose file do),
every gunicorn and Celery process writes its own samples and `/metrics` aggregates them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

REQUEST_LATENCY = Histogram(
    "insights_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, URL pattern (route) and status code.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

COALESCING_OUTCOMES = Counter(
    "insights_coalescing_requests_total",
    "Coalesced result requests by role: leader, follower, takeover (a follower that became leader), off.",
    ["role"],
)
COALESCING_WAIT = Histogram(
    "insights_coalescing_wait_seconds",
    "How long a follower waited for the leader's result.",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
QUERY_RUNTIME = Histogram(
    "insights_query_runtime_seconds",
    "Time to compute a query's results (cache misses only).",
    ["kind"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)
QUERY_EXECUTIONS = Counter(
    "insights_query_executions_total",
    "Query statements run in the database, by outcome: computed, or failed (timed out, cancelled, errored).",
    ["outcome"],
)
QUERY_CANCELLATIONS = Counter(
    "insights_query_cancellations_total",
    "Cancel requests by effect: waiter (one request stopped waiting), backend (the database work stopped).",
    ["effect"],
)
QUERY_LANE_WAIT = Histogram(
    "insights_query_lane_wait_seconds",
    "How long a query execution waited for its project's turn in the query lane.",
    ["project"],
    buckets=(0.005, 0.05, 0.25, 1, 2.5, 5, 10, 20, 30, 60),
)
QUERY_LANE_REJECTIONS = Counter(
    "insights_query_lane_rejections_total",
    "Result requests answered 429 too_many_concurrent_queries: no turn came within the queue bound.",
    ["project"],
)
CELERY_TASKS = Counter(
    "insights_celery_tasks_total",
    "Celery task outcomes of every task (success, failure, retry, revoked, rejected), from Celery's signals.",
    ["task", "outcome"],
)


class LaneCollector:
    """`insights_query_lane_running` and `insights_query_lane_waiting`, per lane and project: turns
    running and waiting right now, read from Redis at scrape time (the lanes' state lives there, so
    every process of every machine reports the same numbers)."""

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterator[GaugeMetricFamily]:
        import redis

        from infra.lanes import LANES

        running = GaugeMetricFamily(
            "insights_query_lane_running", "Turns running in a lane, by project.", labels=["lane", "project"]
        )
        waiting = GaugeMetricFamily(
            "insights_query_lane_waiting",
            "Turns waiting in a lane's queue, by project.",
            labels=["lane", "project"],
        )
        try:
            for lane in LANES.values():
                for state in lane.states():
                    running.add_metric([lane.name, state.tenant], state.running)
                    waiting.add_metric([lane.name, state.tenant], state.waiting)
        except redis.exceptions.RedisError:
            logger.warning("Lane metrics unavailable: Redis unreachable")
            return
        yield running
        yield waiting


class _ThisProcess:
    """This process's own samples (the metrics above), for a registry built per scrape."""

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterable[Metric]:
        return REGISTRY.collect()


def metrics_registry(*, shared_state: bool = True) -> CollectorRegistry:
    """What a scrape exposes. With PROMETHEUS_MULTIPROC_DIR set (gunicorn's and Celery's processes),
    the samples of every process writing there, aggregated; else this process's own. `shared_state`
    adds the gauges read from PostgreSQL and Redis (the web processes serve them; a worker's exporter
    does not)."""
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped in prometheus_client
    else:
        registry.register(_ThisProcess())
    if shared_state:
        registry.register(LaneCollector())
        for collector in SHARED_STATE_COLLECTORS:
            registry.register(collector())
    return registry


# Collectors of gauges read from shared state at scrape time, added by the apps that own that state
# (their AppConfig.ready), so this module knows no app.
SHARED_STATE_COLLECTORS: list[Callable[[], Collector]] = []
