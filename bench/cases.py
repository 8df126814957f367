"""The benchmarks of issue 5. Each returns Figures; bench/run.py sets up Django and the services."""

from __future__ import annotations

import contextlib
import math
import os
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
from accounts.services import installation_bootstrap, personal_api_key_create
from bench import isolation
from bench.clickhouse import bench_trends_both
from bench.measure import (
    Client,
    Figure,
    Statements,
    cpu_seconds,
    p50_ms,
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
    second_key: str  # a key of another member of the organization
    events_b: int  # a second project, filled with a copy of the events project's last week


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
                _VIEWS_SQL,
                {"project": project.id, "views": views, "users": [u.id for u in viewers], "days": 90},
            )
    stack.say("bench: rolling views up")
    views_rollup()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as analyzer:
        analyzer.execute("VACUUM ANALYZE")  # what autovacuum does in steady state: fresh statistics
    events_b = Project.objects.create(organization=organization, name="events-b")
    second_key = personal_api_key_create(user=viewers[0], label="bench", scopes=["*"])
    return World(
        database_url=os.environ["DATABASE_URL"], key=setup.api_key.secret, project=setup.project.id,
        insights=[insight.id for insight in insights], small=small.id, large=large.id,
        events_project=events.id, second_key=second_key.secret, events_b=events_b.id,
    )  # fmt: skip


# Random views over the last `days` days (the first insights the most viewed), then each user's latest
# view per insight and each insight's latest view, as `viewed` writes them.
_VIEWS_SQL = """
WITH ids AS (SELECT array_agg(id ORDER BY id) AS insights FROM insights_insight WHERE project_id = %(project)s),
generated AS (
    INSERT INTO viewtracking_viewevent (project_id, insight_id, user_id, viewed_at)
    SELECT %(project)s,
           ids.insights[1 + floor(power(random(), 2) * array_length(ids.insights, 1))::int],
           (%(users)s::bigint[])[1 + floor(random() * cardinality(%(users)s::bigint[]))::int],
           now() - random() * make_interval(days => %(days)s)
    FROM ids, generate_series(1, %(views)s)
    RETURNING id, insight_id, user_id, viewed_at
), latest AS (
    INSERT INTO viewtracking_insightlastview (insight_id, project_id, last_viewed_at)
    SELECT insight_id, %(project)s, max(viewed_at) FROM generated GROUP BY insight_id
), queued AS (
    INSERT INTO viewtracking_pendingview (event_id, project_id, insight_id, viewed_at)
    SELECT id, %(project)s, insight_id, viewed_at FROM generated
)
INSERT INTO viewtracking_insightviewed (project_id, insight_id, user_id, last_viewed_at)
SELECT %(project)s, insight_id, user_id, max(viewed_at) FROM generated GROUP BY insight_id, user_id
"""


@contextlib.contextmanager
def web(services: stack.ServiceStack, scratch: Path, env: dict[str, str]) -> Iterator[Server]:
    """The service as `make run` runs it: gunicorn (two gevent processes, pool on) and a query worker
    of QUERY_WORKER_CONCURRENCY (default 2) processes; ready when the block starts."""
    port = stack.free_port(28100)
    environment = {**os.environ, **env}
    concurrency = environment.get("QUERY_WORKER_CONCURRENCY", "2")
    argv = [stack.VENV_BIN / "gunicorn", "--config", stack.ROOT / "insights_api" / "gunicorn.conf.py",
            "insights_api.wsgi:application", "--bind", f"127.0.0.1:{port}", "--timeout", "120"]  # fmt: skip
    worker = [stack.VENV_BIN / "celery", "-A", "insights_api", "worker", "--queues", "queries", "--concurrency",
              concurrency, "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    with (
        stack.service("query worker", worker, log=scratch / "query-worker.log",
                      env={**environment, "DATABASE_POOL": "false"}, cwd=stack.ROOT),
        stack.service("gunicorn", argv, log=scratch / "gunicorn.log", env=environment, cwd=stack.ROOT) as process,
    ):  # fmt: skip
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
               "API key with project access, one upsert + insert"),
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


# --- Usage analytics (issue 24) ----------------------------------------------------------------------

USAGE_INSIGHTS = 10_000
USAGE_VIEWS = {"10k": 10_000, "1M": 1_000_000}


@dataclass
class UsageWorld:
    database_url: str
    key: str
    projects: dict[str, int]  # by size of its view events: "10k", "1M"
    top_insight: dict[str, int]  # the most viewed insight of each


