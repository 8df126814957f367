"""`make run`: the whole service on this machine, in one command.

Starts what the environment does not already provide (PostgreSQL unless DATABASE_URL is set, Redis
unless REDIS_URL is set, and with EVENTS_BACKEND=clickhouse the owner of an embedded chDB database
unless CLICKHOUSE_URL is set), keeping their data in /tmp/insights-api-<uid>/ across runs; migrates,
collects static files, then runs a Celery worker, Celery beat and gunicorn. `.run/env` tells
`manage.py` where the services are while this runs. Ctrl-C, or SIGINT or SIGTERM to `make` alone (this
process then gets SIGTERM), stops everything, newest first, and exits 0; if a process dies on its
own, everything is stopped and the exit status is 1.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import stack

STATE = Path(f"/tmp/insights-api-{os.getuid()}")
RUN_ENV = stack.ROOT / ".run" / "env"
# Preferred ports (the next free one is taken if busy); below the ephemeral range, apart from the
# ports `make test` uses.
PG_PORT = 15432
REDIS_PORT = 16379
CLICKHOUSE_PORT = 18123
WEB_PORT = 8000
DEMO_EMAIL = "demo@example.com"
GUNICORN_CONFIG = stack.ROOT / "insights_api" / "gunicorn.conf.py"
# What `.run/env` passes on to manage.py.
RUN_ENV_NAMES = (
    "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "SECRET_KEY", "EVENTS_BACKEND",
    "CLICKHOUSE_URL",
)  # fmt: skip


@dataclass(frozen=True)
class Watched:
    """Something that must keep running while we serve; `log` is shown if it stops."""

    name: str
    alive: Callable[[], bool]
    log: Path | None


class ChildDied(Exception):
    def __init__(self, watched: Watched) -> None:
        super().__init__(f"{watched.name} exited unexpectedly")
        self.watched = watched


def check_alive(watched: Sequence[Watched]) -> None:
    for item in watched:
        if not item.alive():
            raise ChildDied(item)


def lock_state_dir(services: stack.ServiceStack) -> None:
    """One `make run` per user at a time: they would share the data directories and the ports."""
    descriptor = os.open(STATE / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    services.callback(os.close, descriptor)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(descriptor, 32, 0).decode().strip() or "?"
        raise stack.StackError(f"Another `make run` (pid {holder}) is using {STATE}.") from None
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)


def start_postgres(services: stack.ServiceStack, watched: list[Watched]) -> str:
    """A DATABASE_URL: the one given, or that of our own PostgreSQL (started here)."""
    if "DATABASE_URL" in os.environ:
        return os.environ["DATABASE_URL"]
    bindir = stack.system_postgres_bindir()
    if bindir is not None:
        pg = services.enter_context(stack.postgres_cluster(bindir, STATE / "pg", PG_PORT, durable=True))
        where = f"127.0.0.1:{pg.port}"
    else:
        pg = services.enter_context(stack.embedded_postgres(STATE / "pgserver"))
        where = f"socket in {pg.host} (embedded pgserver)"
    stack.create_database(pg, "insights")
    watched.append(Watched("PostgreSQL", pg.alive, pg.log))
    stack.say(f"PostgreSQL {pg.version}: {where}")
    return pg.url("insights")


def start_redis(services: stack.ServiceStack, watched: list[Watched]) -> dict[str, str]:
    """Redis settings: none if REDIS_URL is given, else those of our own Redis (started here)."""
    if "REDIS_URL" in os.environ:
        return {}
    redis = services.enter_context(stack.redis_server(STATE / "redis", REDIS_PORT))
    watched.append(Watched("Redis", lambda: not redis.service.exited(), redis.service.log))
    stack.say(f"Redis: 127.0.0.1:{redis.port}")
    # The cache, the broker and the results each get their own database.
    return {
        "REDIS_URL": redis.url(0),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", redis.url(1)),
        "CELERY_RESULT_BACKEND": os.environ.get("CELERY_RESULT_BACKEND", redis.url(2)),
    }


def start_clickhouse(services: stack.ServiceStack, watched: list[Watched]) -> dict[str, str]:
    """With EVENTS_BACKEND=clickhouse and no CLICKHOUSE_URL: the embedded chDB database in STATE/chdb,
    served by its one owner process over ClickHouse's HTTP interface, so that gunicorn, every query
    worker process and manage.py reach it alike (docs/events-store.md)."""
    if os.environ.get("EVENTS_BACKEND", "postgres").strip().lower() != "clickhouse" or os.environ.get(
        "CLICKHOUSE_URL"
    ):
        return {}
    port = stack.free_port(CLICKHOUSE_PORT)
    log = STATE / "chdb-owner.log"
    argv = [stack.VENV_BIN / "python", "-m", "insights.events_store.chdb_server", "--path", STATE / "chdb",
            "--port", str(port)]  # fmt: skip
    owner = services.enter_context(
        stack.service("chDB owner", argv, log=log, cwd=stack.ROOT, stop_timeout=30)
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while http_status(f"{url}/ping") != 200:
        if owner.exited() or time.monotonic() > deadline:
            raise stack.StackError(f"The chDB owner did not answer on {url}:\n{stack.log_tail(log)}")
        time.sleep(0.1)
    watched.append(Watched("chDB owner", lambda: not owner.exited(), log))
    stack.say(f"ClickHouse (embedded chDB, {STATE / 'chdb'}): {url}")
    return {"EVENTS_BACKEND": "clickhouse", "CLICKHOUSE_URL": url}


def secret_key() -> str:
    """SECRET_KEY, or one generated on the first run and kept, so sessions survive restarts."""
    if "SECRET_KEY" in os.environ:
        return os.environ["SECRET_KEY"]
    path = STATE / "secret_key"
    if not path.exists():
        stack.write_private(path, secrets.token_urlsafe(50))
    return path.read_text().strip()


def write_run_env(env: dict[str, str], services: stack.ServiceStack) -> None:
    RUN_ENV.parent.mkdir(exist_ok=True)
    lines = [f"{name}={env[name]}" for name in RUN_ENV_NAMES if name in env]
    stack.write_private(
        RUN_ENV, "# Written by `make run` while it serves; removed when it stops.\n" + "\n".join(lines) + "\n"
    )
    services.callback(RUN_ENV.unlink, missing_ok=True)


def manage(*args: str) -> list[str]:
    return [str(stack.VENV_BIN / "python"), "manage.py", *args]


def run_manage_commands(commands: Sequence[Sequence[str]], env: dict[str, str]) -> None:
    """Run manage.py commands side by side (each pays for Django's start-up), output to the terminal."""
    running = [
        (command, subprocess.Popen(manage(*command), cwd=stack.ROOT, env=env, stdin=subprocess.DEVNULL))
        for command in commands
    ]
    try:
        for command, process in running:
            if process.wait() != 0:
                raise stack.StackError(f"manage.py {' '.join(command)} failed (exit {process.returncode}).")
    finally:
        for _command, process in running:
            if process.poll() is None:
                process.terminate()
                process.wait()


# Requests to our own server never go through an http_proxy from the environment.
LOCAL_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_status(url: str, headers: dict[str, str] | None = None) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        with LOCAL_HTTP.open(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:  # URLError included: refused, reset, timed out
        return None


def wait_for(url: str, watched: Sequence[Watched], timeout: float = 90.0) -> None:
    """Until `url` answers 200 (/_ready: PostgreSQL, Redis and a query worker answer, and seeding is
    done), while every watched process keeps running."""
    deadline = time.monotonic() + timeout
    while http_status(url) != 200:
        check_alive(watched)
        if time.monotonic() > deadline:
            raise stack.StackError(f"{url} did not answer 200 within {timeout:.0f}s.")
        time.sleep(0.2)


def demo_credentials(base_url: str, env: dict[str, str]) -> dict[str, Any] | None:
    """The demo account. It is created when no user with DEMO_EMAIL exists in the database (the
    database, not a marker file, says whether this is a first run: a new DATABASE_URL or a deleted
    data directory gets a demo account, a kept database never a second one). API keys are shown only
    once, so the credentials are kept in demo.json (mode 600) and shown again on every start, as long
    as the stored key still works against this database. None when the demo user exists but its
    credentials are not known here (demo.json missing, or written for another database)."""
    stored_path = STATE / "demo.json"
    if stored_path.exists():
        stored: dict[str, Any] = json.loads(stored_path.read_text())
        me = http_status(f"{base_url}/api/users/@me/", {"Authorization": f"Bearer {stored['api_key']}"})
        if me == 200:
            return stored
    probe = (
        "from django.contrib.auth import get_user_model; "
        f"print(get_user_model().objects.filter(email__iexact={DEMO_EMAIL!r}).exists())"
    )
    exists = stack.run_checked(
        manage("shell", "--no-imports", "-c", probe), what="demo user lookup", cwd=stack.ROOT, env=env
    ).stdout.split()
    if exists[-1:] == ["True"]:
        return None

    password = secrets.token_urlsafe(12)
    created = stack.run_checked(
        manage(
            "bootstrap",
            *("--email", DEMO_EMAIL, "--password", password, "--organization", "Demo", "--project", "Demo"),
            "--json",
        ),
        what="manage.py bootstrap",
        cwd=stack.ROOT,
        env=env,
    )
    payload = json.loads(created.stdout.strip().splitlines()[-1])
    demo = {
        "email": payload["user"]["email"],
        "password": password,
        "api_key": payload["api_key"],
        "project_id": payload["project"]["id"],
    }
    stack.write_private(stored_path, json.dumps(demo, indent=2) + "\n")
    seed_demo(demo["project_id"], env)
    return demo


def seed_demo(project_id: int, env: dict[str, str]) -> None:
    """Fill the new demo project (events, insights, views...) so that every action has something to
    show. Its progress bars go to the terminal. A failure leaves an empty project, not a dead server."""
    stack.say("Seeding the demo project (once)...")
    seeded = subprocess.run(
        manage("seed_demo", "--project", str(project_id)), cwd=stack.ROOT, env=env, stdin=subprocess.DEVNULL
    )
    if seeded.returncode != 0:
        stack.warn(
            f"seeding the demo failed; retry with: .venv/bin/python manage.py seed_demo --project {project_id}"
        )


def copy_demo_events(project_id: int, env: dict[str, str]) -> None:
    """A demo seeded while events were kept in PostgreSQL gets them in ClickHouse too (once)."""
    copied = subprocess.run(
        manage("events_store_copy", "--project", str(project_id), "--if-empty"),
        cwd=stack.ROOT, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if copied.returncode != 0:
        stack.warn(
            f"copying the demo's events to ClickHouse failed; retry: manage.py events_store_copy --project {project_id}"
        )


def web_port() -> int:
    if "PORT" not in os.environ:
        return stack.free_port(WEB_PORT)
    port = int(os.environ["PORT"])
    if not stack.port_is_free(port):
        raise stack.StackError(f"Port {port} (PORT) is in use on 127.0.0.1; choose another PORT.")
    return port


def print_banner(base_url: str, demo: dict[str, Any] | None, started: float) -> None:
    rule = "-" * 78
    lines = [
        rule,
        f"Insights API ready in {time.monotonic() - started:.1f}s at {base_url}",
        f"  Swagger UI   {base_url}/api/schema/swagger-ui/",
    ]
    if demo is None:
        lines.append(
            f"  Demo user    {DEMO_EMAIL} exists, but its credentials are not stored in {STATE};\n"
            f"               issue a new key: .venv/bin/python manage.py bootstrap --email {DEMO_EMAIL} "
            "--organization Demo --project Demo"
        )
    else:
        insights_url = f"{base_url}/api/projects/{demo['project_id']}/insights/"
        lines += [
            f"  Demo login   {demo['email']} / {demo['password']}",
            f"  API key      {demo['api_key']}",
            f"  Project id   {demo['project_id']}",
            f"  Insights     {insights_url}",
            "  Try (README, Using it, walks through all six insight actions):",
            f"    curl -H 'Authorization: Bearer {demo['api_key']}' {insights_url}",
            f"    curl -H 'Authorization: Bearer {demo['api_key']}' '{insights_url}trending/?days=14'",
            f"  Redoc        {base_url}/api/schema/redoc/   Metrics  {base_url}/metrics",
        ]
    lines += [
        f"  State, logs and demo.json in {STATE}; manage.py reaches these services via .run/env.",
        "  Ctrl-C stops everything.",
        rule,
    ]
    stack.say("\n".join(lines))


def serve(started: float) -> None:
    with stack.ServiceStack() as services:
        try:
            start_and_watch(services, started)
        except stack.Interrupted:
            stack.say("make run: stopping...")
            raise


def start_and_watch(services: stack.ServiceStack, started: float) -> None:
    make = stack.ParentWatch()
    stack.user_state_dir(STATE)
    lock_state_dir(services)
    port = web_port()  # fail before starting anything if PORT is taken
    watched: list[Watched] = []
    env = dict(os.environ)
    env["DATABASE_URL"] = start_postgres(services, watched)
    env.update(start_redis(services, watched))
    env.update(start_clickhouse(services, watched))
    env["SECRET_KEY"] = secret_key()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir())
    # The schema's `servers` (Swagger's "try it out", generated clients) name the port really bound.
    env.setdefault("PUBLIC_URL", f"http://127.0.0.1:{port}")
    # Not ready until the demo data is seeded: /_ready answers 503 while this file exists.
    hold = STATE / "starting"
    hold.touch(mode=0o600)
    services.callback(hold.unlink, missing_ok=True)
    env["READINESS_HOLD_FILE"] = str(hold)
    # Readable lines in a terminal; production (and LOG_FORMAT=json here) writes one JSON object each.
    env.setdefault("LOG_FORMAT", "plain")
    write_run_env(env, services)
    run_manage_commands(
        [
            ["migrate", "--noinput", "-v0"],
            ["collectstatic", "--noinput", "-v0"],
            ["events_store_migrate", "-v0"],
        ],
        env,
    )
    start_celery(services, env, watched)
    base_url = start_web(services, env, port, watched)

    wait_for(f"{base_url}/_health", watched)
    demo = demo_credentials(base_url, env)  # seeds the demo project on a first start
    if demo is not None and env.get("EVENTS_BACKEND") == "clickhouse":
        copy_demo_events(demo["project_id"], env)
    hold.unlink()
    wait_for(f"{base_url}/_ready", watched)
    print_banner(base_url, demo, started)
    while True:
        check_alive(watched)
        if make.interrupted():
            raise stack.Interrupted(signal.SIGINT)
        time.sleep(0.5)


def metrics_dir() -> Path:
    """Where gunicorn and Celery processes write Prometheus samples for /metrics to aggregate;
    emptied at each start, since samples of processes that no longer exist are meaningless."""
    directory = STATE / "metrics"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=0o700)
    return directory


def start_celery(services: stack.ServiceStack, env: dict[str, str], watched: list[Watched]) -> None:
    """Two workers and beat: the default worker (rollups, model calls) and the query worker, whose
    QUERY_WORKER_CONCURRENCY processes are the query lane's capacity. All run without psycopg's
    pool: a pool opened in the prefork parent would be shared by the children it forks."""
    celery: list[str | Path] = [stack.VENV_BIN / "celery", "-A", "insights_api"]
    celery_env = {**env, "DATABASE_POOL": "false"}
    options = ["--pool", "prefork", "--without-gossip", "--without-mingle", "--without-heartbeat"]
    workers = (
        ("Celery worker", "celery", "default", os.environ.get("WORKER_CONCURRENCY", "2")),
        (
            "Celery query worker",
            os.environ.get("QUERY_QUEUE", "queries"),
            "queries",
            os.environ.get("QUERY_WORKER_CONCURRENCY", "2"),
        ),
    )
    for name, queue, node, concurrency in workers:
        worker = services.enter_context(
            stack.service(
                name,
                [*celery, "worker", "--loglevel", "INFO", "--queues", queue, "--hostname", f"{node}@%h",
                 "--concurrency", concurrency, *options],
                log=STATE / f"celery-{node}.log",
                env=celery_env,
                cwd=stack.ROOT,
                stop_timeout=30,  # a warm shutdown lets running tasks finish
            )
        )  # fmt: skip
        watched.append(Watched(name, lambda worker=worker: not worker.exited(), worker.log))
    beat = services.enter_context(
        stack.service(
            "Celery beat",
            [*celery, "beat", "--loglevel", "INFO", "--schedule", STATE / "celery-beat-schedule"],
            log=STATE / "celery-beat.log",
            env=celery_env,
            cwd=stack.ROOT,
        )
    )
    watched.append(Watched("Celery beat", lambda: not beat.exited(), beat.log))


def start_web(services: stack.ServiceStack, env: dict[str, str], port: int, watched: list[Watched]) -> str:
    """gunicorn on 127.0.0.1:`port` (insights_api/gunicorn.conf.py: gevent processes); returns its
    base URL. The app's logging (a line per request) goes to the terminal; gunicorn's error log,
    which says why it stopped, to a file."""
    log = STATE / "gunicorn.log"
    log.touch(mode=0o600)  # before gunicorn creates it world-readable
    argv: list[str | Path] = [
        stack.VENV_BIN / "gunicorn",
        "--config",
        GUNICORN_CONFIG,
        "insights_api.wsgi:application",
    ]
    # The app logs one line per request itself (with its request id), so gunicorn's access log is off.
    argv += ["--bind", f"127.0.0.1:{port}", "--error-logfile", str(log)]
    web = services.enter_context(stack.service("gunicorn", argv, log=None, env=env, cwd=stack.ROOT))
    watched.append(Watched("gunicorn", lambda: not web.exited(), log))
    return f"http://127.0.0.1:{port}"


def main() -> int:
    started = time.monotonic()
    stack.stop_with_parent()
    try:
        serve(started)
    except ChildDied as died:
        log = died.watched.log
        print(f"make run: {died}; everything stopped. Last lines of {log}:", file=sys.stderr)
        print(stack.log_tail(log), file=sys.stderr)
        return 1
    except stack.StackError as error:
        print(f"make run: {error}", file=sys.stderr)
        return 1
    except stack.Interrupted:
        stack.say("make run: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
