"""`manage.py generate_events --project ID --events N`: a synthetic event stream for demos (docs/operations.md)."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

from infra.command_options import CommandOptions
from insights.event_streams import events_generate
from insights.management.event_loading import copy_and_summarise, project_or_error


class Command(BaseCommand):
    help = (
        "Generate N realistic events ($pageview, $autocapture, $pageleave, purchase, user_signed_up) "
        "from a long-tailed population of users over the last D days, and load them into the events store. "
        "The same seed gives the same events (relative to now)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="Id of the project to load into.")
        parser.add_argument("--events", type=int, required=True, metavar="N", help="How many events.")
        parser.add_argument("--days", type=int, default=30, metavar="D", help="Spread over the last D days.")
        parser.add_argument("--seed", type=int, default=0, metavar="S", help="Random seed (default 0).")

    def handle(self, *args: object, **options: object) -> None:
        read = CommandOptions(options)
        events, days = read.number("events"), read.number("days")
        if events < 1:
            raise CommandError("--events must be at least 1.")
        if days < 1:
            raise CommandError("--days must be at least 1.")
        project = project_or_error(read.number("project"))
        rows = events_generate(count=events, days=days, seed=read.number("seed"), now=timezone.now())
        with tqdm(
            rows, total=events, unit=" events", unit_scale=True, file=sys.stderr, mininterval=0.5
        ) as progress:
            copy_and_summarise(project=project, rows=progress, source="generated events", stdout=self.stdout)
