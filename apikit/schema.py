"""OpenAPI generation: the error envelope, every status code an operation can answer, in JSON and
in CSV, response headers, API key security with scopes, and strict docs.

Every operation must carry an explicit summary and description (`@extend_schema`); the AutoSchema
here refuses to fall back to a docstring, so a mixin's docstring can never leak into the docs.
Views declare their success responses (and any error with a meaning of its own); the errors that the
shared plumbing produces are added here, per operation, from what the operation is:

| status | when | which operations |
|---|---|---|
| 400 | invalid body or query parameters | those with a request body or query parameters |
| 401 | missing or invalid credentials | all but login (there: wrong email or password) |
| 403 | API key scope, key limited to other projects, CSRF | all that need credentials |
| 404 | project (or object) not visible | those under /api/projects/ |
| 406 | unknown `?format=` | all |
| 413, 415 | body too large, body not JSON | those with a request body |
| 429 | throttled (`Retry-After`) | all |
| 414 | request line over 4094 bytes (gunicorn answers, in the envelope too) | all |
| 503 | PostgreSQL or Redis unreachable | all |

Any method an operation does not list (DELETE on an insight, say) answers 405.
"""

from __future__ import annotations

import json
import keyword
import re
from typing import Any

from drf_spectacular import openapi
from drf_spectacular.drainage import warn
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse, inline_serializer
from rest_framework import serializers

from apikit.renderers import ENVELOPE
from infra.json_types import JSONObject

ERROR_TYPES = [
    "validation_error",
    "authentication_error",
    "invalid_request",
    "throttled_error",
    "server_error",
]

ErrorEnvelopeSerializer = inline_serializer(
    name="ErrorEnvelope",
    fields={
        "type": serializers.ChoiceField(choices=ERROR_TYPES),
        "code": serializers.CharField(help_text="Machine-readable code, e.g. `invalid_input`, `not_found`."),
        "detail": serializers.CharField(help_text="A human-readable sentence."),
        "attr": serializers.CharField(
            allow_null=True, help_text="The offending field; nested paths use `__` (e.g. `ids__3`)."
        ),
    },
)


def error_response(description: str) -> OpenApiResponse:
    """An error-envelope response with an operation-specific description."""
    return OpenApiResponse(response=ErrorEnvelopeSerializer, description=description)


# The errors the shared plumbing answers with; AutoSchema adds those that apply to each operation.
ERROR_RESPONSES: dict[int, OpenApiResponse] = {
    400: error_response("Invalid input (error envelope; `attr` names the field)."),
    401: error_response("Missing or invalid credentials (see the `WWW-Authenticate` header)."),
    403: error_response("Missing API key scope, a key limited to other projects, or CSRF failure."),
    404: error_response("Not found, or not visible to the caller."),
    406: error_response("Unsupported `?format=`; use `json` or `csv`."),
    413: error_response("The request body is larger than 2.5 MB."),
    415: error_response("The request body is not `application/json`."),
    # Answered by gunicorn before the app, in the envelope all the same (insights_api/gunicorn.conf.py).
    414: error_response("The URL is too long (over 4094 bytes with its query string)."),
    429: error_response("Throttled; retry after the `Retry-After` header's seconds."),
    503: error_response("PostgreSQL or Redis is unreachable; retry shortly."),
}

# CSV is a second representation of every answer, chosen by `?format=csv`. Each response documents it
# as `text/csv` beside `application/json`, with the same schema: the data the CSV flattens (one row per
# element of a list, or of a page's `results`). JSON comes first, and a client generator that types a
# response as the union of its media types gets the JSON type unchanged.
CSV_MEDIA_TYPE = "text/csv"
CSV_DESCRIPTION = (
    "`json` (default), or `csv`: the same answer as `text/csv` — the JSON body flattened to one row per "
    "list element (one row for an object; a page of a paginated list gives one row per element of "
    "`results`, its `count` in the `X-Total-Count` header and its `next`/`previous` in a `Link` header "
    'with `rel="next"`/`rel="prev"`), nested keys as dotted columns (`created_by.email`), header = '
    "sorted union of keys; cells starting with `=`, `+`, `-` or `@` escaped with a leading `'`; "
    "`Content-Disposition` names a file."
)
FORMAT_COMPONENT = "Format"
# gunicorn refuses an over-long request line itself, before the app (so without the envelope).

