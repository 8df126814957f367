"""The benchmarks of issue 5. Each returns Figures; bench/run.py sets up Django and the services."""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import stack
from django.core.management import call_command

from accounts.models import OrganizationMembership, Project, User
from accounts.services import installation_bootstrap
from bench.measure import (
    Burst,
    Client,
    Figure,
    Statements,
    cpu_seconds,
    p50_ms,
    peak_rss_mb,
    process_tree,
    repeat,
)
from insights.models import Insight
from insights.query_nodes import query_parse
from insights.trends import trends_sql, trends_window
from viewtracking.services import views_rollup

TRENDS_30_DAYS = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}],
    "interval": "day",
    "dateRange": {"date_from": "-30d"},
}
TRENDING_INSIGHTS = 200
VIEWERS = 50


@dataclass
class World:
    database_url: str
    key: str
    project: int
    insights: list[int]  # 500, in `project`
    small: int  # a project with 10,000 view events over 90 days
    large: int  # the same shape with 1,000,000
    events_project: int
    busy_insight: int  # a Trends insight over the events: about a second to compute


@dataclass
class Server:
    url: str
    pid: int
    client: Client


def prepare_database(database_url: str) -> None:
    call_command("migrate", "--noinput", verbosity=0)
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def build_world() -> World:
    from django.db import connection

    setup = installation_bootstrap(
        email="bench@example.com", password=None, organization_name="Bench", project_name="bench",
        scopes=["*"], ai_approved=False, project_scoped=False,
    )  # fmt: skip
    organization, owner = setup.organization, setup.user
    viewers = User.objects.bulk_create([User(email=f"viewer{n}@bench.test") for n in range(VIEWERS)])
    OrganizationMembership.objects.bulk_create(
        [OrganizationMembership(organization=organization, user=u) for u in viewers]
    )
    insights = Insight.objects.bulk_create(
        [
            Insight(project=setup.project, name=f"Insight {n}", query=TRENDS_30_DAYS, created_by=owner)
            for n in range(500)
        ]
    )
    small, large, events = (
        Project.objects.create(organization=organization, name=name) for name in ("small", "large", "events")
    )
    for project, views in ((small, 10_000), (large, 1_000_000)):
        Insight.objects.bulk_create(
            [Insight(project=project, name=f"T{n}") for n in range(TRENDING_INSIGHTS)]
        )
        stack.say(f"bench: {views:,} view events over 90 days in project {project.name}")
        with connection.cursor() as cursor:
            cursor.execute(
                _VIEWS_SQL, {"project": project.id, "views": views, "users": [u.id for u in viewers]}
            )
    stack.say("bench: rolling views up")
    views_rollup()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as analyzer:
        analyzer.execute("VACUUM ANALYZE")  # what autovacuum does in steady state: fresh statistics
    busy = Insight.objects.create(
        project=events, name="Busy", query={"kind": "InsightVizNode", "source": TRENDS_30_DAYS}
    )
    return World(
        database_url=os.environ["DATABASE_URL"], key=setup.api_key.secret, project=setup.project.id,
        insights=[insight.id for insight in insights], small=small.id, large=large.id,
        events_project=events.id, busy_insight=busy.id,
    )  # fmt: skip


# Random views over 90 days, then each user's latest view per insight, as `viewed` writes them.
_VIEWS_SQL = """
WITH ids AS (SELECT array_agg(id ORDER BY id) AS insights FROM insights_insight WHERE project_id = %(project)s),
generated AS (
    INSERT INTO viewtracking_viewevent (project_id, insight_id, user_id, viewed_at)
    SELECT %(project)s,
           ids.insights[1 + floor(power(random(), 2) * array_length(ids.insights, 1))::int],
           (%(users)s::bigint[])[1 + floor(random() * cardinality(%(users)s::bigint[]))::int],
           now() - random() * interval '90 days'
    FROM ids, generate_series(1, %(views)s)
    RETURNING id, insight_id, user_id, viewed_at
), queued AS (
    INSERT INTO viewtracking_pendingview (event_id, project_id, insight_id, viewed_at)
    SELECT id, %(project)s, insight_id, viewed_at FROM generated
)
INSERT INTO viewtracking_insightviewed (project_id, insight_id, user_id, last_viewed_at)
SELECT %(project)s, insight_id, user_id, max(viewed_at) FROM generated GROUP BY insight_id, user_id
"""