def usage_world() -> UsageWorld:
    """Two projects of 10,000 insights each, viewed 10,000 and 1,000,000 times by 50 users over a year
    (the first insights the most), rolled up as the rollup leaves them."""
    from django.db import connection

    with connection.cursor() as cursor:  # a year of views at once takes longer than a request may
        cursor.execute("SET statement_timeout = 0")
    setup = installation_bootstrap(
        email="bench@example.com", password=None, organization_name="Bench", project_name="bench",
        scopes=["*"], ai_approved=False, project_scoped=False,
    )  # fmt: skip
    viewers = User.objects.bulk_create([User(email=f"usage-viewer{n}@bench.test") for n in range(VIEWERS)])
    OrganizationMembership.objects.bulk_create(
        [OrganizationMembership(organization=setup.organization, user=u) for u in viewers]
    )
    projects, top = {}, {}
    for size, views in USAGE_VIEWS.items():
        project = Project.objects.create(organization=setup.organization, name=f"usage {size}")
        created = Insight.objects.bulk_create(
            [Insight(project=project, name=f"U{n}", query=TRENDS_30_DAYS, created_by=setup.user)
             for n in range(USAGE_INSIGHTS)]
        )  # fmt: skip
        stack.say(f"bench: {views:,} view events over 365 days on {USAGE_INSIGHTS:,} insights")
        with connection.cursor() as cursor:
            cursor.execute(
                _VIEWS_SQL,
                {"project": project.id, "views": views, "users": [u.id for u in viewers], "days": 365},
            )
        projects[size], top[size] = project.id, min(insight.id for insight in created)
    stack.say("bench: rolling views up")
    views_rollup()
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as analyzer:
        analyzer.execute("VACUUM ANALYZE")
    return UsageWorld(os.environ["DATABASE_URL"], setup.api_key.secret, projects, top)


def bench_usage(server: Server, world: UsageWorld) -> list[Figure]:
    """`views` of the most viewed insight over 365 days, `usage` over 30 days and the list of insights
    not viewed in 90 days, at 10k and 1M view events: p50s, their ratio, statements per request."""
    client, statements = Client(server.url, world.key), Statements(world.database_url)
    paths = {
        "views, one insight, 365 days": lambda size: (
            f"/api/projects/{world.projects[size]}/insights/{world.top_insight[size]}/views/?date_from=-365d"
        ),
        "usage, 30 days": lambda size: f"/api/projects/{world.projects[size]}/insights/usage/?days=30",
        "list not_viewed_in_days=90": lambda size: (
            f"/api/projects/{world.projects[size]}/insights/?not_viewed_in_days=90&basic=true"
        ),
        # What the filter adds to: the same list of 10,000 insights without it.
        "list, no filter": lambda size: f"/api/projects/{world.projects[size]}/insights/?basic=true",
    }
    figures = []
    for name, path in paths.items():
        small, large = [], []
        for _ in range(50):  # interleaved, so any drift of the machine hits both alike
            small.append(client.timed("GET", path("10k")))
            large.append(client.timed("GET", path("1M")))
        ratio = p50_ms(large[10:]) / p50_ms(small[10:])
        few = statements.per_request(5, lambda: client.timed("GET", path("10k")))  # noqa: B023
        many = statements.per_request(5, lambda: client.timed("GET", path("1M")))  # noqa: B023
        figures += [
            Figure(f"{name}: p50, 10k view events", p50_ms(small[10:]), "ms"),
            Figure(f"{name}: p50, 1M view events", p50_ms(large[10:]), "ms", "≤ 50 ms", p50_ms(large[10:]) <= 50,
                   f"{USAGE_INSIGHTS:,} insights"),
            Figure(f"{name}: p50 ratio, 1M / 10k view events", ratio, "x", "≤ 2", ratio <= 2),
            # At most the 10k figure: a page short of `limit` needs no COUNT (docs/insights.md).
            Figure(f"{name}: statements per request, 1M / 10k", many, "", f"≤ {few:g}", many <= few),
        ]  # fmt: skip
    return figures


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


def trends_world() -> World:
    """Only what the Trends benchmarks need (`--trends`): a user, its key and the events project."""
    setup = installation_bootstrap(
        email="bench@example.com", password=None, organization_name="Bench", project_name="bench",
        scopes=["*"], ai_approved=False, project_scoped=False,
    )  # fmt: skip
    events = Project.objects.create(organization=setup.organization, name="events")
    return World(
        database_url=os.environ["DATABASE_URL"], key=setup.api_key.secret, project=setup.project.id, insights=[],
        small=0, large=0, events_project=events.id, second_key="", events_b=0,
    )  # fmt: skip


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
    # The same queries (and a breakdown of distinct users) on ClickHouse, over the same rows.
    both = {**ENGINE_QUERIES, "daily dau by browser (top 25 + other)": {
        **ENGINE_QUERIES["daily dau"], "breakdownFilter": {"breakdown": "$browser"}}}  # fmt: skip
    return figures + bench_trends_both(world.database_url, world.events_project, both, events=events)


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


# --- Workload isolation (issue 11) ---------------------------------------------------------------------

# The slow query of the isolation benchmarks: distinct users per day by browser over the last week
# (about three million of the ten million events, as in issue 11's measurements).
ISOLATION_DAYS = 7
# What the same scenarios did before the query lane, on the same data (bench/alternatives.md, its
# first row: `bench/run.py --alternatives` measures it again).
BEFORE = {
    "crowd": "before the lane: 20 executions, 19.9x",
    "storm": "before the lane: 20 x 200; the other project's list p95 3.9x, slowest 41.1 s",
}


