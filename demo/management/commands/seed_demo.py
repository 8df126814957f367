"""`manage.py seed_demo --project ID [--events N] [--days D] [--seed S]`: the demo data of `make run`."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from tqdm import tqdm

from accounts.models import OrganizationMembership, Project
from demo.data import demo_seed
from infra.command_options import CommandOptions
from insights.models import Insight

T = TypeVar("T")


class Command(BaseCommand):
    help = (
        "Fill an empty project with demo data: synthetic events, teammates, dashboards, tagged "
        "insights over those events, two weeks of views (rolled up) and some edit history."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--project", type=int, required=True, help="An empty project (no insights yet).")
        parser.add_argument(
            "--events", type=int, default=50_000, metavar="N", help="Synthetic events (default 50000)."
        )
        parser.add_argument("--days", type=int, default=30, metavar="D", help="Spread over the last D days.")
        parser.add_argument("--seed", type=int, default=7, metavar="S", help="Random seed.")

    def handle(self, *args: object, **options: object) -> None:
        read = CommandOptions(options)
        project_id, events, days = read.number("project"), read.number("events"), read.number("days")
        project = Project.objects.select_related("organization").filter(id=project_id).first()
        if project is None:
            raise CommandError(f"Project {project_id} does not exist.")
        if Insight.objects.filter(project=project).exists():
            raise CommandError(f"Project {project.id} already has insights; seed an empty one.")
        owner = (
            OrganizationMembership.objects.filter(organization=project.organization)
            .order_by("-level", "joined_at")
            .select_related("user")
            .first()
        )
        if owner is None:
            raise CommandError(f"Project {project.id}'s organization has no members to own the demo data.")
        if events < 0 or days < 1:
            raise CommandError("--events must be at least 0 and --days at least 1.")

        started = time.monotonic()
        with transaction.atomic():  # all of it or nothing: a failed seed leaves the project empty
            seeded = demo_seed(
                project=project,
                owner=owner.user,
                events=events,
                days=days,
                seed=read.number("seed"),
                progress=_bar,
            )
        self.stdout.write(
            f"Demo data in project {project.id} in {time.monotonic() - started:.1f}s: {seeded.events} events, "
            f"{len(seeded.insights)} insights, {len(seeded.users)} people, {seeded.views} views."
        )


def _bar(items: Iterable[T], description: str, total: int) -> Iterable[T]:
    return tqdm(
        items, desc=f"{description:>8}", total=total, unit="", file=sys.stderr, mininterval=0.3, leave=True
    )