HEADERS: dict[str, JSONObject] = {
    "X-Request-ID": {
        "description": "The request's id: the caller's `X-Request-ID` if well-formed, else a new UUID. "
        "It is on every log line the request (and any task it started) wrote.",
        "required": True,
        "schema": {"type": "string"},
    },
    "WWW-Authenticate": {
        "description": 'How to authenticate (`Bearer realm="api"`).',
        "required": True,
        "schema": {"type": "string"},
    },
    "Retry-After": {
        "description": "Seconds to wait before retrying (the budget's window, the query lane's queue bound, or how soon a part that is unavailable may be back).",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "X-Coalesced": {
        "description": "`leader` computed this answer, `follower` received a concurrent identical request's "
        "answer, `off` computed alone (coalescing disabled or Redis unreachable).",
        "required": False,
        "schema": {"type": "string", "enum": ["leader", "follower", "off"]},
    },
    "Content-Disposition": {
        "description": 'With `?format=csv`: `attachment; filename="<resource>[-<action>].csv"`.',
        "required": False,
        "schema": {"type": "string"},
    },
    "X-Total-Count": {
        "description": "With `?format=csv`: the page's `count`, the number of rows of the whole list.",
        "required": False,
        "schema": {"type": "integer", "minimum": 0},
    },
    "Link": {
        "description": 'With `?format=csv`: the neighbouring pages, `<url>; rel="next"` and `<url>; rel="prev"` '
        "(RFC 8288), those there are (the page's `next` and `previous`).",
        "required": False,
        "schema": {"type": "string"},
    },
}


ENVIRONMENTS_PREFIX = "/api/environments/"


# The security scheme whose credentials carry scopes (an API's authentication registers it under this
# name); each operation's security requirement names the scope it needs.
SCOPED_AUTH_SCHEME = "PersonalAPIKeyAuth"


class AutoSchema(openapi.AutoSchema):
    """Insists on explicit summaries and descriptions, documents each operation's API key scope and
    every status code it can answer in JSON and in CSV, and names enums for SDKs.

    `@extend_schema(summary=..., description=...)` overrides `get_summary`/`get_description`, so the
    methods below run only for an operation without them: they warn (which fails the schema test)
    instead of falling back to a docstring.
    """

    def get_summary(self) -> str | None:
        warn(f"{self._operation_name()} has no explicit summary")
        return None

    # drf-spectacular's AutoSchema takes no path and method here, unlike DRF's (and its stubs').
    def get_description(self) -> str:  # type: ignore[override]
        warn(f"{self._operation_name()} has no explicit description")
        return ""

    def get_operation(self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        if path.startswith(ENVIRONMENTS_PREFIX):
            operation["summary"] = f"{operation['summary']} (environments)"
            operation["description"] = (
                f"The same operation as under `/api/projects/{{project_id}}/`: `environments` is the name "
                f"PostHog's frontend gives a project's routes.\n\n{operation['description']}"
            )
        if method == "PUT" and "requestBody" in operation:
            operation["requestBody"]["required"] = True  # a replacement needs what it replaces with
        self._document_scope(operation)
        self._document_errors(operation, path)
        self._document_parameters(operation)
        for status, response in operation["responses"].items():
            self._document_response(status, response)
        return operation

    def get_operation_id(self) -> str:
        # `<resource>_<action>` (insights_list, insights_bulk_update_tags): short, stable SDK names;
        # the `environments` alias of a project route gets PostHog's prefix (environments_insights_list).
        basename, action = getattr(self.view, "basename", None), getattr(self.view, "action", None)
        if not (basename and action):
            return super().get_operation_id()
        prefix = "environments_" if self.path.startswith(ENVIRONMENTS_PREFIX) else ""
        return f"{prefix}{basename}_{action}"

    def _resolve_path_parameters(self, variables: list[str]) -> list[dict[str, Any]]:
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            if parameter["name"] == "project_id":
                parameter["schema"] = {"type": "integer", "format": "int64"}
                parameter["description"] = "The project's id."
            elif parameter["name"] in ("id", "pk"):  # drf-spectacular names the `pk` lookup `id`
                # Either, so the `id` of one answer can be the path of the next call.
                parameter["schema"] = {
                    "oneOf": [
                        {"type": "integer", "format": "int64", "minimum": 1},
                        {"type": "string", "pattern": "^[A-Za-z0-9]{1,12}$"},
                    ]
                }
                parameter["description"] = "The insight's numeric `id` or its 8-character `short_id`."
            elif parameter["name"] == "query_id" and getattr(self.view, "action", None) == "destroy":
                parameter["schema"] = {"type": "string", "pattern": r"^[A-Za-z0-9_.:\-]{1,128}$"}
                parameter["description"] = "The `client_query_id` the query was started with."
            elif parameter["name"] == "query_id":
                parameter["schema"] = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
                parameter["description"] = "The `query_status.id` of an asynchronous run."
        return parameters

    # --- what each operation answers ----------------------------------------------------------------

    def _document_scope(self, operation: dict[str, Any]) -> None:
        scope = self._required_scope()
        if scope is None:
            return
        operation["description"] = f"{operation.get('description', '')}\n\nRequired API key scope: `{scope}`."
        operation["x-required-scope"] = scope
        operation["security"] = [
            {name: [scope] if name == SCOPED_AUTH_SCHEME else scopes for name, scopes in item.items()}
            for item in operation.get("security", [])
        ]

    def _document_errors(self, operation: dict[str, Any], path: str) -> None:
        """Add the plumbing's errors that this operation can answer (a view's own description of one
        of them is kept)."""
        has_body = "requestBody" in operation
        has_params = any(
            param["in"] == "query" and param["name"] != "format" for param in operation.get("parameters", [])
        )
        needs_credentials = bool(self.get_auth()) and {} not in self.get_auth()
        applicable = {406, 414, 429, 503}
        if has_body or has_params:
            applicable.add(400)
        if has_body:
            applicable |= {413, 415}
        if needs_credentials:
            applicable |= {401, 403}
        if path.startswith(("/api/projects/", ENVIRONMENTS_PREFIX)):
            applicable.add(404)
        for status in sorted(applicable):
            if str(status) not in operation["responses"]:
                operation["responses"][str(status)] = self._get_response_for_code(
                    ERROR_RESPONSES[status], str(status)
                )
        operation["responses"] = dict(sorted(operation["responses"].items()))

    def _document_parameters(self, operation: dict[str, Any]) -> None:
        """One shared `Format` enum instead of one per operation, and enum member names for SDKs."""
        for parameter in operation.get("parameters", []):
            schema = parameter.get("schema", {})
            if parameter["name"] == "format" and parameter["in"] == "query":
                self.registry.register_on_missing(
                    ResolvedComponent(
                        name=FORMAT_COMPONENT,
                        type=ResolvedComponent.SCHEMA,
                        object=FORMAT_COMPONENT,
                        schema={
                            "type": "string",
                            "enum": schema.get("enum", ["csv", "json"]),
                            "description": CSV_DESCRIPTION,
                        },
                    )
                )
                parameter["schema"] = {"$ref": f"#/components/schemas/{FORMAT_COMPONENT}"}
                parameter["description"] = CSV_DESCRIPTION
            else:
                if "enum" in schema:
                    add_enum_varnames(schema)
                if parameter["in"] == "query" and not parameter.get("required"):
                    # DRF reads `?name=` as "not given" (HTML form semantics): say so.
                    parameter["allowEmptyValue"] = True

    def _document_response(self, status: str, response: dict[str, Any]) -> None:
        """Both representations of the body (JSON first), and the headers the response carries."""
        content = response.get("content", {})
        if status == "414":  # gunicorn's own answer: JSON whatever was asked for, none of the app's headers
            response["content"] = {"application/json": content["application/json"]}
            response.pop("headers", None)
            return
        if "application/json" in content:
            schema = content["application/json"]["schema"]
            response["content"] = {
                "application/json": content["application/json"],
                CSV_MEDIA_TYPE: {"schema": schema},
            }
        headers = response.setdefault("headers", {})
        headers["X-Request-ID"] = HEADERS["X-Request-ID"]
        if status == "401":
            headers["WWW-Authenticate"] = HEADERS["WWW-Authenticate"]
        if status in ("429", "503"):
            headers["Retry-After"] = HEADERS["Retry-After"]
        if status == "200" and getattr(self.view, "action", None) in getattr(
            self.view, "coalesced_actions", ()
        ):
            headers["X-Coalesced"] = HEADERS["X-Coalesced"]
        if content and status.startswith("2"):
            headers["Content-Disposition"] = HEADERS["Content-Disposition"]
            if self._is_page(content.get("application/json", {}).get("schema", {})):
                headers["X-Total-Count"] = HEADERS["X-Total-Count"]
                headers["Link"] = HEADERS["Link"]

    def _is_page(self, schema: dict[str, Any]) -> bool:
        """Whether a body schema is a paginated envelope (`{"count", "next", "previous", "results"}`)."""
        name = schema.get("$ref", "").rpartition("/")[2]
        component = self.registry._components.get((name, ResolvedComponent.SCHEMA))
        return component is not None and set(component.schema.get("properties", {})) == ENVELOPE

    def _operation_name(self) -> str:
        return f"{self.view.__class__.__name__}.{getattr(self.view, 'action', None) or self.method.lower()}"

    def _required_scope(self) -> str | None:
        required_scope = getattr(self.view, "required_scope", None)
        return required_scope() if required_scope is not None else None


def add_enum_varnames(schema: dict[str, Any]) -> None:
    """`x-enum-varnames` for an enum whose values are not identifiers (`-last_viewed_at` becomes
    `LAST_VIEWED_AT_DESC`), so generated SDKs get readable members instead of `VALUE_5`."""
    values = [value for value in schema["enum"] if value is not None]
    if all(
        isinstance(value, str) and value.isidentifier() and not keyword.iskeyword(value) for value in values
    ):
        return
    names = []
    for value in values:
        text = str(value)
        name = re.sub(r"\W+", "_", text.lstrip("-")).strip("_").upper() or "EMPTY"
        names.append(f"{name}_DESC" if text.startswith("-") else name)
    if len(set(names)) == len(names):
        schema["x-enum-varnames"] = names


def move_request_defaults(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: a request field's default goes into its description."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            for field in component.get("properties", {}).values():
                document_default(field)
    return result


def document_default(field: dict[str, object]) -> None:
    """Move a field schema's `default` into its description. Generators read `default` as "always
    present", which makes an optional request field required to send."""
    if "default" in field:
        default = field.pop("default")
        if default is None:  # absent and null mean the same
            return
        shown = "`[]`" if default == [] else f"`{json.dumps(default)}`"
        field["description"] = f"{field.get('description', '')}\n\nDefault: {shown}.".strip()


def simplify_nullable_any(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """Postprocessing hook: drf-spectacular writes a nullable JSON field (any value) as `oneOf: [{},
    {type: null}]`, which null matches twice (so no value is valid); "any value" already admits null."""

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if {} in node.get("oneOf", []):
                del node["oneOf"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(result)
    return result
