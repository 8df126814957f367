"""The cache backend (settings: CACHES): Django's Redis cache, with one Redis client per process.

Django keeps a cache object per thread — under gevent, per request — and each object builds its own
connection pool: every request opened a new connection to Redis for its first cache call (connect
and handshake, several round trips) and dropped it at the end. And Django's client builds a new
`redis.Redis` for every call (about 0.3 ms: its table of response callbacks). Here every cache object
of a process uses one client per server, built once; redis-py's pool is safe to share between
threads and greenlets, and starts afresh in a forked child.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from django.core.cache.backends.redis import RedisCache, RedisCacheClient

# The process's clients, by server and options (a test may point the cache elsewhere).
_clients: dict[str, RedisCacheClient] = {}


class SharedRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, building its `redis.Redis` once per connection pool."""

    # Django's (5.2), missing from django-stubs.
    _client: type[redis.Redis]
    _get_connection_pool: Callable[[bool], redis.ConnectionPool]

    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._redis: dict[int, redis.Redis] = {}

    def get_client(self, key: object = None, *, write: bool = False) -> redis.Redis:
        pool = self._get_connection_pool(write)
        client = self._redis.get(id(pool))
        if client is None:
            client = self._redis[id(pool)] = self._client(connection_pool=pool)
        return client


class SharedRedisCache(RedisCache):
    """Django's Redis cache whose objects (one per thread or greenlet) share their process's client."""

    # Django's (5.2), missing from django-stubs.
    _servers: list[str]
    _options: dict[str, Any]

    @property
    def _cache(self) -> RedisCacheClient:
        key = repr((self._servers, sorted(self._options.items())))
        client = _clients.get(key)
        if client is None:  # two threads may both build one: the first stored is kept
            client = _clients.setdefault(key, SharedRedisCacheClient(self._servers, **self._options))
        return client
