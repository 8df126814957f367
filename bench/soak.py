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
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import stack  # noqa: E402  (scripts/stack.py: starts and stops the services)

from bench.measure import Client  # noqa: E402

PROJECTS, USERS_PER_PROJECT, INSIGHTS_PER_PROJECT = 3, 2, 20
CLIENTS_PER_KEY = 2  # so 12 clients send at once
REDIS_OUTAGE_SECONDS, POSTGRES_OUTAGE_SECONDS = 5, 6
ROLLUP_EVERY_SECONDS = 3
RECOVERY_SECONDS = 10  # a refusal this soon after a fault ended is counted as the fault's
DOCUMENTED_503 = {"service_unavailable", "query_workers_unavailable"}
# What each client sends, with weights: mostly cheap reads and writes, some result requests.
MIX = {"list": 20, "retrieve": 10, "trending": 10, "my_last_viewed": 10, "viewed": 25,
       "bulk_update_tags": 10, "result": 10, "query": 5}  # fmt: skip


@dataclass(frozen=True)
class Key:
    secret: str
    project: int
    insights: list[int]


@dataclass(frozen=True)
class Refusal:
    at: float  # sent, in seconds since the traffic started
    done: float  # answered
    route: str
    answer: str  # "503 service_unavailable"
    content: bytes


