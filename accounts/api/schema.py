"""How the OpenAPI schema describes the two ways to authenticate (accounts.api.authentication).
drf-spectacular finds these extensions by their target class once this module is imported
(InsightsApiConfig.ready, in the wiring); the classes are named by path, as importing them here would import DRF's
views while DRF's settings import the classes."""

from __future__ import annotations

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiAuthenticationExtension

from apikit.schema import SCOPED_AUTH_SCHEME


class PersonalAPIKeyAuthScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.PersonalAPIKeyAuthentication"
    name = SCOPED_AUTH_SCHEME

    def get_security_definition(self, auto_schema: openapi.AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API key: `Authorization: Bearer ins_…`. Keys carry scopes.",
        }


class SessionAuthScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.api.authentication.SessionAuthentication"
    name = "SessionAuth"

    def get_security_definition(self, auto_schema: openapi.AutoSchema) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "A browser session from `POST /api/login/`; unsafe methods also need `X-CSRFToken`.",
        }
