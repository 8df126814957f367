"""The gunicorn worker the API runs on: gunicorn's gevent worker, taking a burst of connections in promptly.

gunicorn's gevent worker accepts one connection per turn of its event loop when it runs more than one
process (`max_accept = 1` in gunicorn/workers/ggevent.py, so that one process does not take a whole
burst). A turn runs every request that is ready until it waits, so on a busy process a burst of new
connections comes in at the pace of those turns. Measured (bench/FINDINGS.md, "Taken in at the
door"): a crowd of 1,000 identical queries sent at once on new connections was read over 4 to 7 s;
its last requests arrived after the execution they would have joined had finished, and ran the query
again. Here a turn accepts up to ACCEPT_PER_TURN connections: the crowd was read within a second.

Named in insights_api/gunicorn.conf.py (`worker_class`), and loaded by gunicorn's master process
before any worker patches the standard library for gevent: it imports gunicorn and gevent only.
"""

from __future__ import annotations

from gevent.server import StreamServer
from gunicorn.workers import ggevent

# Connections a process accepts per turn of its event loop. Small enough that when a burst arrives
# the other processes still take their share of it (gevent's own default is 100).
ACCEPT_PER_TURN = 16


class _Server(StreamServer):  # type: ignore[misc]  # gevent ships no type information
    """gevent's server, with ACCEPT_PER_TURN connections per turn whatever gunicorn sets."""

    @property
    def max_accept(self) -> int:
        return ACCEPT_PER_TURN

    @max_accept.setter
    def max_accept(self, _: int) -> None:
        pass  # gunicorn's `max_accept = 1`


class GeventWorker(ggevent.GeventWorker):  # type: ignore[misc]  # nor does gunicorn
    def run(self) -> None:
        ggevent.StreamServer = (
            _Server  # the name gunicorn's run() builds its servers with (this process only)
        )
        super().run()
