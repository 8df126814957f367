"""`make soak`: ten minutes of mixed traffic with a Redis restart and a PostgreSQL restart inside, and
an account of what was answered and what was lost (issue 22, item 6).

A private PostgreSQL (durable, as in production) and Redis are started with scripts/stack.py; the
service runs as `make run` runs it (gunicorn with gevent processes, a query worker, the production
settings); rollups run every few seconds alongside, as beat would send them. Several projects, each
with two users and their API keys, send without pause: the four read routes (list, retrieve,
trending, my_last_viewed), `viewed`, `bulk_update_tags` (each adding a tag of its own) and result
requests (insight retrieves with `refresh=force_blocking`, `POST …/query/`). A third of the way in
Redis is stopped and started again empty on its port; two thirds in PostgreSQL is crashed
(`pg_ctl stop -m immediate`) and started again.

The report: requests by route and status; every unexpected answer — a 5xx other than a documented
503 (in the error envelope, with `Retry-After`), a 4xx other than a 429 with `Retry-After`, a
dropped connection — wanted 0; and what was lost after a last rollup — a `viewed` answered 201
missing from the database or from `trending`, a tag whose `bulk_update_tags` answered 200 missing
from its insight — wanted 0. Exit status 0 only when both are 0.

    make soak                          # ten minutes
    make soak ARGS="--seconds 60"      # the short version tests/reliability/test_soak.py runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import stack  # noqa: E402  (scripts/stack.py: starts and stops the services)

from bench.measure import Client  # noqa: E402
from bench.soak_ledger import Ledger, report, tags, view_events  # noqa: E402

PROJECTS, USERS_PER_PROJECT, INSIGHTS_PER_PROJECT = 3, 2, 20
CLIENTS_PER_KEY = 2  # so 12 clients send at once
REDIS_OUTAGE_SECONDS, POSTGRES_OUTAGE_SECONDS = 5, 6
ROLLUP_EVERY_SECONDS = 3
# What each client sends, with weights: mostly cheap reads and writes, some result requests.
MIX = {"list": 20, "retrieve": 10, "trending": 10, "my_last_viewed": 10, "viewed": 25,
       "bulk_update_tags": 10, "result": 10, "query": 5}  # fmt: skip


@dataclass(frozen=True)
class Key:
    secret: str
    project: int
    insights: list[int]


# --- The stack ---------------------------------------------------------------------------------------


class Redis:
    """The private Redis, which the soak stops and starts again (empty) on the same port."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory, self.running = directory, contextlib.ExitStack()
        self.server = self.running.enter_context(stack.redis_server(directory, port))

    def restart(self, outage: float) -> None:
        port = self.server.port
        self.running.close()
        time.sleep(outage)  # the outage's length
        self.running = contextlib.ExitStack()
        self.server = self.running.enter_context(stack.redis_server(self.directory, port))
        if self.server.port != port:
            raise stack.StackError(f"Redis came back on {self.server.port}, not {port}")


@dataclass
class Postgres:
    pg: stack.Postgres
    bindir: Path
    data: Path

    def crash_and_restart(self, outage: float) -> None:
        pg_ctl = self.bindir / "pg_ctl"
        stop = [pg_ctl, "stop", "-D", self.data, "-m", "immediate", "-w", "-t", "30"]
        stack.run_checked(stack._as_postgres(stop), what="pg_ctl stop -m immediate")
        time.sleep(outage)  # the outage's length
        if stack._start_cluster(pg_ctl, self.data, self.pg.port, durable=True) != self.pg.port:
            raise stack.StackError("PostgreSQL came back on another port")


def build_keys() -> list[Key]:
    """PROJECTS projects, each with USERS_PER_PROJECT members holding a key, its insights, and a
    few events for its queries. (Django is set up.)"""
    from django.utils import timezone

    from accounts.services import installation_bootstrap
    from insights.models import Event, Insight

    keys = []
    for p in range(PROJECTS):
        project_keys = [
            installation_bootstrap(
                email=f"soak{p}-{u}@example.com",
                password=None,
                organization_name=f"Soak {p}",
                project_name=f"soak {p}",
                scopes=["*"],
                ai_approved=False,
                project_scoped=False,
            )
            for u in range(USERS_PER_PROJECT)
        ]
        project = project_keys[0].project
        insights = Insight.objects.bulk_create(
            [Insight(project=project, name=f"Soak {p}.{n}", query=trends(n % 7 + 1), created_by=project_keys[0].user)
             for n in range(INSIGHTS_PER_PROJECT)]
        )  # fmt: skip
        now = timezone.now()
        Event.objects.bulk_create(
            [Event(project=project, timestamp=now - timedelta(minutes=7 * n), event="$pageview", distinct_id=f"u{n % 40}")
             for n in range(500)]
        )  # fmt: skip
        keys += [Key(k.api_key.secret, project.id, [i.id for i in insights]) for k in project_keys]
    return keys


