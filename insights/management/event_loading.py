"""What `load_events` and `generate_events` share: the project check, the write to the events store
(PostgreSQL's COPY, or ClickHouse's batches) and its summary."""

from __future__ import annotations

import time
from collections.abc import Iterable

from django.conf import settings
from django.core.management.base import CommandError, OutputWrapper
from django.db import DataError

from accounts.models import Project
from insights import events_store
from insights.event_streams import BadEventLine, EventRow


def project_or_error(project_id: int) -> Project:
    try:
        return Project.objects.get(id=project_id)
    except Project.DoesNotExist:
        raise CommandError(f"Project {project_id} does not exist.") from None


def copy_and_summarise(
    *, project: Project, rows: Iterable[EventRow], source: str, stdout: OutputWrapper
) -> None:
    """Load `rows` into the project, all or nothing, and print one summary line. A bad input line or a
    value the store refuses becomes a CommandError, and then nothing has been loaded."""
    started = time.monotonic()
    try:
        count = events_store.events_write(project_id=project.id, rows=rows)
    except BadEventLine as error:
        raise CommandError(f"{source}, {error}. Nothing was loaded.") from None
    except DataError as error:
        raise CommandError(f"{source}: PostgreSQL refused the data ({error}). Nothing was loaded.") from None
    except events_store.EventsRefused as error:
        raise CommandError(f"{source}: {error}. Nothing was loaded.") from None
    except events_store.EventsStoreUnavailable as error:
        raise CommandError(f"{error.detail} ({settings.CLICKHOUSE_URL or 'no CLICKHOUSE_URL'})") from None
    elapsed = time.monotonic() - started
    rate = count / elapsed if elapsed > 0 else 0.0
    stdout.write(f"Loaded {count} events into project {project.id} in {elapsed:.1f} s ({rate:.0f} events/s)")
