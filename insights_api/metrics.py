"""Prometheus metrics. With PROMETHEUS_MULTIPROC_DIR set (as `make run` and the compose file do),
every gunicorn and Celery process writes its own samples and `/metrics` aggregates them."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
QUERY_CANCELLATIONS = Counter(
    "insights_query_cancellations_total",
    "Cancel requests by effect: waiter (one request stopped waiting), backend (the database work stopped).",
    ["effect"],
)
CELERY_TASKS = Counter(
    "insights_celery_tasks_total",
    "Celery task outcomes.",
    ["task", "outcome"],
)
