"""Hand-written bad input against every route (issue 6, item 6; schemathesis fuzzing is issue 7's).

The routes come from the URL resolver (tests/reliability/routes.py) and each operation's fields and
query parameters from the OpenAPI schema, so a new route or field is swept without being listed.
Every route gets: malformed, hostile and mistyped bodies under every content type, each field of a
correct body replaced by wrong types and extreme values, bad query parameters, bad path values, and
every method it does not have. The answer may be anything but a 5xx, and every 4xx carries the error
envelope. (tests/apikit/test_errors.py pins exact codes for insight CRUD.)
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from tests.reliability.conftest import PASSWORD
from tests.reliability.routes import Route, every_route, samples

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

ENVELOPE = {"type", "code", "detail", "attr"}
JSON = "application/json"
DEEP = 100_000  # far past any parser's recursion limit

BODIES: list[tuple[str, bytes, str]] = [
    ("not UTF-8", b'{"name": "\xff\xfe"}', JSON),
    ("deeply nested arrays", b"[" * DEEP + b"]" * DEEP, JSON),
    ("deeply nested objects", b'{"a":' * DEEP + b"1" + b"}" * DEEP, JSON),
    ("a 5000-digit integer", b'{"ids": [' + b"9" * 5000 + b"]}", JSON),
    ("truncated JSON", b'{"name": ', JSON),
    ("NaN", b'{"name": NaN, "ids": [NaN]}', JSON),
    ("Infinity", b'{"order": Infinity}', JSON),
    ("null", b"null", JSON),
    ("an array", b"[1, 2]", JSON),
    ("a string", b'"just a string"', JSON),
    ("a number", b"42", JSON),
    ("empty", b"", JSON),
    ("a NUL character", b'{"name": "a\\u0000b", "tags": ["\\u0000"], "client_query_id": "\\u0000"}', JSON),
    ("a lone surrogate", b'{"name": "\\ud800", "tags": ["\\udfff"]}', JSON),
    ("duplicate keys", b'{"name": "a", "name": {"b": 1}}', JSON),
    ("3 MB", b'{"name": "' + b"x" * 3_000_000 + b'"}', JSON),
    ("a form", b"name=x&ids=1", "application/x-www-form-urlencoded"),
    ("multipart", b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nx\r\n--b--\r\n', "multipart/form-data; boundary=b"),
    ("plain text", b"hello", "text/plain"),
    ("XML", b"<insight><name>x</name></insight>", "application/xml"),
    ("an unknown charset", b'{"name": "x"}', "application/json; charset=no-such-charset"),
    ("UTF-16", '{"name": "x"}'.encode("utf-16"), "application/json; charset=utf-16"),
    ("a garbage content type", b'{"name": "x"}', "\x00;;==/"),
    ("no content type", b'{"name": "x"}', ""),
]  # fmt: skip

# Put in place of each field of a correct body: wrong types, negative, huge and hostile values.
VALUES: list[Any] = [
    None, True, 0, -1, -(2**63) - 1, 2**63, 2**64, 10**30, 1.5, 1e308, -1e308,
    "", "x", "\x00", "\ud83d", "😀" * 300, "x" * 100_000, "=cmd|' /C calc'!A0",
    [], [None], [-1], [2**64], [[[]]], ["x"] * 10_000, {}, {"kind": None}, {"a": {"b": {"c": [1]}}},
]  # fmt: skip
PARAMETER_VALUES = ["", "-1", "-" + "9" * 30, "9" * 400, "1e400", "NaN", "null", "true", "\x00", "[", "[-1]",
                    '["\\u0000"]', "x" * 5000, "%FF", "0x10"]  # fmt: skip
PATH_VALUES = {
    "project_id": ["0", "9" * 30],
    "pk": ["0", "-1", "9" * 30, "AAAAAAAA", "a" * 1000],
    "query_id": ["f" * 32, "0" * 31 + "g"],
}
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


@functools.cache
def schema() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def operation(path: str, method: str) -> dict[str, Any]:
    """The schema's operation for a concrete path, or {} (routes outside the schema: health, docs)."""
    for template, operations in schema()["paths"].items():
        if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path) and method.lower() in operations:
            return operations[method.lower()]
    return {}


