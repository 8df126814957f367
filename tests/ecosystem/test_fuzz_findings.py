"""What schemathesis found (tests/ecosystem/test_fuzz.py), pinned as fast, deterministic tests."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def test_options_on_the_query_route_describes_it_instead_of_failing(owner_api, project):
    response = owner_api.options(f"/api/projects/{project.id}/query/")

    assert response.status_code == 200
    assert "query" in response.json()["actions"]["POST"]


def test_an_empty_format_is_refused_like_any_unknown_one(owner_api, insights_url):
    response = owner_api.get(f"{insights_url}?format=")

    assert response.status_code == 406
    assert response.json()["detail"] == "Unsupported format ''; use one of: csv, json."


@pytest.mark.parametrize(
    ("field", "value"), [("favorited", 1), ("deleted", 0), ("favorited", "yes"), ("_create_in_folder", 0)]
)
def test_a_body_value_of_the_wrong_type_is_a_400_not_converted(owner_api, insights_url, field, value):
    response = owner_api.post(insights_url, {"name": "x", field: value}, format="json")

    assert response.status_code == 400
    assert response.json()["attr"] == field


def test_an_empty_list_as_csv_is_still_csv(owner_api, insights_url):
    response = owner_api.get(f"{insights_url}my_last_viewed/?format=csv")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response.content == b"\r\n"


def test_an_empty_query_parameter_counts_as_absent(owner_api, insights_url, make_insight):
    make_insight(name="Kept")

    response = owner_api.get(f"{insights_url}?short_id=&search=&limit=&basic=")

    assert response.status_code == 200
    assert response.json()["count"] == 1
