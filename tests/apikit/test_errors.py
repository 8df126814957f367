"""One error envelope for every error, and never a 5xx for bad input (docs/tenancy-and-errors.md)."""

from __future__ import annotations

import json

import pytest

from insights.models import Insight

pytestmark = pytest.mark.django_db

ENVELOPE_KEYS = {"type", "code", "detail", "attr"}


def test_an_unknown_url_is_a_404_in_the_envelope(owner_api):
    response = owner_api.get("/api/nothing/here/")

    assert response.status_code == 404
    assert response.json() == {
        "type": "invalid_request",
        "code": "not_found",
        "detail": "Not found.",
        "attr": None,
    }


def test_every_route_answers_with_and_without_a_trailing_slash(owner_api, insights_url, make_insight):
    insight = make_insight()
    for path in ("", f"{insight.id}", f"{insight.id}/activity", "activity"):
        with_slash = owner_api.get(f"{insights_url}{path}/" if path else insights_url)
        without_slash = owner_api.get(f"{insights_url}{path}" if path else insights_url.rstrip("/"))
        assert with_slash.status_code == without_slash.status_code == 200, path
    assert owner_api.post(insights_url.rstrip("/"), {"name": "no slash"}, format="json").status_code == 201


def test_malformed_json_is_a_400(owner_api, insights_url):
    response = owner_api.post(insights_url, '{"name": ', content_type="application/json")

    assert response.status_code == 400
    assert set(response.json()) == ENVELOPE_KEYS
    assert response.json()["code"] == "parse_error"


def test_a_body_that_is_not_json_is_a_415(owner_api, insights_url):
    response = owner_api.post(insights_url, "name=x", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_an_unknown_format_is_a_406_naming_the_choices(owner_api, insights_url):
    response = owner_api.get(insights_url, {"format": "xml"})

    assert response.status_code == 406
    assert "csv, json" in response.json()["detail"]


def test_an_oversized_body_is_a_413(owner_api, insights_url, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = owner_api.post(insights_url, {"name": "x", "description": "y" * 2000}, format="json")

    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"


BAD_BODIES = [
    b"\xff\xfe\xfd",  # not UTF-8
    b"[" * 100_000 + b"]" * 100_000,  # nested far deeper than the parser's recursion limit
    b'{"name": "x", "order": ' + b"9" * 5000 + b"}",  # an integer too long to parse
    b'{"name": NaN}',
    b"null",
    b"[]",
    b'"just a string"',
    b'{"name": {"nested": "object"}}',
    b'{"name": "nul \\u0000 byte"}',
    b'{"query": {"kind": "TrendsQuery", "deep": ' + b'{"a": ' * 200 + b"1" + b"}" * 200 + b"}}",
    b'{"tags": [1, 2, {"x": []}]}',
    b'{"dashboards": [-1]}',
    b'{"dashboards": ["1; drop table"]}',
    b'{"order": 1e400}',
    b'{"derived_name": ["list"]}',
]


@pytest.mark.parametrize("body", BAD_BODIES, ids=range(len(BAD_BODIES)))
@pytest.mark.parametrize("method", ["post", "patch", "put"])
def test_bad_bodies_get_a_4xx_envelope_and_change_nothing(
    owner_api, insights_url, make_insight, body, method
):
    insight = make_insight(name="Untouched")
    url = insights_url if method == "post" else f"{insights_url}{insight.id}/"

    response = getattr(owner_api, method)(url, body, content_type="application/json")

    assert 400 <= response.status_code < 500, response.content
    assert set(response.json()) == ENVELOPE_KEYS
    assert list(Insight.objects.values_list("name", flat=True)) == ["Untouched"]


BAD_PARAMS = [
    {"search": "nul\x00"},
    {"short_id": "\x00"},
    {"tags": '["\\u0000"]'},
    {"created_by": "[99999999999999999999999]"},
    {"dashboards": "[-1]"},
    {"limit": "9" * 50},
    {"offset": "1e3"},
    {"date_from": "-99999d"},
    {"date_to": "9999-99-99"},
    {"order": "-"},
]


@pytest.mark.parametrize("params", BAD_PARAMS, ids=range(len(BAD_PARAMS)))
def test_bad_query_parameters_never_cause_a_server_error(owner_api, insights_url, params):
    response = owner_api.get(insights_url, params)

    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        assert set(response.json()) == ENVELOPE_KEYS


def test_nested_field_errors_name_the_element(owner_api, insights_url):
    response = owner_api.post(
        insights_url, json.dumps({"dashboards": [1, "x"]}), content_type="application/json"
    )

    assert response.json()["attr"] == "dashboards__1"
