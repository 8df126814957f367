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

from insights.trends import USER_KEY, json_text

EVENTS_TABLE = "events"
MIGRATIONS_TABLE = "schema_migrations"
# The columns every insert writes, in order.
EVENT_COLUMNS = ("project_id", "timestamp", "event", "distinct_id", "properties")


# Properties whose text is also kept in a column of its own, computed at insert from `properties` by
# the very expression the Trends dialect would use (so results cannot differ): breakdowns and filters on
# them read a small column instead of parsing every event's JSON (PostHog's materialized columns).
# They are what PostHog's web SDK sends with every event.
MATERIALIZED_PROPERTIES = {
    "$browser": "mat_browser",
    "$os": "mat_os",
    "$device_type": "mat_device_type",
    "$current_url": "mat_current_url",
    "$pathname": "mat_pathname",
    "$referring_domain": "mat_referring_domain",
    "$geoip_country_code": "mat_geoip_country_code",
    "$session_id": "mat_session_id",
}


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]  # `{db}` stands for the database


def _materialize(name: str, column: str) -> tuple[str, ...]:
    """A property's text column, filled for new events at insert and for old ones by a mutation (until
    it has run, ClickHouse computes the column of an old part when it reads it)."""
    assert "'" not in name and "\\" not in name  # a literal of ours, never input
    return (
        f"ALTER TABLE {{db}}.events ADD COLUMN IF NOT EXISTS {column} LowCardinality(Nullable(String)) "
        f"MATERIALIZED {json_text('properties', repr(name))}",
        f"ALTER TABLE {{db}}.events MATERIALIZE COLUMN {column}",
    )


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
    Migration(
        2,
        "events: the text of the properties every web event carries, in columns of their own",
        tuple(
            statement
            for name, column in MATERIALIZED_PROPERTIES.items()
            for statement in _materialize(name, column)
        ),
    ),
    Migration(
        3,
        "events: each user's id as a 128-bit hash, so distinct-user counts hash numbers, not strings",
        (
            f"ALTER TABLE {{db}}.events ADD COLUMN IF NOT EXISTS {USER_KEY} UInt128 "
            "MATERIALIZED reinterpretAsUInt128(sipHash128(distinct_id))",
            f"ALTER TABLE {{db}}.events MATERIALIZE COLUMN {USER_KEY}",
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
