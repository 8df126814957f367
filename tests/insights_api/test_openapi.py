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
    # see apikit.schema.AutoSchema) into an error.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(path))
    return yaml.safe_load(path.read_text())


def operations(schema: dict):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def in_project(name: str) -> bool:
    """A project's operation, under either of its names (docs/posthog-clients.md)."""
    return "/api/projects/" in name or "/api/environments/" in name


def test_every_operation_has_its_own_summary_and_description(schema):
    summaries = set()
    for name, operation in operations(schema):
        assert operation.get("summary"), name
        assert operation.get("description", "").strip(), name
        summaries.add(operation["summary"])
    assert len(summaries) == len(list(operations(schema))), "summaries must be distinct"


def test_every_project_operation_documents_its_scope_and_the_format_parameter(schema):
    for name, operation in operations(schema):
        if not in_project(name):
            continue
        assert operation["x-required-scope"] in ("insight:read", "insight:write"), name
        assert f"Required API key scope: `{operation['x-required-scope']}`" in operation["description"]
        assert {"PersonalAPIKeyAuth": [operation["x-required-scope"]]} in operation["security"], name
        formats = [param for param in operation["parameters"] if param["name"] == "format"]
        assert formats and formats[0]["schema"] == {"$ref": "#/components/schemas/Format"}, name
    assert schema["components"]["schemas"]["Format"]["enum"] == ["csv", "json"]


def test_errors_are_documented_with_the_envelope(schema):
    for name, operation in operations(schema):
        expected = {"406", "414", "429", "503"}
        if not name.startswith("POST /api/login"):
            expected |= {"401", "403"}
        if in_project(name):
            expected.add("404")
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        assert expected <= set(operation["responses"]), name
        for status in expected:  # 414 is gunicorn's answer, in the envelope too, without the app's headers
            body = operation["responses"][status]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorEnvelope"}, (name, status)
            if status != "414":
                assert operation["responses"][status]["headers"]["X-Request-ID"]["required"], (name, status)
        if "401" in operation["responses"]:
            assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], name
        assert "Retry-After" in operation["responses"]["429"]["headers"], name


def test_no_operation_documents_an_error_it_cannot_answer(schema):
    for name, operation in operations(schema):
        if not in_project(name):
            assert "404" not in operation["responses"], name
        if "requestBody" not in operation:
            assert not {"413", "415"} & set(operation["responses"]), name


def test_every_body_the_app_answers_is_documented_as_json_and_as_csv_with_one_schema(schema):
    for name, operation in operations(schema):
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            if status == "414":  # gunicorn's answer: JSON whatever was asked for
                assert list(content) == ["application/json"], (name, status)
            elif content:
                # JSON first (a generator that takes one media type takes it), one schema for both.
                assert list(content) == ["application/json", "text/csv"], (name, status)
                assert content["text/csv"] == {"schema": content["application/json"]["schema"]}, (
                    name,
                    status,
                )
    assert "text/csv" in schema["components"]["schemas"]["Format"]["description"]


def test_a_pages_csv_documents_its_count_and_links_headers(schema):
    envelopes = {
        f"#/components/schemas/{name}"
        for name in schema["components"]["schemas"]
        if name.startswith("Paginated")
    }
    pages = 0
    for name, operation in operations(schema):
        for status, response in operation["responses"].items():
            if not status.startswith("2") or "content" not in response:
                continue
            is_page = response["content"]["application/json"]["schema"].get("$ref") in envelopes
            pages += is_page
            assert "Content-Disposition" in response["headers"], (name, status)
            assert {"X-Total-Count", "Link"} <= set(response["headers"]) if is_page else True, (name, status)
            assert not {"X-Total-Count", "Link"} & set(response["headers"]) if not is_page else True, (
                name,
                status,
            )
    assert pages >= 8  # list, trending and the two activity routes, under both prefixes


