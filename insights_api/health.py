"""Liveness (`/_health`: the process answers), readiness (`/_ready`: PostgreSQL and Redis answer, a
query worker is alive, and nothing holds it back — READINESS_HOLD_FILE), and Prometheus metrics
(`/metrics`)."""

from __future__ import annotations

import logging
import os

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from infra.metrics import metrics_registry
from insights.query_workers import query_workers_alive

logger = logging.getLogger(__name__)


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def ready(request: HttpRequest) -> JsonResponse:
    checks = {"postgres": _check_postgres(), "redis": _check_redis(), "query_workers": _check_query_workers()}
    if settings.READINESS_HOLD_FILE and os.path.exists(settings.READINESS_HOLD_FILE):
        checks["started"] = False  # still being set up (make run seeding its demo data)
    ok = all(checks.values())
    return JsonResponse(
        {
            "status": "ok" if ok else "unavailable",
            "checks": {name: "ok" if up else "down" for name, up in checks.items()},
        },
        status=200 if ok else 503,
    )


def _check_postgres() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:
        logger.warning("Readiness: PostgreSQL unreachable", exc_info=True)
        return False


def _check_redis() -> bool:
    try:
        cache.get("readiness-probe")
        return True
    except Exception:
        logger.warning("Readiness: Redis unreachable", exc_info=True)
        return False


def _check_query_workers() -> bool:
    """Whether any query worker is alive: without one no query can run (unknown without Redis)."""
    try:
        return bool(query_workers_alive())
    except Exception:
        logger.warning("Readiness: query workers unknown (Redis unreachable)", exc_info=True)
        return False


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition. Under gunicorn and Celery set PROMETHEUS_MULTIPROC_DIR so samples from
    every process are aggregated here (see infra.metrics.metrics_registry)."""
    return HttpResponse(generate_latest(metrics_registry()), content_type=CONTENT_TYPE_LATEST)
