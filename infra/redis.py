"""Redis access: the process-wide client for code that needs more than the cache (pub/sub, atomic
keys), and cache reads and writes that fail open."""

from __future__ import annotations

import functools
import logging

import redis
from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)


@functools.cache
def redis_client() -> redis.Redis:
    # Short timeouts: every caller treats Redis as optional and degrades when it is slow or down.
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=2.0, health_check_interval=30
    )


def as_text(value: bytes | str) -> str:
    """A value read with `redis_client()` as text: it answers bytes (its responses are not decoded),
    which redis-py's types cannot tell from str."""
    return value.decode() if isinstance(value, bytes) else value


def cache_get(key: str) -> object:
    """The cached value (its type is the writer's, known by the key), or None when missing or when Redis cannot be reached (caches fail open)."""
    try:
        return cache.get(key)
    except redis.exceptions.RedisError:
        return None


def cache_set(key: str, value: object, *, timeout: int) -> None:
    """Cache a value if Redis can be reached; a cache that is down only costs recomputation."""
    try:
        cache.set(key, value, timeout=timeout)
    except redis.exceptions.RedisError:
        logger.warning("Could not cache %s: Redis unavailable", key.split(":")[0])


def cache_get_many(keys: list[str]) -> dict[str, object]:
    """The cached values found (one round trip); none when Redis cannot be reached."""
    try:
        return cache.get_many(keys) if keys else {}
    except redis.exceptions.RedisError:
        return {}


def cache_set_many(values: dict[str, object], *, timeout: int) -> None:
    """Cache several values in one round trip if Redis can be reached."""
    try:
        cache.set_many(values, timeout=timeout)
    except redis.exceptions.RedisError:
        logger.warning(
            "Could not cache %s: Redis unavailable", ", ".join(sorted({key.split(":")[0] for key in values}))
        )
