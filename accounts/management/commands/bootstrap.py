"""`manage.py bootstrap`: the first user, organization, project and API key of an installation."""

from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from accounts.models import OrganizationMembership
from accounts.scopes import invalid_scopes
from accounts.services import installation_bootstrap
from infra.command_options import CommandOptions

LEVELS = {label: value for value, label in OrganizationMembership.Level.choices}


class Command(BaseCommand):
    help = (
        "Create (or reuse, by email and by name) a user, organization, project and membership (owner "
        "of an organization the user creates, member of one they join, unless --level says otherwise), "
        "issue a new personal API key, and print them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True)
        parser.add_argument("--password", help="Set (or reset) the user's password for session login.")
        parser.add_argument("--organization", default="Default organization")
        parser.add_argument("--project", default="Default project")
        parser.add_argument(
            "--scopes", default="*", help="Comma-separated, e.g. 'insight:read,insight:write'."
        )
        parser.add_argument(
            "--ai-approved", action="store_true", help="Approve AI data processing for the organization."
        )
        parser.add_argument("--project-scoped", action="store_true", help="Limit the key to this project.")
        parser.add_argument(
            "--level",
            choices=[label for _, label in OrganizationMembership.Level.choices],
            help="The user's membership level (default: owner of an organization they create, else member).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object (for scripts).")

    def handle(self, *args: object, **options: object) -> None:
        read = CommandOptions(options)
        email, raw_scopes, level = read.text("email"), read.text("scopes"), read.text_or_none("level")
        try:
            validate_email(email)
        except ValidationError:
            raise CommandError(f"{email!r} is not an email address.") from None
        scopes = [scope.strip() for scope in raw_scopes.split(",") if scope.strip()]
        if not scopes or invalid_scopes(scopes):
            raise CommandError(f"Invalid scopes {raw_scopes!r}; use '*', 'insight:read' or 'insight:write'.")
        names = {name: read.text(name) for name in ("organization", "project")}
        for name, value in names.items():
            if not value.strip() or len(value) > 200:
                raise CommandError(f"--{name} must be 1 to 200 characters.")

        result = installation_bootstrap(
            email=email,
            password=read.text_or_none("password"),
            organization_name=names["organization"].strip(),
            project_name=names["project"].strip(),
            scopes=scopes,
            ai_approved=read.flag("ai_approved"),
            project_scoped=read.flag("project_scoped"),
            level=LEVELS[level] if level else None,
        )
        payload = {
            "user": {"id": result.user.id, "email": result.user.email},
            "organization": {"id": result.organization.id, "name": result.organization.name},
            "project": {"id": result.project.id, "name": result.project.name},
            "api_key": result.api_key.secret,
        }
        if read.flag("json"):
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(
            f"user          {result.user.email} (id {result.user.id})\n"
            f"organization  {result.organization.name} (id {result.organization.id})\n"
            f"project       {result.project.name} (id {result.project.id})\n"
            f"api key       {result.api_key.secret}   (shown once; scopes: {', '.join(scopes)})"
        )
