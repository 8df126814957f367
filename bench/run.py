"""`make bench`: the benchmarks of issues 5, 11 and 15, side by side in one run, written to BENCHMARKS.md.

A private PostgreSQL (with pg_stat_statements, to count statements from the database's side) and
Redis are started in a scratch directory, the service runs under gunicorn as `make run` runs it
(psycopg pool on), and every figure is a ratio, a statement count, or a latency measured in this
same run next to what it is compared with. Takes about ten minutes on two cores; most of it is
generating and indexing ten million events. `--usage` runs only the usage analytics benchmarks (a
million view events on 10,000 insights), into bench/usage.md. `make bench ARGS=--reads` measures only the read
throughput (bench/reads.py) on the same setup, in about two minutes, into bench/reads.md. The Trends
benchmarks run on PostgreSQL and, side by side on the same events, on ClickHouse (an embedded chDB
database served by its owner process, as `make run` serves it); `--trends` runs only those, into
bench/trends.md (`--trends --events 300000` takes a minute or two). `--writers` measures the three ways
to write a page of insights (issue 23) on a world of its own, into bench/writers.md (two minutes or so).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT))

import stack  # noqa: E402  (scripts/stack.py: starts and stops the services)

from bench.measure import Figure  # noqa: E402

if TYPE_CHECKING:
    from bench.cases import World

PG_SETTINGS = [
    "shared_preload_libraries=pg_stat_statements",
    "pg_stat_statements.track_utility=off",  # count the queries, not BEGIN/COMMIT/SET
    "shared_buffers=1GB",
    "work_mem=64MB",
    "maintenance_work_mem=512MB",
    "max_wal_size=4GB",
    "jit=off",  # JIT compile time would blur one-second comparisons
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="events for the Trends benchmarks")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument(
        "--alternatives",
        action="store_true",
        help="measure the designs compared for workload isolation instead (writes bench/alternatives.md)",
    )
    parser.add_argument(
        "--trends",
        action="store_true",
        help="only the Trends benchmarks, PostgreSQL beside ClickHouse (writes bench/trends.md)",
    )
    parser.add_argument(
        "--reads",
        action="store_true",
        help="measure only the read throughput, without the events (writes bench/reads.md, about two minutes)",
    )
    parser.add_argument(
        "--usage",
        action="store_true",
        help="only the usage analytics benchmarks (views, usage, not_viewed_in_days), into bench/usage.md",
    )
    parser.add_argument(
        "--isolation",
        action="store_true",
        help="only the workload isolation benchmarks (crowds, storm, two projects), into bench/isolation.md",
    )
    parser.add_argument(
        "--writers",
        action="store_true",
        help="only the three ways to write a page of insights, side by side (writes bench/writers.md)",
    )
    options = parser.parse_args()
    started = time.monotonic()
    with stack.ServiceStack() as services:
        scratch = Path(tempfile.mkdtemp(prefix="insights-bench-", dir="/tmp"))
        services.callback(shutil.rmtree, scratch, ignore_errors=True)
        scratch.chmod(0o711 if stack.IS_ROOT else 0o700)
        bindir = stack.system_postgres_bindir() or stack.install_system_postgres()
        pg = services.enter_context(
            stack.postgres_cluster(bindir, scratch / "pg", 25500, durable=False, settings=PG_SETTINGS)
        )
        stack.create_database(pg, "bench")
        redis = services.enter_context(stack.redis_server(scratch / "redis", 26500))
        clickhouse_url = "" if options.writers else start_chdb_owner(services, scratch)
        env = {
            "DATABASE_URL": pg.url("bench"),
            "REDIS_URL": redis.url(0),
            "CELERY_BROKER_URL": redis.url(1),
            "CELERY_RESULT_BACKEND": redis.url(2),
            "SECRET_KEY": "benchmarks-only",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            # Budgets far above what the load generators send: throttling is not what is measured.
            "THROTTLE_BURST": "100000000/minute",
            "THROTTLE_SUSTAINED": "100000000/hour",
            "DATABASE_POOL_MAX_SIZE": "40",
            "LOG_LEVEL": "warning",
            "CLICKHOUSE_URL": clickhouse_url,
            "CLICKHOUSE_DATABASE": "bench",
        }
        os.environ.update(env)
        os.environ["DJANGO_SETTINGS_MODULE"] = "insights_api.settings"
        import django

        django.setup()
        from bench import cases, reads  # need Django set up

        stack.say("bench: migrating and preparing data")
        cases.prepare_database(pg.url("bench"))
        if options.trends:
            figures = cases.bench_trends_engine(scratch, env, cases.trends_world(), events=options.events)
            report = render(figures, minutes=(time.monotonic() - started) / 60, postgres=pg.version,
                            events=options.events, title="Trends on PostgreSQL and ClickHouse", with_findings=False)  # fmt: skip
            print(report)
            TRENDS.write_text(report)
            print(f"written to {TRENDS}")
            return 0 if all(figure.met is not False for figure in figures) else 1
        if options.writers:
            return writers_only(started, postgres=pg.version)
        if options.usage:
            figures = usage_only(services, scratch, env)
            report = render(figures, minutes=(time.monotonic() - started) / 60, postgres=pg.version, events=0,
                            title="Usage analytics", with_findings=False)  # fmt: skip
            print(report)
            USAGE.write_text(report)
            print(f"written to {USAGE}")
            return 0 if all(figure.met is not False for figure in figures) else 1
        world = cases.build_world()
        pids = {"postgres_pid": pg.pid, "redis_pid": redis.service.process.pid}
        if options.reads:
            return reads_only(services, scratch, env, world, pids, started=started)
        figures: list[Figure] = []
        if options.isolation:  # the events first: the crowds' slow query reads them
            figures = cases.bench_trends_engine(scratch, env, world, events=options.events)
            figures += cases.bench_isolation(services, scratch, env, world)
            minutes = (time.monotonic() - started) / 60
            report = render(figures, minutes=minutes, postgres=pg.version, events=options.events)
            print(report)
            ISOLATION.write_text(report)
            print(f"written to {ISOLATION}")
            return 0 if all(figure.met is not False for figure in figures) else 1
        with cases.web(services, scratch, env) as server:
            figures += cases.bench_viewed(server, world)
            figures += cases.bench_bulk_update_tags(server, world)
            figures += cases.bench_trending(server, world)
        figures += cases.bench_trends_engine(scratch, env, world, events=options.events)
        if options.alternatives:
            from bench import alternatives

            table = alternatives.compare(services, scratch, env, world, days=cases.ISOLATION_DAYS)
            ALTERNATIVES.write_text(alternatives_report(table, minutes=(time.monotonic() - started) / 60))
            print(table)
            print(f"written to {ALTERNATIVES}")
            return 0
        figures += cases.bench_isolation(services, scratch, env, world)
        with cases.web(services, scratch, env) as server:
            figures += reads.bench_reads(server, world, **pids)
        figures += usage_only(services, scratch, env)
        minutes = (time.monotonic() - started) / 60
        report = render(figures, minutes=minutes, postgres=pg.version, events=options.events)
    print(report)
    options.output.write_text(report)
    print(f"written to {options.output}")
    return 0 if all(figure.met is not False for figure in figures) else 1


ALTERNATIVES = ROOT / "bench" / "alternatives.md"
TRENDS = ROOT / "bench" / "trends.md"
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through an http_proxy


def start_chdb_owner(services: stack.ServiceStack, scratch: Path) -> str:
    """The embedded ClickHouse of the Trends benchmarks, served as `make run` serves it; its URL."""
    port = stack.free_port(28123)
    argv = [stack.VENV_BIN / "python", "-m", "insights.events_store.chdb_server", "--path", scratch / "chdb",
            "--port", str(port)]  # fmt: skip
    owner = services.enter_context(
        stack.service("chDB owner", argv, log=scratch / "chdb.log", cwd=stack.ROOT)
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with LOCAL.open(f"http://127.0.0.1:{port}/ping", timeout=1) as answer:
                if answer.status == 200:
                    return f"http://127.0.0.1:{port}"
        except OSError:
            pass
        if owner.exited() or time.monotonic() > deadline:
            raise stack.StackError(f"the chDB owner did not start:\n{stack.log_tail(scratch / 'chdb.log')}")
        time.sleep(0.1)


READS = ROOT / "bench" / "reads.md"
USAGE = ROOT / "bench" / "usage.md"


def usage_only(services: stack.ServiceStack, scratch: Path, env: dict[str, str]) -> list[Figure]:
    """The usage analytics benchmarks, on a world of their own (two projects of 10,000 insights)."""
    from bench import cases

    world = cases.usage_world()
    with cases.web(services, scratch, env) as server:
        return cases.bench_usage(server, world)


ISOLATION = ROOT / "bench" / "isolation.md"
WRITERS = ROOT / "bench" / "writers.md"


def writers_only(started: float, *, postgres: str) -> int:
    """`--writers`: the three ways to write a page of insights, measured in this process."""
    from bench import writers

    header = (
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/run.py --writers`: {os.cpu_count()} CPUs "
        f"({_cpu_model()}), Python {platform.python_version()}, PostgreSQL {postgres} and Redis as in `make bench`"
    )
    report, as_decided = writers.bench_writers(header, started)
    print(report)
    WRITERS.write_text(report)
    print(f"written to {WRITERS}")
    return 0 if as_decided else 1


def reads_only(
    services: stack.ServiceStack,
    scratch: Path,
    env: dict[str, str],
    world: World,
    pids: dict[str, int],
    *,
    started: float,
) -> int:
    """`--reads`: the read throughput alone, the quick loop for work on it; BENCHMARKS.md untouched."""
    from bench import cases, reads

    with cases.web(services, scratch, env) as server:
        measured = reads.measure(server, world, **pids)
    if measured is None:
        raise stack.StackError("wrk is missing and only root can install it here: apt-get install wrk")
    minutes = (time.monotonic() - started) / 60
    report = reads_report(reads.table(measured), minutes=minutes, seconds=reads.SECONDS)
    print(report)
    READS.write_text(report)
    print(f"written to {READS}")
    return 0 if all(figure.met is not False for figure in reads.figures(measured)) else 1


def reads_report(table: str, *, minutes: float, seconds: int) -> str:
    return "\n".join(
        [
            "# Read throughput",
            "",
            f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/run.py --reads` ({minutes:.1f} minutes): "
            f"{os.cpu_count()} CPUs ({_cpu_model()}), PostgreSQL and Redis as in `make bench`, the same "
            f"world without the events. wrk, 2 threads and 16 connections, {seconds} s on each route "
            "in turn, against one gunicorn (two gevent processes), /_health first and last; `of /_health` "
            "divides by the mean of its two runs. CPU per request: CPU seconds of each process tree (the "
            "postmaster's with its backends) over the run, divided by the requests wrk completed. Cores "
            "busy: all of them over the run's wall time.",
            "",
            table,
            "",
        ]
    )


def alternatives_report(table: str, *, minutes: float) -> str:
    return "\n".join(
        [
            "# Workload isolation: the designs measured",
            "",
            f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `bench/run.py --alternatives` ({minutes:.1f} "
            f"minutes): {os.cpu_count()} CPUs ({_cpu_model()}), PostgreSQL and Redis as in `make bench`, the "
            "same data (the slow query: distinct users per day by browser over a week of ten million "
            "events). The crowd: 200 identical `force_blocking` runs from two users at once. The storm: "
            "20 different slow queries of one project at once while another project's user lists "
            "insights every 100 ms. Mixed reads: wrk over list, cached retrieve, trending and "
            "my_last_viewed. bench/FINDINGS.md says what the table decided.",
            "",
            table,
            "",
        ]
    )


def render(
    figures: list[Figure],
    *,
    minutes: float,
    postgres: str,
    events: int,
    title: str = "Benchmarks",
    with_findings: bool = True,
) -> str:
    cpu = _cpu_model()
    lines = [
        f"# {title}",
        "",
        f"Run on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `make bench` ({minutes:.1f} minutes): "
        f"{os.cpu_count()} CPUs ({cpu}), {_memory_gb():.0f} GB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, PostgreSQL {postgres}; "
        f"{events:,} generated events. Every figure below was measured in this one run, next to what it "
        "is compared with; latencies are medians (p50) of sequential requests through gunicorn.",
        "",
        "| Benchmark | Value | Target | Met | Notes |",
        "|---|---|---|---|---|",
    ]
    for figure in figures:
        met = "—" if figure.met is None else ("yes" if figure.met else "**no**")
        lines.append(
            f"| {figure.name} | {figure.shown()} {figure.unit} | {figure.target} | {met} | {figure.note} |"
        )
    lines += [
        "",
        "Reproduce with `make bench` on a clean clone (it needs only what `make test` needs). "
        "`.venv/bin/python bench/run.py --events 1000000` runs a shorter version; `make bench ARGS=--reads` "
        "measures the read throughput alone (about two minutes, into bench/reads.md); `--trends` the Trends "
        "engine alone on both stores (into bench/trends.md). ClickHouse is chDB embedded in its owner process, "
        'reached over ClickHouse\'s HTTP interface as the service reaches it; targets marked "at 10M" are '
        "judged only at ten million events (smaller runs check only that both stores give the same results).",
        "",
    ]
    if with_findings:
        lines.append((ROOT / "bench" / "FINDINGS.md").read_text())
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (stack.StackError, subprocess.CalledProcessError) as error:
        stack.warn(str(error))
        sys.exit(1)
