"""How gunicorn serves the API wherever it runs (`make run`, the image, the tests, the benchmarks):

    gunicorn -c insights_api/gunicorn.conf.py insights_api.wsgi:application --bind HOST:PORT

gevent workers: a request that waits — for its turn in the query lane, for an identical request's
answer, for a model's reply — is a greenlet asleep on its process's one Redis subscription, holding
no thread, no database connection and no slot that other requests need. psycopg and redis-py
cooperate with gevent's monkey-patching, which gunicorn applies in each worker before it loads the
app. (bench/FINDINGS.md: the alternatives measured, threads and ASGI among them.)

Read as a file, not imported as a module: importing the `insights_api` package here, in the master
process, would import Celery before the workers are patched.
"""

import os


def _positive(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or int(raw) < 1:
        raise SystemExit(f"{name} must be a positive integer, not {raw!r}")
    return int(raw)


# gunicorn's gevent worker, taking a burst of new connections in promptly (its module says why).
worker_class = "infra.serving.GeventWorker"
workers = _positive("WEB_CONCURRENCY", 2)
# Requests one process serves at once, waiting ones included.
worker_connections = _positive("WEB_CONNECTIONS", 1000)
timeout = 60
graceful_timeout = 30
# gunicorn 27 opens a control socket in the home directory by default; nothing here uses it.
control_socket_disable = True


def _write_envelope(sock, status_int, reason, mesg):
    """gunicorn's own refusals (an over-long URL: 414; a malformed request line or header: 400; …) in
    the API's error envelope rather than HTML, so every error a client can meet has one shape."""
    import json

    kind = "server_error" if status_int >= 500 else "invalid_request"
    code = "uri_too_long" if status_int == 414 else reason.lower().replace(" ", "_").replace("-", "_")
    detail = "The URL is too long (over 4094 bytes with its query string)." if status_int == 414 else mesg
    body = json.dumps({"type": kind, "code": code, "detail": detail or reason, "attr": None}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    sock.sendall(head + body)


def post_worker_init(worker):
    import gc

    from gunicorn import util

    util.write_error = _write_envelope
    # The loaded application's objects live as long as the process: left out of every garbage
    # collection from now on, the full collections a crowd's in-flight requests set off scan half as
    # much (bench/FINDINGS.md, "Taken in at the door").
    gc.collect()
    gc.freeze()