@contextlib.contextmanager
def web(services: stack.ServiceStack, scratch: Path, env: dict[str, str]) -> Iterator[Server]:
    """gunicorn as `make run` runs it (pool on, two processes, threads), ready when the block starts."""
    port = stack.free_port(28100)
    argv = [stack.VENV_BIN / "gunicorn", "insights_api.wsgi:application", "--bind", f"127.0.0.1:{port}",
            "--workers", "2", "--threads", "32", "--no-control-socket", "--timeout", "120"]  # fmt: skip
    with stack.service(
        "gunicorn", argv, log=scratch / "gunicorn.log", env={**os.environ, **env}, cwd=stack.ROOT
    ) as process:
        url = f"http://127.0.0.1:{port}"
        client = Client(url, key="")  # for /_health; the benchmarks use the world's key
        deadline = time.monotonic() + 60
        while True:
            try:
                if client.call("GET", "/_health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.exited():
                raise stack.StackError(f"gunicorn did not start:\n{stack.log_tail(scratch / 'gunicorn.log')}")
            time.sleep(0.1)
        yield Server(url, process.process.pid, client)


def _client(server: Server, world: World) -> Client:
    return Client(server.url, world.key)


# --- 1. viewed -------------------------------------------------------------------------------------


def bench_viewed(server: Server, world: World) -> list[Figure]:
    client, statements = _client(server, world), Statements(world.database_url)
    path, body = f"/api/projects/{world.project}/insights/viewed/", {"insight_ids": world.insights[:100]}
    per_request = statements.per_request(50, lambda: client.timed("POST", path, body, expect=201))
    latency = p50_ms(repeat(300, lambda: client.timed("POST", path, body, expect=201)))
    return [
        Figure("viewed, 100 ids: SQL statements per request", per_request, "", "≤ 3", per_request <= 3,
               "API key, project access, one upsert + insert"),
        Figure("viewed, 100 ids: p50 latency", latency, "ms", "≤ 15 ms", latency <= 15),
    ]  # fmt: skip


# --- 3. bulk_update_tags -----------------------------------------------------------------------------


def bench_bulk_update_tags(server: Server, world: World) -> list[Figure]:
    client, statements = _client(server, world), Statements(world.database_url)
    path = f"/api/projects/{world.project}/insights/bulk_update_tags/"
    rounds = iter(range(10**6))

    def tag(ids: list[int], tags: int) -> float:
        # Each call replaces every tag, so every call changes every insight (the costly case).
        n = next(rounds)
        return client.timed(
            "POST", path, {"ids": ids, "action": "set", "tags": [f"t{n}-{i}" for i in range(tags)]}
        )

    few = statements.per_request(5, lambda: tag(world.insights[:10], 1))
    many = statements.per_request(5, lambda: tag(world.insights, 5))
    busiest = statements.busiest()
    latency = p50_ms(repeat(15, lambda: tag(world.insights, 5)))
    return [
        Figure("bulk_update_tags: statements, 10 ids x 1 tag", few, "", "= 500 x 5", None),
        Figure("bulk_update_tags: statements, 500 ids x 5 tags", many, "", "= 10 x 1", many == few,
               "independent of ids and tags" if many == few else f"busiest: {busiest}"),
        Figure("bulk_update_tags, 500 ids x 5 tags: p50 latency", latency, "ms", "≤ 250 ms", latency <= 250),
    ]  # fmt: skip


# --- 2. trending -----------------------------------------------------------------------------------


def bench_trending(server: Server, world: World) -> list[Figure]:
    client, statements = _client(server, world), Statements(world.database_url)

    def path(project: int, limit: int) -> str:
        return f"/api/projects/{project}/insights/trending/?days=90&limit={limit}"

    small, large = [], []
    for _ in range(60):  # interleaved, so any drift of the machine hits both alike
        small.append(client.timed("GET", path(world.small, 10)))
        large.append(client.timed("GET", path(world.large, 10)))
    ratio = p50_ms(large[10:]) / p50_ms(small[10:])
    one = statements.per_request(10, lambda: client.timed("GET", path(world.large, 1)))
    hundred = statements.per_request(10, lambda: client.timed("GET", path(world.large, 100)))
    return [
        Figure("trending p50, 10k view events", p50_ms(small[10:]), "ms"),
        Figure("trending p50, 1M view events (90 days, rollups current)", p50_ms(large[10:]), "ms"),
        Figure("trending p50 ratio, 1M / 10k view events", ratio, "x", "≤ 1.5", ratio <= 1.5),
        Figure("trending statements per request, limit=1", one, "", "≤ 4", one <= 4),
        Figure("trending statements per request, limit=100", hundred, "", "≤ 4", hundred <= 4),
    ]


# --- 5 and 7. Trends engine against the floor; memory of generate_events ----------------------------

FLOOR_SQL = {
    "daily total": """
        SELECT date_trunc('day', timestamp AT TIME ZONE 'UTC'), count(*) FROM insights_event
        WHERE project_id = %(project)s AND event = '$pageview' AND timestamp >= %(start)s AND timestamp <= %(end)s
        GROUP BY 1""",
    "daily dau": """
        SELECT date_trunc('day', timestamp AT TIME ZONE 'UTC'), count(DISTINCT distinct_id) FROM insights_event
        WHERE project_id = %(project)s AND event = '$pageview' AND timestamp >= %(start)s AND timestamp <= %(end)s
        GROUP BY 1""",
    "daily total by browser (top 25 + other)": """
        WITH counted AS (
            SELECT date_trunc('day', timestamp AT TIME ZONE 'UTC') AS day, properties->>'$browser' AS browser,
                   count(*) AS n
            FROM insights_event
            WHERE project_id = %(project)s AND event = '$pageview' AND timestamp >= %(start)s AND timestamp <= %(end)s
            GROUP BY 1, 2
        ), top AS (SELECT browser FROM counted WHERE browser IS NOT NULL GROUP BY 1 ORDER BY sum(n) DESC LIMIT 25)
        SELECT day, CASE WHEN browser IS NULL THEN 'null' WHEN browser IN (SELECT browser FROM top) THEN browser
               ELSE 'other' END, sum(n)
        FROM counted GROUP BY 1, 2""",
}
ENGINE_QUERIES = {
    "daily total": TRENDS_30_DAYS,
    "daily dau": {**TRENDS_30_DAYS, "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}]},
    "daily total by browser (top 25 + other)": {
        **TRENDS_30_DAYS,
        "breakdownFilter": {"breakdown": "$browser"},
    },
}


def bench_trends_engine(scratch: Path, env: dict[str, str], world: World, *, events: int) -> list[Figure]:
    stack.say(f"bench: generating {events:,} events (the Trends benchmarks' data)")
    started = time.monotonic()
    generator = subprocess.Popen(
        [sys.executable, "manage.py", "generate_events", "--project", str(world.events_project), "--events",
         str(events), "--days", "30", "--seed", "1"],
        cwd=stack.ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    _, status, usage = os.wait4(generator.pid, 0)
    if status != 0:
        raise stack.StackError("generate_events failed")
    generated_in = time.monotonic() - started
    with psycopg.connect(world.database_url, autocommit=True) as connection:
        stack.say("bench: VACUUM ANALYZE (visibility map for index-only scans, statistics)")
        connection.execute("VACUUM ANALYZE insights_event")
    now = datetime.now(UTC)
    figures = [
        Figure(f"generate_events --events {events:,}: peak RSS", usage.ru_maxrss / 1024, "MB", "bounded", None,
               f"{generated_in:.0f} s, {events / generated_in:,.0f} events/s"),
    ]  # fmt: skip
    for name, query in ENGINE_QUERIES.items():
        node = query_parse(query)
        window = trends_window(node, tz=ZoneInfo("UTC"), now=now, first_event=None)
        engine_sql, engine_params = trends_sql(node, project_id=world.events_project, window=window)
        floor_params = {"project": world.events_project, "start": window.start, "end": window.end}
        engine, floor = _alternate(
            world.database_url, (engine_sql, engine_params), (FLOOR_SQL[name], floor_params)
        )
        ratio = engine / floor
        figures.append(Figure(f"Trends {name}, 30 days: engine / hand-written SQL", ratio, "x", "≤ 1.2",
                              ratio <= 1.2, f"{engine:.2f} s vs {floor:.2f} s"))  # fmt: skip
        if name == "daily total":
            figures.append(Figure("Trends 30-day daily total", engine, "s", "≤ 2 s", engine <= 2))
    return figures


def _alternate(
    database_url: str, first: tuple[str, dict], second: tuple[str, dict], runs: int = 5
) -> tuple[float, float]:
    """Median seconds of each statement, run alternately (after one warm-up each) on one connection."""
    timings: tuple[list[float], list[float]] = ([], [])
    with psycopg.connect(database_url, autocommit=True) as connection:
        for run in range(runs + 1):
            for index, (sql, params) in enumerate((first, second)):
                started = time.perf_counter()
                connection.execute(sql, params).fetchall()
                if run:
                    timings[index].append(time.perf_counter() - started)
    return statistics.median(timings[0]), statistics.median(timings[1])


# --- 4. coalescing -----------------------------------------------------------------------------------


def bench_coalescing(server: Server, world: World, *, coalescing: bool) -> list[Figure]:
    client, statements = _client(server, world), Statements(world.database_url)
    path = f"/api/projects/{world.events_project}/insights/{world.busy_insight}/"
    single = statistics.median(
        repeat(3, lambda: client.timed("GET", f"{path}?refresh=force_blocking"), warmup=1)
    )
    burst = Burst(client, 50)
    try:
        # The warm-up burst computes nothing (`force_cache`) but opens what a server in steady state
        # has open: the callers' connections, and the database pool's and Redis's for 50 requests.
        burst.send("GET", f"{path}?refresh=force_cache")
        executions_before = statements.calls_matching("%date_trunc%insights_event%")
        cpu_before = cpu_seconds(process_tree(server.pid))
        wall, statuses = burst.send("GET", f"{path}?refresh=force_blocking")
        cpu = cpu_seconds(process_tree(server.pid)) - cpu_before
        executions = statements.calls_matching("%date_trunc%insights_event%") - executions_before
    finally:
        burst.close()
    answers = ", ".join(f"{count} x {status}" for status, count in sorted(Counter(statuses).items()))
    label = "on" if coalescing else "off"
    figures = [
        Figure(f"coalescing {label}: 50 identical requests, query executions completed", executions, "",
               "= 1" if coalescing else "", executions == 1 if coalescing else None, f"answers: {answers}" + ("" if coalescing else " (400s: the statement timeout, 50 copies sharing 2 cores)")),
        Figure(f"coalescing {label}: wall time / one request", wall / single, "x", "≤ 1.2" if coalescing else "",
               wall / single <= 1.2 if coalescing else None,
               f"{wall:.2f} s vs {single:.2f} s; the 50 requests' own handling: {cpu:.2f} CPU-s in gunicorn"),
    ]  # fmt: skip
    return figures


# --- 6 and 7. Throughput of a mixed read workload; memory of a web worker ------------------------------

WRK_SCRIPT = """
local paths = {%s}
local counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", paths[(counter %% #paths) + 1], {["Authorization"] = "Bearer %s"})
end
"""


def bench_throughput(server: Server, world: World, postgres_pid: int) -> list[Figure]:
    client = _client(server, world)
    insight = world.insights[0]
    paths = [
        f"/api/projects/{world.project}/insights/?limit=20",
        f"/api/projects/{world.project}/insights/{insight}/",  # cached result after the first
        f"/api/projects/{world.large}/insights/trending/?days=30",
        f"/api/projects/{world.project}/insights/my_last_viewed/",
    ]
    for path in paths:
        client.timed("GET", path)
    wrk = shutil.which("wrk") or _install_wrk()
    if wrk is None:
        return [Figure("mixed read throughput", 0, "req/s", "measured", None, "wrk unavailable (not root)")]
    script = Path(f"/tmp/insights-bench-{os.getpid()}.lua")
    script.write_text(WRK_SCRIPT % (", ".join(f'"{path}"' for path in paths), world.key))
    web_pids, pg_pids = process_tree(server.pid), process_tree(postgres_pid)
    web_before, pg_before = cpu_seconds(web_pids), cpu_seconds(pg_pids)
    output = subprocess.run(
        [wrk, "-t2", "-c16", "-d20s", "-s", str(script), server.url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()
    web_cpu, pg_cpu = cpu_seconds(web_pids) - web_before, cpu_seconds(pg_pids) - pg_before
    rate = float(next(line.split()[1] for line in output.splitlines() if line.startswith("Requests/sec")))
    errors = [line.strip() for line in output.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    worker_rss = max(peak_rss_mb(pid) for pid in web_pids if pid != server.pid)
    share = web_cpu / (web_cpu + pg_cpu) * 100 if web_cpu + pg_cpu else 0
    return [
        Figure("mixed read throughput (list, retrieve cached, trending, my_last_viewed)", rate, "req/s", "measured",
               None, f"wrk 2 threads, 16 connections, 20 s; CPU: gunicorn {share:.0f}%, PostgreSQL {100 - share:.0f}%"
               + (f"; {'; '.join(errors)}" if errors else "")),
        Figure("gunicorn worker peak RSS under the mixed load", worker_rss, "MB", "measured", None),
    ]  # fmt: skip


def _install_wrk() -> str | None:
    if not stack.IS_ROOT:
        return None
    stack.say("bench: installing wrk")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], capture_output=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})  # fmt: skip
    return shutil.which("wrk")
