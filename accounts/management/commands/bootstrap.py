"""`manage.py bootstrap`: the first user, organization, project and API key of an installation."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import validate_email

from accounts.models import OrganizationMembership
from accounts.scopes import invalid_scopes
from accounts.services import installation_bootstrap

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

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            validate_email(options["email"])
        except ValidationError:
            raise CommandError(f"{options['email']!r} is not an email address.") from None
        scopes = [scope.strip() for scope in options["scopes"].split(",") if scope.strip()]
        if not scopes or invalid_scopes(scopes):
            raise CommandError(
                f"Invalid scopes {options['scopes']!r}; use '*', 'insight:read' or 'insight:write'."
            )
        for name in ("organization", "project"):
            if not options[name].strip() or len(options[name]) > 200:
                raise CommandError(f"--{name} must be 1 to 200 characters.")

        result = installation_bootstrap(
            email=options["email"],
            password=options["password"],
            organization_name=options["organization"].strip(),
            project_name=options["project"].strip(),
            scopes=scopes,
            ai_approved=options["ai_approved"],
            project_scoped=options["project_scoped"],
            level=LEVELS[options["level"]] if options["level"] else None,
        )
        payload: dict[str, Any] = {
            "user": {"id": result.user.id, "email": result.user.email},
            "organization": {"id": result.organization.id, "name": result.organization.name},
            "project": {"id": result.project.id, "name": result.project.name},
            "api_key": result.api_key.secret,
        }
        if options["json"]:
            self.stdout.write(json.dumps(payload))
            return
        self.stdout.write(
            f"user          {payload['user']['email']} (id {payload['user']['id']})\n"
            f"organization  {payload['organization']['name']} (id {payload['organization']['id']})\n"
            f"project       {payload['project']['name']} (id {payload['project']['id']})\n"
            f"api key       {payload['api_key']}   (shown once; scopes: {', '.join(scopes)})"
        )