def test_put_needs_a_body_naming_a_field_and_patch_accepts_an_empty_one(schema):
    components = schema["components"]["schemas"]
    for prefix in ("projects", "environments"):
        detail = schema["paths"][f"/api/{prefix}/{{project_id}}/insights/{{id}}/"]
        put, patch = detail["put"]["requestBody"], detail["patch"]["requestBody"]
        replace = components[put["content"]["application/json"]["schema"]["$ref"].rpartition("/")[2]]
        update = components[patch["content"]["application/json"]["schema"]["$ref"].rpartition("/")[2]]
        assert put["required"] is True and replace["minProperties"] == 1
        assert not patch.get("required") and "minProperties" not in update and not update.get("required")
        assert set(replace["properties"]) == set(update["properties"])


def test_paths_take_the_ids_answers_give(schema):
    retrieve = schema["paths"]["/api/projects/{project_id}/insights/{id}/"]["get"]
    [insight_id] = [param for param in retrieve["parameters"] if param["name"] == "id"]
    assert [variant["type"] for variant in insight_id["schema"]["oneOf"]] == ["integer", "string"]


def test_every_paginated_envelope_always_has_next_and_previous(schema):
    envelopes = [
        component
        for name, component in schema["components"]["schemas"].items()
        if name.startswith("Paginated")
    ]
    assert envelopes
    for envelope in envelopes:
        assert {"count", "next", "previous", "results"} <= set(envelope["required"])


def test_request_fields_carry_no_default_that_would_make_them_required_to_send(schema):
    for name, component in schema["components"]["schemas"].items():
        if name.endswith("Request"):
            assert not [field for field in component.get("properties", {}).values() if "default" in field], (
                name
            )
    refresh = schema["components"]["schemas"]["QueryRunRequest"]["properties"]["refresh"]
    assert 'Default: `"blocking"`.' in refresh["description"]


def test_servers_and_bounds_the_server_enforces_are_declared(schema):
    assert schema["servers"][0]["url"].startswith("http")
    listing = schema["paths"]["/api/projects/{project_id}/insights/"]["get"]["parameters"]
    limit, offset = (
        next(param["schema"] for param in listing if param["name"] == name) for name in ("limit", "offset")
    )
    assert (limit["minimum"], limit["maximum"], offset["minimum"]) == (1, 1000, 0)
    date_from = next(param["schema"] for param in listing if param["name"] == "date_from")
    assert [variant.get("format", "relative") for variant in date_from["anyOf"]] == [
        "date",
        "date-time",
        "relative",
    ]
    metadata = schema["components"]["schemas"]["GenerateMetadataRequest"]
    assert metadata["required"] == ["query"]


def test_a_list_row_does_not_require_what_basic_leaves_out(schema):
    components = schema["components"]["schemas"]
    listed = schema["paths"]["/api/projects/{project_id}/insights/"]["get"]["responses"]["200"]
    page = listed["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]

    assert components[page]["properties"]["results"]["items"] == {
        "$ref": "#/components/schemas/InsightListItem"
    }
    assert not {"order", "deleted"} & set(components["InsightListItem"]["required"])
    assert {"order", "deleted"} <= set(components["Insight"]["required"])  # create/retrieve/update


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


def test_every_project_operation_is_documented_again_under_environments_with_its_prefix(schema):
    """PostHog's schema names the alias's operations `environments_<operation>` (docs/posthog-clients.md)."""
    by_id = {operation["operationId"]: name for name, operation in operations(schema)}
    projects = {op_id: name for op_id, name in by_id.items() if "/api/projects/" in name}

    assert projects
    for op_id, name in projects.items():
        assert by_id[f"environments_{op_id}"] == name.replace("/api/projects/", "/api/environments/")


@pytest.mark.parametrize(
    "operation_id",
    ["insights_bulk_delete", "insights_bulk_restore", "tags_list", "tags_rename", "tags_delete_tag"],
)
def test_the_hygiene_operations_carry_examples_of_what_they_take_and_answer(schema, operation_id):
    [operation] = [op for _, op in operations(schema) if op["operationId"] == operation_id]
    answer = operation["responses"]["200"]["content"]["application/json"]

    assert answer["examples"], operation_id
    if "requestBody" in operation:
        assert operation["requestBody"]["content"]["application/json"]["examples"], operation_id
        assert "dry_run" in [param["name"] for param in operation["parameters"]], operation_id
