"""How a request proves who it is: a personal API key (Bearer) or a session cookie with CSRF."""

from __future__ import annotations

import hmac

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import PersonalAPIKey, User
from accounts.services import API_KEY_LOOKUP_LENGTH, api_key_digest, personal_api_key_touch

INVALID_KEY = "Invalid personal API key."


class PersonalAPIKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`. On success `request.auth` is the PersonalAPIKey row."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, PersonalAPIKey] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <personal API key>'.")
        try:
            raw_key = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(INVALID_KEY) from None
        key = (
            PersonalAPIKey.objects.select_related("user")
            .filter(prefix=raw_key[:API_KEY_LOOKUP_LENGTH])
            .first()
        )
        # Compare digests in constant time; a miss on the prefix still costs one digest comparison.
        expected = key.secure_value if key is not None else "0" * 64
        if not hmac.compare_digest(expected, api_key_digest(raw_key)) or key is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        if not key.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        personal_api_key_touch(key=key, resolution_seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """Django's session, with CSRF enforced on unsafe methods (DRF's behaviour)."""
