"""`manage.py events_store_migrate`: create or migrate the events store's schema (docs/events-store.md)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from insights import events_store


class Command(BaseCommand):
    help = (
        "Create or migrate the ClickHouse events table (EVENTS_BACKEND=clickhouse); idempotent. "
        "With PostgreSQL, Django's `migrate` owns the events table and this does nothing."
    )

    def handle(self, *args: object, **options: object) -> None:
        if settings.EVENTS_BACKEND != "clickhouse":
            self.stdout.write("Events are in PostgreSQL: `manage.py migrate` owns their table.")
            return
        from insights.events_store import clickhouse  # only on a machine that keeps events there

        try:
            applied = clickhouse.schema_migrate()
        except events_store.EventsStoreUnavailable as error:
            raise CommandError(f"{error.detail} ({settings.CLICKHOUSE_URL or 'no CLICKHOUSE_URL'})") from None
        for description in applied:
            self.stdout.write(f"Applied {description}")
        self.stdout.write(f"ClickHouse events store {clickhouse.database()} is up to date.")
