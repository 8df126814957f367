"""The process-wide Redis client for code that needs more than the cache (pub/sub, atomic keys)."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings


@cache
def redis_client() -> redis.Redis:
    # Short timeouts: every caller treats Redis as optional and degrades when it is slow or down.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=2.0, health_check_interval=30
    )
