"""`manage.py create_api_key --email E [--scopes S] [--projects IDS] [--label L] [--json]`."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Project, User
from accounts.scopes import VALID_SCOPES, invalid_scopes
from accounts.services import personal_api_key_create
from infra.command_options import CommandOptions


class Command(BaseCommand):
    help = (
        "Issue a personal API key to an existing user, with scopes and optionally limited to some of "
        "the user's projects. The key is printed once; only its digest is stored."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True, help="The user the key acts as.")
        parser.add_argument(
            "--scopes",
            default="*",
            help=f"Comma-separated, from: {', '.join(sorted(VALID_SCOPES))} (default '*').",
        )
        parser.add_argument(
            "--projects", default="", help="Comma-separated project ids the key is limited to (default: all)."
        )
        parser.add_argument("--label", default="manage.py create_api_key", help="A name to recognise it by.")
        parser.add_argument("--json", action="store_true", help="Print one JSON object (for scripts).")

    def handle(self, *args: object, **options: object) -> None:
        read = CommandOptions(options)
        email, raw_scopes, label = read.text("email"), read.text("scopes"), read.text("label")
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"No user with email {email!r} (create one with manage.py bootstrap).")
        scopes = [scope.strip() for scope in raw_scopes.split(",") if scope.strip()]
        if not scopes or invalid_scopes(scopes):
            raise CommandError(f"Invalid scopes {raw_scopes!r}; use {', '.join(sorted(VALID_SCOPES))}.")
        if not 1 <= len(label) <= 100:
            raise CommandError("--label must be 1 to 100 characters.")
        projects = self._projects(user, read.text("projects"))

        issued = personal_api_key_create(user=user, label=label, scopes=scopes, scoped_project_ids=projects)
        summary = {
            "id": issued.key.id,
            "prefix": issued.key.prefix,
            "user": user.email,
            "label": issued.key.label,
            "scopes": issued.key.scopes,
            "projects": projects,
            "api_key": issued.secret,
        }
        if read.flag("json"):
            self.stdout.write(json.dumps(summary))
            return
        self.stdout.write(
            f"api key   {issued.secret}   (shown once)\n"
            f"user      {user.email}\n"
            f"scopes    {', '.join(issued.key.scopes)}\n"
            f"projects  {', '.join(map(str, projects)) if projects is not None else 'all of the user'}\n"
            f"revoke    .venv/bin/python manage.py revoke_api_key --prefix {issued.key.prefix}"
        )

    @staticmethod
    def _projects(user: User, raw: str) -> list[int] | None:
        """The project ids, each one the user can reach (a limit to anything else would only hide it)."""
        if not raw.strip():
            return None
        try:
            wanted = sorted({int(part) for part in raw.split(",") if part.strip()})
        except ValueError:
            raise CommandError(f"--projects must be comma-separated project ids, not {raw!r}.") from None
        reachable = set(
            Project.objects.filter(id__in=wanted, organization__memberships__user=user).values_list(
                "id", flat=True
            )
        )
        unreachable = [project_id for project_id in wanted if project_id not in reachable]
        if unreachable or not wanted:
            raise CommandError(
                f"{user.email} is not a member of the organization of project(s) {unreachable or raw}."
            )
        return wanted
