"""`manage.py load_events --project ID FILE`: bulk-load JSON Lines events (docs/operations.md)."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from typing import BinaryIO

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from accounts.models import Project
from infra.command_options import CommandOptions
from insights import events_store
from insights.event_streams import events_from_jsonl
from insights.management.event_loading import copy_and_summarise, project_or_error


class Command(BaseCommand):
    help = (
        "Load JSON Lines events ({event, distinct_id, timestamp, properties}, one per line) into a "
        "project, in the events store (PostgreSQL's COPY, or ClickHouse in batches). All or nothing: "
        "a bad line loads nothing and names the line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="Id of the project to load into.")
        parser.add_argument("file", metavar="FILE", help="A JSON Lines file, or '-' for standard input.")

    def handle(self, *args: object, **options: object) -> None:
        read = CommandOptions(options)
        project = project_or_error(read.number("project"))
        path = read.text("file")
        if path == "-":
            self._load(project=project, stream=sys.stdin.buffer, source="stdin")
            return
        with _open(path) as stream:
            self._load(project=project, stream=stream, source=path)

    def _load(self, *, project: Project, stream: BinaryIO, source: str) -> None:
        with tqdm(
            total=_size(stream), unit="B", unit_scale=True, desc="Loading", file=sys.stderr, mininterval=0.5
        ) as bar:
            copy_and_summarise(
                project=project,
                rows=events_from_jsonl(_lines(stream, bar), timestamps=events_store.timestamp_range()),
                source=source,
                stdout=self.stdout,
            )


def _open(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror}.") from None


def _lines(stream: BinaryIO, bar: tqdm) -> Iterator[str]:
    """The stream's lines as text, counting bytes on the progress bar. Bytes that are not UTF-8
    become lone surrogates, which the parser refuses with the line's number (a decoding error here
    could not name the line)."""
    for raw in stream:
        bar.update(len(raw))
        yield raw.decode("utf-8", "surrogateescape")


def _size(stream: BinaryIO) -> int | None:
    """The bytes left to read if the stream is a regular file; a pipe's total is unknown."""
    try:
        status = os.fstat(stream.fileno())
        return status.st_size - stream.tell() if stat.S_ISREG(status.st_mode) else None
    except (OSError, ValueError):  # io.UnsupportedOperation is both
        return None
