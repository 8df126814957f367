"""`manage.py generate_events --project ID --events N`: a synthetic event stream for demos (docs/operations.md)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from tqdm import tqdm

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

    def handle(self, *args: Any, **options: Any) -> None:
        if options["events"] < 1:
            raise CommandError("--events must be at least 1.")
        if options["days"] < 1:
            raise CommandError("--days must be at least 1.")
        project = project_or_error(options["project"])
        rows = events_generate(
            count=options["events"], days=options["days"], seed=options["seed"], now=timezone.now()
        )
        with tqdm(
            rows, total=options["events"], unit=" events", unit_scale=True, file=sys.stderr, mininterval=0.5
        ) as progress:
            copy_and_summarise(project=project, rows=progress, source="generated events", stdout=self.stdout)