def trends(days: int) -> dict[str, Any]:
    return {"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}],
            "dateRange": {"date_from": f"-{days}d"}}}  # fmt: skip


# --- Traffic -------------------------------------------------------------------------------------------


def send(client: Client, key: Key, ledger: Ledger, rng: random.Random, name: str, started: float) -> None:
    """One request of the mix, answered into the ledger."""
    route = rng.choices(list(MIX), weights=list(MIX.values()))[0]
    base = f"/api/projects/{key.project}/insights/"
    insight = rng.choice(key.insights)
    body: Any = None
    method, path = "GET", base
    if route == "retrieve":
        path = f"{base}{insight}/"
    elif route == "trending":
        path = f"{base}trending/?days={rng.choice([1, 7, 30])}"
    elif route == "my_last_viewed":
        path = f"{base}my_last_viewed/"
    elif route == "viewed":
        method, path, body = "POST", f"{base}viewed/", {"insight_ids": [insight]}
    elif route == "bulk_update_tags":
        tag = f"{name}-{rng.getrandbits(48):x}"
        ids = rng.sample(key.insights, rng.randint(1, 3))
        method, path, body = "POST", f"{base}bulk_update_tags/", {"ids": ids, "action": "add", "tags": [tag]}
    elif route == "result":
        path = f"{base}{insight}/?refresh=force_blocking"
    elif route == "query":
        query = trends(rng.randint(1, 30))["source"]
        method, path = "POST", f"/api/projects/{key.project}/query/"
        body = {"query": query, "refresh": rng.choice(["blocking", "force_blocking"])}
    at = time.monotonic() - started
    try:
        status, content, headers = client.call(method, path, body)
    except OSError as error:  # http.client's errors included: a dropped connection
        status, content, headers = 0, repr(error).encode(), {}
    ledger.answered(route, status, content, headers, at, time.monotonic() - started)
    with ledger.lock:
        if route == "viewed":
            (ledger.views_acknowledged if status == 201 else ledger.views_refused)[insight] += 1
        elif route == "bulk_update_tags" and status == 200:
            ledger.tags_acknowledged += [(i, body["tags"][0]) for i in body["ids"]]


def rollups(ledger: Ledger, stop: threading.Event) -> None:
    """Roll views up every few seconds, as beat sends the task; a failure (PostgreSQL away) is counted."""
    from django.db import connections

    from viewtracking.services import views_rollup

    while not stop.wait(ROLLUP_EVERY_SECONDS):
        try:
            views_rollup()
            ledger.rollups["ran"] += 1
        except Exception:  # PostgreSQL down: the next one catches up
            ledger.rollups["failed"] += 1
        finally:
            connections.close_all()


# --- The run -------------------------------------------------------------------------------------------


def soak(seconds: float, *, keep: bool = False) -> dict[str, Any]:
    """Run the soak for `seconds`; the report as a dict. `keep` leaves the scratch directory (the
    servers' logs) in place."""
    with stack.ServiceStack() as services:
        scratch = Path(tempfile.mkdtemp(prefix="insights-soak-", dir="/tmp"))
        if not keep:
            services.callback(shutil.rmtree, scratch, ignore_errors=True)
        scratch.chmod(0o711 if stack.IS_ROOT else 0o700)
        stack.say(f"soak: scratch directory {scratch}")
        postgres, redis, env = servers(services, scratch)
        from django.core.management import call_command

        from bench.cases import web  # needs Django set up

        stack.say("soak: migrating and creating projects, keys and insights")
        call_command("migrate", "--noinput", verbosity=0)
        keys = build_keys()
        database = postgres.pg.url("soak")
        baseline = view_events(database)
        with web(services, scratch, env) as server:
            ledger, faults, elapsed = traffic(server.url, keys, seconds, postgres=postgres, redis=redis)
            from django.db import connections

            from viewtracking.services import views_rollup

            connections.close_all()
            views_rollup()  # the last rollup: trending then reads rolled-up days only
            counted = trending_counts(server.url, keys)
        recorded = Counter(view_events(database)) - Counter(baseline)
        tagged = tags(database)
    return report(ledger, elapsed=elapsed, faults=faults, recorded=recorded, counted=counted, baseline=baseline,
                  tagged=tagged)  # fmt: skip


