"""The Trends benchmarks on ClickHouse beside PostgreSQL, in one run on the same events (issue 25).

The events `generate_events` wrote to PostgreSQL are copied into the embedded ClickHouse (chDB
reading PostgreSQL directly), so both stores hold the very same rows; each query then runs alternately
on both (one warm-up each, then the median of five), its statement as the engine compiles it for that
store, and the shaped results must be equal.
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import psycopg
import stack

from bench.measure import Figure
from insights.events_store import clickhouse
from insights.events_store.schema import MATERIALIZED_PROPERTIES
from insights.query_nodes import query_parse
from insights.trends import ClickHouseDialect, trends_compile, trends_run, trends_sql, trends_window

# (query name, ClickHouse target in seconds at ten million events, least PostgreSQL / ClickHouse ratio)
TARGETS = {
    "daily total": (0.15, None),
    "daily dau": (0.5, None),
    "daily total by browser (top 25 + other)": (None, 5.0),
    "daily dau by browser (top 25 + other)": (None, 5.0),
}
TARGET_EVENTS = 10_000_000  # the targets hold at this size; a smaller run is compared, not judged


def copy_to_clickhouse(database_url: str, project: int) -> tuple[int, float]:
    """Copy the project's events from PostgreSQL into ClickHouse; (rows, seconds)."""
    clickhouse.schema_migrate()
    url = urlsplit(database_url)
    started = time.monotonic()
    clickhouse.client().command(
        f"INSERT INTO {clickhouse.events_table()} (project_id, timestamp, event, distinct_id, properties) "
        "SELECT project_id, timestamp, event, distinct_id, properties FROM postgresql("
        "{host:String}, {database:String}, 'insights_event', {user:String}, '') WHERE project_id = {project:Int64}",
        parameters={"host": f"{url.hostname}:{url.port}", "database": url.path.lstrip("/"),
                    "user": url.username or "postgres", "project": project},
    )  # fmt: skip
    return clickhouse.events_count(project_id=project), time.monotonic() - started


def bench_trends_both(
    database_url: str, project: int, queries: dict[str, dict], *, events: int
) -> list[Figure]:
    stack.say("bench: copying the events into ClickHouse (embedded chDB)")
    copied, seconds = copy_to_clickhouse(database_url, project)
    figures = [Figure("ClickHouse: events copied from PostgreSQL", copied, "", "= PostgreSQL's", copied == events,
                      f"{seconds:.1f} s, {copied / max(seconds, 1e-9):,.0f} events/s")]  # fmt: skip
    now, utc = datetime.now(UTC), ZoneInfo("UTC")
    for name, query in queries.items():
        node = query_parse(query)
        window = trends_window(node, tz=utc, now=now, first_event=None)
        pg_sql, pg_params = trends_sql(node, project_id=project, window=window)
        dialect = ClickHouseDialect(clickhouse.events_table(), MATERIALIZED_PROPERTIES)
        ch_sql = trends_compile(node, project_id=project, window=window, dialect=dialect)
        postgres, on_clickhouse = _alternate(database_url, (pg_sql, pg_params), (ch_sql, dialect.values))
        same = _same_results(node, project, now)
        target, ratio_target = TARGETS.get(name, (None, None))
        judged = events >= TARGET_EVENTS
        ratio = postgres / on_clickhouse
        note = f"PostgreSQL {postgres * 1000:,.0f} ms vs ClickHouse {on_clickhouse * 1000:,.0f} ms; results {'identical' if same else 'DIFFER'}"
        if target is not None:
            figures.append(Figure(f"Trends {name}, 30 days, on ClickHouse", on_clickhouse, "s", f"≤ {target} s at 10M",
                                  (on_clickhouse <= target and same) if judged else same, note))  # fmt: skip
        figures.append(Figure(f"Trends {name}, 30 days: PostgreSQL / ClickHouse", ratio, "x",
                              f"≥ {ratio_target} at 10M" if ratio_target else "",
                              ((ratio >= ratio_target and same) if judged else same) if ratio_target else same, note))  # fmt: skip
    return figures


def _same_results(node, project: int, now: datetime) -> bool:
    from django.db import connection

    with connection.cursor():
        on_postgres = trends_run(node, project_id=project, tz=ZoneInfo("UTC"), now=now)
    return on_postgres == clickhouse.trends_run(node, project_id=project, tz=ZoneInfo("UTC"), now=now)


def _alternate(
    database_url: str, postgres: tuple[str, dict], on_clickhouse: tuple[str, dict], runs: int = 5
) -> tuple[float, float]:
    """Median seconds of each statement, run alternately after one warm-up each."""
    timings: tuple[list[float], list[float]] = ([], [])
    settings = {"enable_extended_results_for_datetime_functions": 1}
    with psycopg.connect(database_url, autocommit=True) as connection:
        for run in range(runs + 1):
            started = time.perf_counter()
            connection.execute(*postgres).fetchall()
            middle = time.perf_counter()
            clickhouse.client().query(on_clickhouse[0], parameters=on_clickhouse[1], settings=settings)
            ended = time.perf_counter()
            if run:
                timings[0].append(middle - started)
                timings[1].append(ended - middle)
    return statistics.median(timings[0]), statistics.median(timings[1])
