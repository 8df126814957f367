"""`manage.py events_store_copy --project ID`: copy a project's events from PostgreSQL to ClickHouse (docs/events-store.md)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet
from tqdm import tqdm

from infra.command_options import CommandOptions
from insights.event_streams import EventRow
from insights.management.event_loading import copy_and_summarise, project_or_error
from insights.models import Event


class Command(BaseCommand):
    help = (
        "Copy a project's events from PostgreSQL's insights_event into the ClickHouse events store "
        "(EVENTS_BACKEND=clickhouse): how an installation moves its events. All or nothing; "
        "with --if-empty, only when ClickHouse has no events of that project yet."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="Id of the project to copy.")
        parser.add_argument(
            "--if-empty", action="store_true", help="Skip a project ClickHouse already has events of."
        )

    def handle(self, *args: object, **options: object) -> None:
        read = CommandOptions(options)
        if settings.EVENTS_BACKEND != "clickhouse":
            raise CommandError("EVENTS_BACKEND is postgres: the events are already there.")
        from insights.events_store import clickhouse  # only on a machine that keeps events there

        project = project_or_error(read.number("project"))
        if read.flag("if_empty") and clickhouse.events_count(project_id=project.id):
            self.stdout.write(f"ClickHouse already has events of project {project.id}; nothing copied.")
            return
        events = Event.objects.filter(project=project)
        with tqdm(
            _rows(events),
            total=events.count(),
            unit=" events",
            unit_scale=True,
            file=sys.stderr,
            mininterval=0.5,
        ) as progress:
            copy_and_summarise(project=project, rows=progress, source="PostgreSQL", stdout=self.stdout)


def _rows(events: QuerySet[Event]) -> Iterator[EventRow]:
    """The project's events, streamed from a server-side cursor (memory stays flat)."""
    for timestamp, event, distinct_id, properties in events.values_list(
        "timestamp", "event", "distinct_id", "properties"
    ).iterator(chunk_size=10_000):
        yield EventRow(timestamp, event, distinct_id, properties)