def servers(services: stack.ServiceStack, scratch: Path) -> tuple[Postgres, Redis, dict[str, str]]:
    """A durable PostgreSQL and a Redis of the soak's own, and the settings the service runs with
    (also this process's: Django is set up with them)."""
    bindir = stack.system_postgres_bindir() or stack.install_system_postgres()
    pg = services.enter_context(stack.postgres_cluster(bindir, scratch / "pg", 25700, durable=True))
    stack.create_database(pg, "soak")
    redis = Redis(scratch / "redis", 26700)
    services.callback(lambda: redis.running.close())
    port = redis.server.port
    env = {
        "DATABASE_URL": pg.url("soak"),
        "REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{port}/1",
        "CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{port}/2",
        "SECRET_KEY": "soak-only",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        # Budgets far above what the clients send: throttling is not what is soaked.
        "THROTTLE_BURST": "100000000/minute",
        "THROTTLE_SUSTAINED": "100000000/hour",
        "LOG_LEVEL": "warning",
    }
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "insights_api.settings"
    import django

    django.setup()
    # This process's own pool (the rollups) retries through the PostgreSQL outage: no log line each time.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    return Postgres(pg, bindir, scratch / "pg"), redis, env


def traffic(
    url: str, keys: list[Key], seconds: float, *, postgres: Postgres, redis: Redis
) -> tuple[Ledger, dict[str, tuple[float, float]], float]:
    """The clients and the rollups for `seconds`, Redis restarted a third of the way in and
    PostgreSQL crashed two thirds in; the ledger, when each fault began and ended, and how long it took."""
    ledger, stop = Ledger(), threading.Event()
    stack.say(f"soak: {seconds:.0f} s of traffic from {len(keys) * CLIENTS_PER_KEY} clients; "
              f"Redis restarted at {seconds / 3:.0f} s, PostgreSQL at {2 * seconds / 3:.0f} s")  # fmt: skip
    started = time.monotonic()
    threads = [threading.Thread(target=rollups, args=(ledger, stop), daemon=True)]
    threads += [
        threading.Thread(target=client_loop, args=(url, key, ledger, stop, n, started))
        for n, key in enumerate(keys * CLIENTS_PER_KEY)
    ]
    for thread in threads:
        thread.start()
    faults: dict[str, tuple[float, float]] = {}
    until(started + seconds / 3, stop)
    faults["redis restart"] = timed(lambda: redis.restart(REDIS_OUTAGE_SECONDS), started)
    until(started + 2 * seconds / 3, stop)
    faults["postgres restart"] = timed(lambda: postgres.crash_and_restart(POSTGRES_OUTAGE_SECONDS), started)
    until(started + seconds, stop)
    stop.set()
    for thread in threads:
        thread.join(180)
    return ledger, faults, time.monotonic() - started


def timed(fault: Any, started: float) -> tuple[float, float]:
    """Run the fault; when it began and ended, in seconds since the traffic started."""
    began = time.monotonic() - started
    fault()
    return round(began, 1), round(time.monotonic() - started, 1)


def until(moment: float, stop: threading.Event) -> None:
    stop.wait(max(0.0, moment - time.monotonic()))


def client_loop(url: str, key: Key, ledger: Ledger, stop: threading.Event, n: int, started: float) -> None:
    client, rng = Client(url, key.secret), random.Random(n)
    while not stop.is_set():
        send(client, key, ledger, rng, f"c{n}", started)


def trending_counts(url: str, keys: list[Key]) -> dict[int, int]:
    """view_count of every insight, as `trending` (a day's window) answers a member of its project."""
    counted: dict[int, int] = {}
    for key in {key.project: key for key in keys}.values():
        path = f"/api/projects/{key.project}/insights/trending/?days=1&limit=100"
        status, content, _ = Client(url, key.secret).call("GET", path)
        if status != 200:
            raise stack.StackError(f"trending answered {status} after the soak: {content[:300]!r}")
        counted |= {row["id"]: row["view_count"] for row in json.loads(content)["results"]}
    return counted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600, help="how long the traffic runs (default 600)")
    parser.add_argument("--json", type=Path, help="also write the report to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (the servers' logs)")
    options = parser.parse_args()
    result = soak(options.seconds, keep=options.keep)
    text = json.dumps(result, indent=2)
    print(text)
    if options.json:
        options.json.write_text(text)
    clean = not result["unexpected"] and result["views_lost"] == 0 and result["tags_lost"] == 0
    clean = clean and result["views_missing_from_trending"] == 0
    print("soak: clean" if clean else "soak: FAILED (unexpected answers or lost writes above)")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
