"""`manage.py revoke_api_key (--prefix P | --key K | --email E --all)`."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import PersonalAPIKey
from accounts.services import API_KEY_LOOKUP_LENGTH, personal_api_keys_revoke
from infra.command_options import CommandOptions


class Command(BaseCommand):
    help = (
        "Revoke personal API keys: one by its prefix (the first 12 characters, as list_api_keys shows) "
        "or by the whole key, or every key of a user. A revoked key is answered 401 from then on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--prefix", help="The key's prefix, e.g. ins_AbCd1234.")
        which.add_argument("--key", help="The whole key (when you still have it).")
        which.add_argument("--email", help="With --all: every key of this user.")
        parser.add_argument("--all", action="store_true", help="Required with --email.")

    def handle(self, *args: object, **options: object) -> None:
        read = CommandOptions(options)
        email = read.text_or_none("email")
        if email:
            if not read.flag("all"):
                raise CommandError("--email revokes every key of the user; add --all to confirm.")
            keys = PersonalAPIKey.objects.filter(user__email__iexact=email.strip())
        else:
            raw = (read.text_or_none("prefix") or read.text_or_none("key") or "").strip()
            if len(raw) < API_KEY_LOOKUP_LENGTH:
                raise CommandError(f"A prefix is the first {API_KEY_LOOKUP_LENGTH} characters of the key.")
            keys = PersonalAPIKey.objects.filter(prefix=raw[:API_KEY_LOOKUP_LENGTH])
        revoked = personal_api_keys_revoke(keys=keys)
        if not revoked:
            raise CommandError("No such key.")
        for prefix in revoked:
            self.stdout.write(f"revoked {prefix}")
