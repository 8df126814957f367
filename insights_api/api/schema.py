"""OpenAPI generation: the error envelope, API key security with scopes, and strict docs.

Every operation must carry an explicit summary and description (`@extend_schema`); the AutoSchema
here refuses to fall back to a docstring, so a mixin's docstring can never leak into the docs.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.drainage import warn
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

ErrorEnvelopeSerializer = inline_serializer(
    name="ErrorEnvelope",
    fields={
        "type": serializers.ChoiceField(
            choices=[
                "validation_error",
                "authentication_error",
                "invalid_request",
                "throttled_error",
                "server_error",
            ]
        ),
        "code": serializers.CharField(help_text="Machine-readable code, e.g. `invalid_input`, `not_found`."),
        "detail": serializers.CharField(help_text="A human-readable sentence."),
        "attr": serializers.CharField(
            allow_null=True, help_text="The offending field; nested paths use `__` (e.g. `ids__3`)."
        ),
    },
)


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(response=ErrorEnvelopeSerializer, description=description)


# The errors any authenticated operation can answer with.
ERROR_RESPONSES: dict[int, OpenApiResponse] = {
    400: _error("Invalid input (error envelope; `attr` names the field)."),
    401: _error("Missing or invalid credentials."),
    403: _error("Missing API key scope, a key limited to other projects, or CSRF failure."),
    404: _error("Not found, or not visible to the caller."),
    429: _error("Throttled; see the Retry-After header."),
}


class AutoSchema(openapi.AutoSchema):
    """Insists on explicit summaries and descriptions, and documents each operation's API key scope.

    `@extend_schema(summary=..., description=...)` overrides `get_summary`/`get_description`, so the
    methods below run only for an operation without them: they warn (which fails the schema test)
    instead of falling back to a docstring.
    """

    def get_summary(self) -> str | None:
        warn(f"{self._operation_name()} has no explicit summary")
        return None

    def get_description(self) -> str:
        warn(f"{self._operation_name()} has no explicit description")
        return ""

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        scope = self._required_scope()
        if operation is not None and scope is not None:
            operation["description"] = (
                f"{operation.get('description', '')}\n\nRequired API key scope: `{scope}`."
            )
            operation["x-required-scope"] = scope
            operation["security"] = [
                {
                    name: [scope] if name == PersonalAPIKeyAuthScheme.name else scopes
                    for name, scopes in item.items()
                }
                for item in operation.get("security", [])
            ]
        return operation

    def get_operation_id(self) -> str:
        # `<resource>_<action>` (insights_list, insights_bulk_update_tags): short, stable SDK names.
        basename, action = getattr(self.view, "basename", None), getattr(self.view, "action", None)
        return f"{basename}_{action}" if basename and action else super().get_operation_id()

    def _operation_name(self) -> str:
        return f"{self.view.__class__.__name__}.{getattr(self.view, 'action', None) or self.method.lower()}"

    def _required_scope(self) -> str | None:
        required_scope = getattr(self.view, "required_scope", None)
        return required_scope() if required_scope is not None else None


class PersonalAPIKeyAuthScheme(OpenApiAuthenticationExtension):
    target_class = "insights_api.api.authentication.PersonalAPIKeyAuthentication"
    name = "PersonalAPIKeyAuth"

    def get_security_definition(self, auto_schema: openapi.AutoSchema) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API key: `Authorization: Bearer ins_…`. Keys carry scopes.",
        }


class SessionAuthScheme(OpenApiAuthenticationExtension):
    target_class = "insights_api.api.authentication.SessionAuthentication"
    name = "SessionAuth"

    def get_security_definition(self, auto_schema: openapi.AutoSchema) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "A browser session from `POST /api/login/`; unsafe methods also need `X-CSRFToken`.",
        }