def body_fields(op: dict[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema", {})
    if "$ref" in content:
        content = schema()["components"]["schemas"][content["$ref"].rsplit("/", 1)[1]]
    return sorted(content.get("properties", {}))


def query_parameters(op: dict[str, Any]) -> list[str]:
    return sorted(
        {p["name"] for p in op.get("parameters", []) if p["in"] == "query"} | {"format", "limit", "offset"}
    )


def cases(route: Route, values: dict[str, Any], sample: Any) -> Iterator[tuple[str, str, str, bytes, str]]:
    """(what, method, path, body, content type) for every bad request this route gets."""
    path = route.path(**values)
    op = operation(path, route.method)
    for label, body, content_type in BODIES:
        yield label, route.method, path, body, content_type
    base = sample.body if isinstance(sample.body, dict) else {}
    for field in sorted(set(base) | set(body_fields(op))):
        for value in VALUES:
            yield f"{field}={value!r:.40}", route.method, path, _dumps({**base, field: value}), JSON
        for value in VALUES[:12]:  # the same values one level down, inside a list field
            if isinstance(base.get(field), list):
                yield f"{field}[0]={value!r:.40}", route.method, path, _dumps({**base, field: [value]}), JSON
    good = _dumps(sample.body) if sample.body is not None else b""
    for name in query_parameters(op):
        for value in PARAMETER_VALUES:
            yield f"?{name}={value:.40}", route.method, f"{path}?{name}={value}", good, JSON
    for name, bad in PATH_VALUES.items():
        for value in bad if f"(?P<{name}>" in route.regex else []:
            yield f"path {name}={value:.40}", route.method, route.path(**{**values, name: value}), good, JSON
    for method in METHODS:
        yield f"method {method}", method, path, good, JSON


def _dumps(body: Any) -> bytes:
    return json.dumps(body, default=str).encode("utf-8", "surrogatepass")


@pytest.mark.parametrize("route", every_route(), ids=str)
def test_no_bad_input_gets_a_server_error_and_every_4xx_has_the_envelope(
    route, owner, path_values, secret, request
):
    if route.name == "ready":  # ready means a query worker is alive: a real one serves the sweep
        request.getfixturevalue("celery_worker")
    client = APIClient()
    client.force_authenticate(owner)  # past authentication: the sweep is about what comes after it
    catalogue = samples(insight_id=secret.insight.id, email=owner.email, password=PASSWORD)
    failures, sent = [], 0
    for what, method, path, body, content_type in cases(
        route, path_values, catalogue[(route.name, route.method)]
    ):
        response = client.generic(method, path, body, content_type=content_type)
        sent += 1
        if response.status_code >= 500:
            failures.append((what, response.status_code, response.content[:200]))
        elif response.status_code >= 400 and method != "HEAD" and not _envelope(response.content):
            failures.append((what, response.status_code, "no envelope", response.content[:200]))
    assert failures == [], f"{route}: {len(failures)} of {sent} bad requests"
    print(f"bad input: {route}: {sent} requests, no 5xx, every 4xx in the envelope")


def _envelope(content: bytes) -> bool:
    try:
        body = json.loads(content)
    except ValueError:
        return False
    return isinstance(body, dict) and set(body) == ENVELOPE


def test_every_route_is_classified():
    """A new route must get a correct sample (tests/reliability/routes.py) to join every sweep."""
    catalogue = samples(insight_id=1, email="a@b.c", password="x")
    for route in every_route():
        assert (route.name, route.method) in catalogue, f"add a sample for {route}"
        assert route.is_public or not route.in_project or route.scope in ("insight:read", "insight:write")
