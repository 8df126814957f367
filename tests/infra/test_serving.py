"""How the API's gunicorn processes take in a burst of new connections (infra/serving.py)."""

from __future__ import annotations

import socket

from gevent.event import Event

from infra.serving import ACCEPT_PER_TURN, _Server

BURST = 3 * ACCEPT_PER_TURN


def test_a_burst_of_new_connections_is_taken_in_by_the_turn_not_one_per_turn():
    listener = socket.create_server(("127.0.0.1", 0), backlog=BURST)
    clients = [socket.create_connection(listener.getsockname()) for _ in range(BURST)]  # queued in the kernel
    accepted, first_handled_after, all_handled = [0], list[int](), Event()

    class Counting(_Server):
        def do_read(self):  # gevent's accept of one connection
            connection = super().do_read()
            accepted[0] += connection is not None
            return connection

    def handle(client: socket.socket, _address: object) -> None:
        first_handled_after.append(accepted[0])
        client.close()
        if len(first_handled_after) == BURST:
            all_handled.set()

    server = Counting(listener, handle=handle)
    server.max_accept = 1  # what gunicorn sets when it runs more than one process
    server.start()
    try:
        assert all_handled.wait(timeout=30)
    finally:
        server.stop()
        for client in clients:
            client.close()
    # The first request handled was taken in with a whole turn's worth of others, not alone.
    assert first_handled_after[0] == ACCEPT_PER_TURN
    assert sorted(set(first_handled_after)) == [ACCEPT_PER_TURN, 2 * ACCEPT_PER_TURN, BURST]
