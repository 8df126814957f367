"""Events in ClickHouse, through clickhouse-connect (docs/events-store.md).

`CLICKHOUSE_URL` names a ClickHouse server (or cluster endpoint), or the embedded chDB database that
`make run` serves from one process (`chdb_server.py`): either way this module speaks ClickHouse's
HTTP interface, with one client per process (thread-safe: no HTTP session is used).

- A Trends query runs with `query_id` and `log_comment` set to its run id and
  `max_execution_time` from QUERY_TIMEOUT_MS. `query_stop` kills it by that id (`KILL QUERY`;
  the embedded database matches the log comment, chDB naming queries itself).
- A store that does not answer, or has no events table yet, is EventsStoreUnavailable (503).
- Writes go to a staging table in batches; only when every row was accepted are its partitions
  attached to the events table, so a bad row loads nothing, as PostgreSQL's one COPY.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from zoneinfo import ZoneInfo

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError, DatabaseError, OperationalError
from django.conf import settings

from accounts.models import Project
from infra.json_types import JSONObject
from insights.event_streams import EventRow
from insights.events_store.errors import EventsRefused, EventsStoreUnavailable, QueryCancelled, QueryTimedOut
from insights.events_store.schema import (
    EVENT_COLUMNS,
    EVENTS_TABLE,
    MATERIALIZED_PROPERTIES,
    MIGRATIONS,
    bootstrap_statements,
)
from insights.query_nodes import TrendsQuery
from insights.trends import (
    ClickHouseDialect,
    Param,
    UnsupportedQuery,
    breakdown_key,
    bucket_start,
    trends_compile,
    trends_shape,
    trends_window,
)

logger = logging.getLogger(__name__)

# What DateTime64(6, 'UTC') holds.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2299, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
# ClickHouse's error codes this module answers for.
TIMEOUT_EXCEEDED, QUERY_WAS_CANCELLED, CANNOT_COMPILE_REGEXP = 159, 394, 427
UNKNOWN_TABLE, UNKNOWN_DATABASE = 60, 81
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PARTITION_ID = re.compile(r"^[0-9]+$")

_clients: dict[tuple[int, str], Client] = {}
_clients_lock = threading.Lock()


def client() -> Client:
    """This process's client for CLICKHOUSE_URL (a forked child makes its own)."""
    url = settings.CLICKHOUSE_URL
    if not url:
        raise EventsStoreUnavailable(
            "EVENTS_BACKEND is clickhouse but CLICKHOUSE_URL is not set (`make run` sets it to the "
            "embedded database it serves)."
        )
    key = (os.getpid(), url)
    with _clients_lock:
        if key not in _clients:
            try:
                _clients[key] = clickhouse_connect.get_client(
                    dsn=url,
                    autogenerate_session_id=False,  # no session: one client serves every thread
                    connect_timeout=settings.CLICKHOUSE_CONNECT_TIMEOUT_SECONDS,
                    send_receive_timeout=settings.QUERY_TIMEOUT_MS / 1000 + 30,
                    query_retries=0,
                )
            except ClickHouseError as error:
                raise _unavailable(error) from error
        return _clients[key]


def database() -> str:
    name: str = settings.CLICKHOUSE_DATABASE
    if not IDENTIFIER.match(name):
        raise ValueError(f"CLICKHOUSE_DATABASE={name!r} is not a plain identifier.")
    return name


def events_table() -> str:
    return f"{database()}.{EVENTS_TABLE}"


# --- Trends ------------------------------------------------------------------------------------------


def trends_compute(
    *, project: Project, source: TrendsQuery, now: datetime, run_id: str | None
) -> list[JSONObject]:
    return trends_run(source, project_id=project.id, tz=ZoneInfo(project.timezone), now=now, run_id=run_id)


def trends_run(
    query: TrendsQuery, *, project_id: int, tz: ZoneInfo, now: datetime, run_id: str | None = None
) -> list[JSONObject]:
    """What `insights.trends.trends_run` is on PostgreSQL, on ClickHouse: the same window, the same
    statement in ClickHouse's dialect, the same shaping."""
    query_id = run_id or uuid.uuid4().hex
    first_event = None
    if query.dateRange and query.dateRange.date_from == "all":
        first_event = _first_event(project_id)
    window = trends_window(query, tz=tz, now=now, first_event=first_event)
    dialect = ClickHouseDialect(events_table(), MATERIALIZED_PROPERTIES)
    sql = trends_compile(query, project_id=project_id, window=window, dialect=dialect)
    query_settings: dict[str, str | float] = {
        "query_id": query_id,
        "log_comment": query_id,
        "max_execution_time": settings.QUERY_TIMEOUT_MS / 1000,
        "timeout_overflow_mode": "throw",
        # toDate32, toMonday and toStartOfMonth over the whole DateTime64 range, not only to 2149.
        "enable_extended_results_for_datetime_functions": 1,
    }
    rows = _query(sql, dialect.values, query_settings)
    shaped = [(series, bucket_start(bucket), breakdown, value) for series, bucket, breakdown, value in rows]
    return trends_shape(query, window=window, rows=shaped, broken_down=breakdown_key(query) is not None)


def _first_event(project_id: int) -> datetime | None:
    [(first,)] = _query(
        f"SELECT minOrNull(timestamp) FROM {events_table()} WHERE project_id = {{project:Int64}}",
        {"project": project_id},
        {},
    )
    if first is None:
        return None
    return first.replace(tzinfo=UTC) if first.tzinfo is None else first.astimezone(UTC)  # a naive one is UTC


