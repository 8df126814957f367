"""The OpenAPI document: generated without a single warning, explicit docs on every operation."""

from __future__ import annotations

import pytest
import yaml
from django.core.management import call_command

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("schema") / "schema.yml"
    # --fail-on-warn turns every drf-spectacular warning (including a missing summary or description,
    # see insights_api.api.schema.AutoSchema) into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_every_operation_has_its_own_summary_and_description(schema):
    summaries = set()
    for name, operation in operations(schema):
        assert operation.get("summary"), name
        assert operation.get("description", "").strip(), name
        summaries.add(operation["summary"])
    assert len(summaries) == len(list(operations(schema))), "summaries must be distinct"


def test_every_project_operation_documents_its_scope_and_the_format_parameter(schema):
    for name, operation in operations(schema):
        if "/projects/" not in name:
            continue
        assert operation["x-required-scope"] in ("insight:read", "insight:write"), name
        assert f"Required API key scope: `{operation['x-required-scope']}`" in operation["description"]
        assert {"PersonalAPIKeyAuth": [operation["x-required-scope"]]} in operation["security"], name
        formats = [param for param in operation["parameters"] if param["name"] == "format"]
        assert formats and formats[0]["schema"]["enum"] == ["csv", "json"], name


def test_errors_are_documented_with_the_envelope(schema):
    for name, operation in operations(schema):
        if name.startswith("POST /api/login"):
            continue
        for status in ("401", "403", "404"):
            body = operation["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorEnvelope"}, (name, status)


@pytest.mark.parametrize("path", ["/api/schema/", "/api/schema/swagger-ui/", "/api/schema/redoc/"])
def test_the_schema_and_its_viewers_are_served_without_a_cdn(api, path):
    response = api.get(path)

    assert response.status_code == 200
    assert b"cdn." not in response.content and b"unpkg" not in response.content


def test_the_viewer_assets_are_served_by_the_service(api):
    html = api.get("/api/schema/swagger-ui/").content.decode()
    asset = html.split('src="')[1].split('"')[0]

    response = api.get(asset)

    assert asset.startswith("/static/")
    assert response.status_code == 200
