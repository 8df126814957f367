"""The ClickHouse schema of the events store, as numbered migrations (`manage.py events_store_migrate`).

The events table follows PostHog's `sharded_events` in what matters to Trends: a MergeTree
partitioned by month (old months are dropped or moved whole), sorted by what every Trends query
filters on, in that order: the project, the event name, the day, then the user (so distinct-user
counts read each user's rows together). `properties` is the event's JSON text, compressed hard: it is
most of the bytes and is read only for the keys a query names.

A migration is applied once and recorded in `schema_migrations`; each statement is idempotent, so a
migration interrupted half-way is simply run again.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENTS_TABLE = "events"
MIGRATIONS_TABLE = "schema_migrations"
# The columns every insert writes, in order.
EVENT_COLUMNS = ("project_id", "timestamp", "event", "distinct_id", "properties")


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]  # `{db}` is the database


MIGRATIONS = (
    Migration(
        1,
        "events: a MergeTree partitioned by month, ordered by project, event, day and user",
        (
            """
            CREATE TABLE IF NOT EXISTS {db}.events (
                project_id Int64,
                timestamp DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
                event LowCardinality(String),
                distinct_id String,
                properties String CODEC(ZSTD(3))
            )
            ENGINE = MergeTree
            PARTITION BY toYYYYMM(timestamp)
            ORDER BY (project_id, event, toDate(timestamp), cityHash64(distinct_id))
            """,
        ),
    ),
)


def bootstrap_statements(db: str) -> list[str]:
    """What must exist before any migration can be recorded."""
    return [
        f"CREATE DATABASE IF NOT EXISTS {db}",
        f"CREATE TABLE IF NOT EXISTS {db}.{MIGRATIONS_TABLE} (version UInt32, description String, "
        "applied_at DateTime DEFAULT now()) ENGINE = MergeTree ORDER BY version",
    ]
