"""`manage.py list_api_keys [--email E]`: the keys there are (never the secrets, which are not kept)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import PersonalAPIKey
from infra.command_options import CommandOptions


class Command(BaseCommand):
    help = "List personal API keys: prefix, user, label, scopes, project limit, created and last used."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", help="Only this user's keys.")

    def handle(self, *args: object, **options: object) -> None:
        email = CommandOptions(options).text_or_none("email")
        keys = PersonalAPIKey.objects.select_related("user").order_by("user__email", "created_at")
        if email:
            keys = keys.filter(user__email__iexact=email.strip())
        rows = [("PREFIX", "USER", "LABEL", "SCOPES", "PROJECTS", "CREATED", "LAST USED")]
        for key in keys:
            rows.append(
                (
                    key.prefix,
                    key.user.email,
                    key.label,
                    ",".join(key.scopes),
                    ",".join(map(str, key.scoped_project_ids))
                    if key.scoped_project_ids is not None
                    else "all",
                    f"{key.created_at:%Y-%m-%d %H:%M}",
                    f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never",
                )
            )
        widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            )
