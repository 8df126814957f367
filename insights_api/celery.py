"""The Celery application; tasks are discovered in each app's tasks.py."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "insights_api.settings")

app = Celery("insights_api")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Request ids carried into tasks, and every task's outcome counted (see the module).
from insights_api import celery_signals  # noqa: E402, F401