def copy_recent_events(database_url: str, *, source: int, target: int, days: int) -> int:
    """The second heavy project: a copy of the source project's last `days` days of events."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        copied = connection.execute(
            "INSERT INTO insights_event (project_id, timestamp, event, distinct_id, properties) "
            "SELECT %s, timestamp, event, distinct_id, properties FROM insights_event "
            "WHERE project_id = %s AND timestamp >= now() - make_interval(days => %s)",
            [target, source, days + 1],
        ).rowcount
        connection.execute("VACUUM ANALYZE insights_event")
    return copied


def bench_isolation(
    services: stack.ServiceStack, scratch: Path, env: dict[str, str], world: World
) -> list[Figure]:
    stack.say("bench: a second project with heavy data (a copy of the last week)")
    copied = copy_recent_events(
        world.database_url, source=world.events_project, target=world.events_b, days=ISOLATION_DAYS
    )
    statements = Statements(world.database_url)
    with web(services, scratch, env) as server:
        lister = isolation.Lister(
            Client(server.url, world.second_key), f"/api/projects/{world.project}/insights/?limit=5"
        )
        lister.run_for(2)  # warm-up
        idle = isolation.p95(lister.run_for(10))
        crowds = []
        for size in (200, 1000):
            stack.say(f"bench: {size} identical slow queries at once, while another project lists insights")
            crowds.append(isolation.crowd(
                server.url, [world.key, world.second_key], world.events_project, size=size, days=ISOLATION_DAYS,
                executions=lambda: statements.calls_matching(isolation.EXECUTION_PATTERN),
                cpu=lambda: cpu_seconds(server.pid), lister=lister,
            ))  # fmt: skip
        stack.say("bench: 20 different slow queries at once while another project lists insights")
        storm = isolation.storm(
            server.url, world.key, world.events_project, days=ISOLATION_DAYS, lister_key=world.second_key,
            lister_project=world.project,
        )  # fmt: skip
        stack.say("bench: two projects' slow queries at once")
        two = isolation.two_projects(
            server.url, (world.key, world.events_project), (world.key, world.events_b), days=ISOLATION_DAYS
        )
    loaded_ms, idle_ms, slowest_ms = storm.load_p95 * 1000, storm.idle_p95 * 1000, storm.load_max * 1000
    return [
        *[figure for crowd in crowds for figure in _crowd_figures(crowd, idle)],
        Figure("storm: 20 different slow queries of one project at once, answers", storm.wall, "s",
               "200, or 429 with Retry-After", storm.only_200_or_429,
               f"{isolation.statuses(storm.answers)} in {storm.wall:.1f} s; {BEFORE['storm']}"),
        Figure("storm: another project's list, p95 loaded / idle", storm.ratio, "x", "≤ 5", storm.ratio <= 5,
               f"{loaded_ms:.0f} ms vs {idle_ms:.0f} ms" + _failed(storm.lister_failures)),
        Figure("storm: another project's slowest list", slowest_ms, "ms", "≤ 1000 ms",
               slowest_ms <= 1000 and not storm.lister_failures),
        Figure("two projects' slow queries at once: both make progress", max(two.first_answers), "s",
               "both answered early", two.both_progress,
               f"{two.summary()}; the second project holds {copied:,} events"),
    ]  # fmt: skip


def _crowd_figures(crowd: isolation.CrowdResult, idle: float) -> list[Figure]:
    """A crowd's executions, its wall time against one run, and another project's list meanwhile."""
    size = f"crowd of {crowd.size}"
    loaded, slowest = isolation.p95(crowd.listed), max(crowd.listed, default=math.nan)
    return [
        Figure(f"{size} identical force_blocking queries from two users: executions", crowd.executions, "",
               "= 1", crowd.executions == 1 and crowd.all_ok,
               f"answers: {isolation.statuses(crowd.answers)}" + (f"; {BEFORE['crowd']}" if crowd.size == 200 else "")),
        Figure(f"{size}: wall time / one run", crowd.ratio, "x", "≤ 1.2", crowd.ratio <= 1.2,
               f"{crowd.wall:.2f} s vs {crowd.single:.2f} s; the requests' own handling: "
               f"{crowd.cpu:.2f} CPU-s in gunicorn"),
        Figure(f"{size}: another project's list, p95 loaded / idle", loaded / idle, "x", "≤ 5",
               loaded / idle <= 5 and not crowd.lister_failures,
               f"{loaded * 1000:.0f} ms vs {idle * 1000:.0f} ms idle, {len(crowd.listed)} lists" + _failed(crowd.lister_failures)),
        Figure(f"{size}: another project's slowest list", slowest * 1000, "ms", "≤ 250 ms",
               slowest <= 0.25 and not crowd.lister_failures),
    ]  # fmt: skip


def _failed(failures: Counter) -> str:
    return "; failed: " + ", ".join(f"{n} x {s}" for s, n in sorted(failures.items())) if failures else ""