def _query(
    sql: str, parameters: dict[str, Param], query_settings: dict[str, str | float]
) -> list[tuple[Any, ...]]:
    try:
        return [
            tuple(row)
            for row in client().query(sql, parameters=parameters, settings=query_settings).result_rows
        ]
    except DatabaseError as error:
        raise _query_error(error) or error from error
    except OperationalError as error:
        raise _unavailable(error) from error


def _query_error(error: DatabaseError) -> Exception | None:
    """The domain error a ClickHouse error means, if it means one."""
    code = getattr(error, "code", None)
    if code == TIMEOUT_EXCEEDED:
        return QueryTimedOut()
    if code == QUERY_WAS_CANCELLED:
        return QueryCancelled()
    if code == CANNOT_COMPILE_REGEXP:
        return UnsupportedQuery(
            "invalid_property_filter", "A regex property filter is not a valid RE2 pattern."
        )
    if code in (UNKNOWN_TABLE, UNKNOWN_DATABASE):
        return EventsStoreUnavailable(
            "ClickHouse has no events table yet: run `manage.py events_store_migrate`."
        )
    return None


def _unavailable(error: Exception) -> EventsStoreUnavailable:
    logger.warning("ClickHouse unavailable: %s", error)
    return EventsStoreUnavailable("ClickHouse, where events are kept, does not answer; try again shortly.")


def query_stop(run_id: str) -> bool:
    """KILL the query running for this run, on whichever server of the cluster runs it. True if one was."""
    try:
        killed = (
            client()
            .query(
                "KILL QUERY WHERE query_id = {id:String} OR Settings['log_comment'] = {id:String} ASYNC",
                parameters={"id": run_id},
            )
            .result_rows
        )
    except (ClickHouseError, EventsStoreUnavailable) as error:
        logger.warning("Could not stop ClickHouse query %s: %s", run_id, error)
        return False
    # One row per query killed (kill_status, query_id, user, query); none when nothing ran.
    return any(len(row) > 1 for row in killed)


# --- Writes ------------------------------------------------------------------------------------------


def timestamp_range() -> tuple[datetime, datetime]:
    return EARLIEST, LATEST


def events_write(*, project_id: int, rows: Iterable[EventRow]) -> int:
    """Append `rows` in batches of CLICKHOUSE_INSERT_BATCH, all or nothing: the batches go to a staging
    table, whose partitions are attached to the events table once every row was accepted. Memory is
    one batch, however many rows there are."""
    staging = f"{database()}.events_loading_{uuid.uuid4().hex}"
    _command(f"CREATE TABLE {staging} AS {events_table()}")
    try:
        count = 0
        for batch in _batches(rows, settings.CLICKHOUSE_INSERT_BATCH):
            values = [_row_values(project_id, row) for row in batch]
            try:
                client().insert(staging, values, column_names=list(EVENT_COLUMNS))
            except DatabaseError as error:
                raise EventsRefused(f"ClickHouse refused the data ({error})") from error
            except OperationalError as error:
                raise _unavailable(error) from error
            count += len(values)
        for (partition,) in _query(
            "SELECT DISTINCT partition_id FROM system.parts WHERE database = {db:String} "
            "AND table = {table:String} AND active",
            {"db": database(), "table": staging.split(".", 1)[1]},
            {},
        ):
            if not PARTITION_ID.match(partition):
                raise ValueError(f"Unexpected partition id {partition!r}")
            _command(f"ALTER TABLE {events_table()} ATTACH PARTITION ID '{partition}' FROM {staging}")
        return count
    finally:
        try:
            _command(f"DROP TABLE IF EXISTS {staging}")
        except EventsStoreUnavailable:
            logger.warning("Could not drop the staging table %s", staging)


def _row_values(project_id: int, row: EventRow) -> list[object]:
    if row.timestamp.tzinfo is None:
        raise ValueError(f"Event timestamps must be aware, got {row.timestamp.isoformat()}.")
    if not EARLIEST <= row.timestamp <= LATEST:
        raise EventsRefused(
            f"Event timestamp {row.timestamp.isoformat()} is outside what ClickHouse holds (1900-2299)."
        )
    return [project_id, row.timestamp, row.event, row.distinct_id, properties_json(row.properties)]


def properties_json(properties: JSONObject) -> str:
    """The properties as the JSON text PostgreSQL's jsonb is given (psycopg's `json.dumps`)."""
    return json.dumps(properties, ensure_ascii=False)


def _batches(rows: Iterable[EventRow], size: int) -> Iterator[list[EventRow]]:
    iterator = iter(rows)
    while batch := list(islice(iterator, size)):
        yield batch


def _command(sql: str) -> None:
    try:
        client().command(sql)
    except DatabaseError as error:
        raise _query_error(error) or error from error
    except OperationalError as error:
        raise _unavailable(error) from error


# --- Schema ------------------------------------------------------------------------------------------


def schema_migrate() -> list[str]:
    """Apply the migrations not applied yet (schema.py); returns their descriptions."""
    db = database()
    for statement in bootstrap_statements(db):
        _command(statement)
    applied = {version for (version,) in _query(f"SELECT version FROM {db}.schema_migrations", {}, {})}
    done = []
    for migration in MIGRATIONS:
        if migration.version in applied:
            continue
        for statement in migration.statements:
            _command(statement.replace("{db}", db))
        try:
            client().insert(
                f"{db}.schema_migrations",
                [[migration.version, migration.description]],
                column_names=["version", "description"],
            )
        except OperationalError as error:
            raise _unavailable(error) from error
        done.append(f"{migration.version}: {migration.description}")
    return done


def events_count(*, project_id: int) -> int:
    [(count,)] = _query(
        f"SELECT count() FROM {events_table()} WHERE project_id = {{project:Int64}}",
        {"project": project_id},
        {},
    )
    return int(count)
