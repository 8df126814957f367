"""How a request proves who it is: a personal API key (Bearer) or a session cookie with CSRF."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from django.conf import settings
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.models import PersonalAPIKey, UrlProject, User
from accounts.selectors import api_key_caller
from accounts.services import API_KEY_LOOKUP_LENGTH, api_key_digest, personal_api_key_touch
from apikit.fields import MAX_DB_ID

INVALID_KEY = "Invalid personal API key."


def url_project_id(request: Request) -> int | None:
    """The `{project_id}` of the URL, when it names a possible one."""
    raw = str((request.parser_context or {}).get("kwargs", {}).get("project_id", ""))
    return int(raw) if raw.isdigit() and int(raw) <= MAX_DB_ID else None


if TYPE_CHECKING:

    class AuthenticatedRequest(Request):
        """The request of a route that lets only authenticated callers in (IsAuthenticated, as every
        ProjectScopedViewSet route does), for annotations: its user is ours, its `auth` the API key
        it came with, or None for a session (the two authentications of the API)."""

        user: User
        auth: PersonalAPIKey | None

else:
    AuthenticatedRequest = Request  # DRF makes every request; this only names what its attributes hold


def request_user(request: Request) -> User:
    """The caller of a route that lets only authenticated users in (IsAuthenticated, the default)."""
    user = request.user
    assert isinstance(user, User), "an authenticated route"
    return user


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
        # The key, its user and their membership of the URL's project: one statement per request,
        # never cached, so a revoked key or a removed member is refused on the very next request.
        project_id = url_project_id(request)
        caller = api_key_caller(prefix=raw_key[:API_KEY_LOOKUP_LENGTH], project_id=project_id)
        key = caller.key if caller is not None else None
        # Compare digests in constant time; a miss on the prefix still costs one digest comparison.
        expected = key.secure_value if key is not None else "0" * 64
        if not hmac.compare_digest(expected, api_key_digest(raw_key)) or key is None or caller is None:
            raise exceptions.AuthenticationFailed(INVALID_KEY)
        if not key.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        personal_api_key_touch(key=key, resolution_seconds=settings.API_KEY_LAST_USED_RESOLUTION_SECONDS)
        key.url_project = UrlProject(id=project_id, project=caller.project)
        return key.user, key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class SessionAuthentication(authentication.SessionAuthentication):
    """Django's session, with CSRF enforced on unsafe methods (DRF's behaviour)."""
