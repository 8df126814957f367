"""Test settings: only speed and isolation differ from production settings."""

import os

from insights_api.settings import *  # noqa: F403
from insights_api.settings import CACHES, THROTTLE_RATES

# Hashing passwords slowly protects stored passwords; tests store none worth protecting.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Each run gets its own key space in the shared test Redis.
CACHES["default"]["KEY_PREFIX"] = "insights-test"
# Budgets high enough that only the throttling tests (which lower them) ever hit one.
THROTTLE_RATES.update({"burst": "100000/minute", "sustained": "1000000/hour", "login": "1000/minute"})
# Static files are served from the app finders; tests never run collectstatic.
STATIC_ROOT = None
# Concurrency tests run many request threads in one process (gunicorn runs one per process), so the
# per-process connection pool must be as large as the largest test's thread count, unless a test
# sets the size itself.
if DATABASES["default"]["OPTIONS"].get("pool") and "DATABASE_POOL_MAX_SIZE" not in os.environ:  # noqa: F405
    DATABASES["default"]["OPTIONS"]["pool"]["max_size"] = 60  # noqa: F405
