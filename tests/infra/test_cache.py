"""The cache backend (infra/cache.py): one Redis client per process, whatever the threads."""

from __future__ import annotations

import threading

from django.core.cache import cache

from infra.redis import cache_get, cache_set, redis_client


def connections_received() -> int:
    return int(redis_client().info("stats")["total_connections_received"])


def test_requests_on_many_threads_share_the_processs_connection_to_redis() -> None:
    # Django keeps a cache object per thread (per request under gevent); each used to open its own
    # connection to Redis.
    cache_set("shared-client", {"answer": 42}, timeout=60)
    seen: list[object] = []

    def one_request() -> None:
        seen.append(cache_get("shared-client"))

    before = connections_received()
    for _ in range(20):  # one after another: a shared pool needs one connection for all of them
        thread = threading.Thread(target=one_request)
        thread.start()
        thread.join()
    assert seen == [{"answer": 42}] * 20
    assert connections_received() - before <= 1


def test_every_threads_cache_reads_what_another_thread_wrote() -> None:
    written = threading.Thread(target=lambda: cache.set("across-threads", "from another thread", 60))
    written.start()
    written.join()
    assert cache.get("across-threads") == "from another thread"