@dataclass
class Ledger:
    """Every answer, and the writes acknowledged; shared by the clients (appends under a lock)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    views_acknowledged: Counter[int] = field(default_factory=Counter)
    views_refused: Counter[int] = field(default_factory=Counter)
    tags_acknowledged: list[tuple[int, str]] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)  # every answer other than 2xx
    rollups: Counter[str] = field(default_factory=Counter)

    def answered(
        self, route: str, status: int, content: bytes, headers: dict[str, str], at: float, done: float
    ) -> None:
        problem = _unexpected(status, content, headers)
        with self.lock:
            self.statuses[(route, status)] += 1
            if status >= 300:
                self.refusals.append(
                    Refusal(round(at, 1), round(done, 1), route, f"{status} {_code(content)}", content[:200])
                )
            if problem is not None:
                self.unexpected.append(
                    {"route": route, "status": status, "at_s": round(at, 1), "why": problem}
                )


def _code(content: bytes) -> str:
    try:
        return str(json.loads(content).get("code"))
    except (ValueError, AttributeError):
        return "-"


def _unexpected(status: int, content: bytes, headers: dict[str, str]) -> str | None:
    """Why an answer is not one a client may get in a faulty day (None: it may)."""
    if status < 400:
        return None
    try:
        error = json.loads(content)
    except ValueError:
        return f"not the error envelope: {content[:200]!r}"
    retry_after = {name.lower(): value for name, value in headers.items()}.get("retry-after")
    if status == 503 and error.get("code") in DOCUMENTED_503 and retry_after:
        return None
    if status == 429 and retry_after:
        return None
    return f"{error.get('code')}: {error.get('detail')}"[:300]


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
        bindir = stack.system_postgres_bindir() or stack.install_system_postgres()
        pg = services.enter_context(stack.postgres_cluster(bindir, scratch / "pg", 25700, durable=True))
        postgres = Postgres(pg, bindir, scratch / "pg")
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
        from django.core.management import call_command

        from bench.cases import web  # needs Django set up

        stack.say("soak: migrating and creating projects, keys and insights")
        call_command("migrate", "--noinput", verbosity=0)
        keys = build_keys()
        baseline = view_events(pg.url("soak"))
        ledger, stop = Ledger(), threading.Event()
        with web(services, scratch, env) as server:
            stack.say(f"soak: {seconds:.0f} s of traffic from {len(keys) * CLIENTS_PER_KEY} clients; "
                      f"Redis restarted at {seconds / 3:.0f} s, PostgreSQL at {2 * seconds / 3:.0f} s")  # fmt: skip
            started = time.monotonic()
            threads = [threading.Thread(target=rollups, args=(ledger, stop), daemon=True)]
            for n, key in enumerate(keys * CLIENTS_PER_KEY):
                threads.append(
                    threading.Thread(target=client_loop, args=(server.url, key, ledger, stop, n, started))
                )
            for thread in threads:
                thread.start()
            faults: dict[str, tuple[float, float]] = {}
            until(started + seconds / 3, stop)
            faults["redis restart"] = timed(lambda: redis.restart(REDIS_OUTAGE_SECONDS), started)
            until(started + 2 * seconds / 3, stop)
            faults["postgres restart"] = timed(
                lambda: postgres.crash_and_restart(POSTGRES_OUTAGE_SECONDS), started
            )
            until(started + seconds, stop)
            stop.set()
            for thread in threads:
                thread.join(180)
            elapsed = time.monotonic() - started
            from django.db import connections

            from viewtracking.services import views_rollup

            connections.close_all()
            views_rollup()  # the last rollup: trending then reads rolled-up days only
            counted = trending_counts(server.url, keys)
        recorded = Counter(view_events(pg.url("soak"))) - Counter(baseline)
        tagged = tags(pg.url("soak"))
    return report(ledger, elapsed=elapsed, faults=faults, recorded=recorded, counted=counted, baseline=baseline,
                  tagged=tagged)  # fmt: skip


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


def view_events(database_url: str) -> dict[int, int]:
    with psycopg.connect(database_url) as connection:
        rows = connection.execute(
            "SELECT insight_id, count(*) FROM viewtracking_viewevent GROUP BY 1"
        ).fetchall()
    return dict(rows)


def tags(database_url: str) -> set[tuple[int, str]]:
    with psycopg.connect(database_url) as connection:
        return set(
            connection.execute(
                "SELECT item.insight_id, tag.name FROM tagging_taggeditem AS item "
                "JOIN tagging_tag AS tag ON tag.id = item.tag_id"
            ).fetchall()
        )


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


def report(
    ledger: Ledger, *, elapsed: float, faults: dict[str, tuple[float, float]], recorded: Counter[int], counted: dict[int, int],
    baseline: dict[int, int], tagged: set[tuple[int, str]],
) -> dict[str, Any]:  # fmt: skip
    acknowledged = ledger.views_acknowledged
    insights = set(acknowledged) | set(ledger.views_refused)
    lost_views = sum(max(0, acknowledged[i] - recorded[i]) for i in insights)
    # trending counts every view event, those of the insights' creation (the baseline) included
    uncounted = sum(max(0, acknowledged[i] + baseline.get(i, 0) - counted.get(i, 0)) for i in insights)
    lost_tags = [pair for pair in ledger.tags_acknowledged if pair not in tagged]
    by_status: Counter[int] = Counter()
    by_route: dict[str, dict[int, int]] = {}
    for (route, status), count in sorted(ledger.statuses.items()):
        by_status[status] += count
        by_route.setdefault(route, {})[status] = count
    return {
        "seconds": round(elapsed, 1),
        "requests": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "by_route": by_route,
        "faults": {name: {"from_s": began, "to_s": ended} for name, (began, ended) in faults.items()},
        "refused_by_phase": refused_by_phase(ledger.refusals, faults),
        "refused_otherwise": [
            {"at_s": r.at, "route": r.route, "answer": r.answer, "body": r.content.decode(errors="replace")}
            for r in ledger.refusals
            if phase_of(r, faults) == "otherwise"
        ][:20],
        "unexpected": ledger.unexpected,
        "views_acknowledged": sum(acknowledged.values()),
        "views_recorded": sum(recorded.values()),
        "views_lost": lost_views,
        "views_missing_from_trending": uncounted,
        "views_recorded_though_refused": sum(max(0, recorded[i] - acknowledged[i]) for i in insights),
        "tags_acknowledged": len(ledger.tags_acknowledged),
        "tags_lost": len(lost_tags),
        "rollups": dict(ledger.rollups),
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def phase_of(refusal: Refusal, faults: dict[str, tuple[float, float]]) -> str:
    """The fault a refusal belongs to (in flight during it or in the RECOVERY_SECONDS after), or "otherwise"."""
    return next(
        (
            name
            for name, (began, ended) in faults.items()
            if refusal.done >= began and refusal.at <= ended + RECOVERY_SECONDS
        ),
        "otherwise",
    )


def refused_by_phase(
    refusals: list[Refusal], faults: dict[str, tuple[float, float]]
) -> dict[str, dict[str, int]]:
    """The non-2xx answers by when they were sent: during a fault (or just after it), or otherwise."""
    phases: dict[str, Counter[str]] = {name: Counter() for name in [*faults, "otherwise"]}
    for refusal in refusals:
        phases[phase_of(refusal, faults)][refusal.answer] += 1
    return {phase: dict(counts) for phase, counts in phases.items()}


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
