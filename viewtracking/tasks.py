"""Celery tasks of view tracking: the rollup (every minute by default) and retention (daily)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from viewtracking.services import view_events_prune, view_rollups_prune, views_rollup


@shared_task(name="viewtracking.rollup_views", acks_late=True)
def rollup_views() -> dict[str, object]:
    """Recompute the days that received views; a run that finds another running simply skips."""
    result = views_rollup()
    return {"ran": result.ran, "events": result.events, "days": [day.isoformat() for day in result.days]}


@shared_task(name="viewtracking.prune_views", acks_late=True)
def prune_views() -> dict[str, int]:
    return {
        "events": view_events_prune(older_than_days=settings.VIEW_EVENT_RETENTION_DAYS),
        "rollups": view_rollups_prune(older_than_days=settings.VIEW_ROLLUP_RETENTION_DAYS),
    }
