"""Django's PostgreSQL backend with one change to its psycopg connection pool (settings: ENGINE).

Django's pool tests a connection before lending it (CONN_HEALTH_CHECKS) and drops it if dead, but
psycopg then waits a second before drawing the next one, and two seconds after a second dead one:
after PostgreSQL restarts, a process whose pool is full of idle dead connections fails request
after request with a pool timeout (503), each having drawn two dead ones. Here the first dead
connection found makes the pool test all its idle connections at once and replace the dead ones,
so a request draws at most one and is served a second later.

And while PostgreSQL is down, psycopg retries a failed connection 1, 2, 4, 8, … seconds apart (one
attempt at a time per pool): a process would serve again only at its next attempt, up to as long
after PostgreSQL is back as it was gone (an 8 s outage: 7 s more of 503s). Here attempts stay about a
second apart, so every process serves again within about a second of PostgreSQL's return.

Meanwhile a request fails fast: once a connection attempt has failed, and until one succeeds, a
request takes an idle connection if there is one and otherwise answers 503 at once, instead of
waiting out the pool's timeout while holding its work slot (infra/slots.py) — the requests queued
behind it for that slot would each wait out the timeout again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg import Connection
from psycopg_pool import ConnectionPool
from psycopg_pool.base import AttemptWithBackoff


class DatabaseWrapper(base.DatabaseWrapper):
    # Django's (5.2), missing from django-stubs: every alias's pool, and the set-up of a new connection.
    _connection_pools: ClassVar[dict[str, ConnectionPool]]
    _configure_connection: Callable[[Any], None]

    @property
    def pool(self) -> ConnectionPool | None:
        # Django's own property (django/db/backends/postgresql/base.py, 5.2), but for `check`.
        options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # Django sets it properly later on
            checks = self.settings_dict["CONN_HEALTH_CHECKS"]
            pool = _SteadyRetryPool(
                kwargs=connect_kwargs,
                open=False,  # opened on first use, in the process that uses it
                configure=self._configure_connection,
                check=functools.partial(_check_or_purge, self.alias) if checks else None,
                **({} if options is True else options),
            )
            self._connection_pools.setdefault(self.alias, pool)  # the first thread's pool wins
        return self._connection_pools[self.alias]


def _check_or_purge(alias: str, connection: Any) -> None:
    """Test a connection about to be lent; if it is dead, test the idle ones too (they died with it)."""
    try:
        ConnectionPool.check_connection(connection)
    except Exception:
        DatabaseWrapper._connection_pools[alias].check()
        raise


class _SteadyAttempt(AttemptWithBackoff):
    """A connection attempt retried about every second (psycopg doubles the wait each time)."""

    DELAY_BACKOFF = 1.0


class _SteadyRetryPool(ConnectionPool):
    unreachable = False  # the last connection attempt failed

    def getconn(self, timeout: float | None = None) -> Connection[Any]:
        return super().getconn(0 if self.unreachable else timeout)

    def _connect(self, timeout: float | None = None) -> Connection[Any]:
        try:
            connection: Connection[Any] = super()._connect(timeout)
        except Exception:
            self.unreachable = True
            raise
        self.unreachable = False
        return connection

    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        super()._add_connection(attempt or _SteadyAttempt(timeout=self.reconnect_timeout), growing=growing)
