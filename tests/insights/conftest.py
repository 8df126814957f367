"""Fixtures of the live insights tests."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from django.utils import timezone

# Sleeps a twentieth of a second per event, for ever: a query over it runs until it is stopped.
SLOW_EVENTS = """
CREATE OR REPLACE VIEW {db}.events AS
SELECT toInt64({project}) AS project_id, toDateTime64('{hour_ago}', 6, 'UTC') AS timestamp, '$pageview' AS event,
       toString(number) AS distinct_id, toUInt128(number) AS user_key, '{{}}' AS properties{materialized}
FROM numbers(1000000000) WHERE sleepEachRow(0.05) = 0 SETTINGS max_block_size = 1
"""


@pytest.fixture
def slow_store(clickhouse, settings, project):
    """Events of `project` that take for ever to read, in a database of their own."""
    settings.CLICKHOUSE_DATABASE = f"slow_{project.id}"
    clickhouse_command(f"CREATE DATABASE IF NOT EXISTS {settings.CLICKHOUSE_DATABASE}")
    hour_ago = (timezone.now() - timedelta(hours=1)).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    from insights.events_store.schema import MATERIALIZED_PROPERTIES

    materialized = "".join(
        f", CAST(NULL AS Nullable(String)) AS {column}" for column in MATERIALIZED_PROPERTIES.values()
    )
    clickhouse_command(
        SLOW_EVENTS.format(
            db=settings.CLICKHOUSE_DATABASE, project=project.id, hour_ago=hour_ago, materialized=materialized
        )
    )
    return project


def clickhouse_command(sql: str) -> None:
    from insights.events_store import clickhouse as store

    store.client().command(sql)
