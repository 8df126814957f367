"""`?format=csv` on every route: dotted columns, one row per element, formula cells escaped."""

from __future__ import annotations

import csv
import io

import pytest

pytestmark = pytest.mark.django_db


def rows(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_a_paginated_list_is_one_row_with_dotted_columns(owner_api, insights_url, make_insight):
    insight = make_insight(name="Signups", tags=["b", "a"])

    response = owner_api.get(insights_url, {"format": "csv"})

    [row] = rows(response)
    assert row["count"] == "1"
    assert row["results.0.id"] == str(insight.id)
    assert row["results.0.name"] == "Signups"
    assert (row["results.0.tags.0"], row["results.0.tags.1"]) == ("a", "b")
    assert row["results.0.created_by.email"] == "owner@acme.test"
    header = response.content.decode().splitlines()[0].split(",")
    assert header == sorted(header)


def test_a_retrieved_object_is_one_row(owner_api, insights_url, make_insight):
    insight = make_insight(name="One", favorited=True)

    [row] = rows(owner_api.get(f"{insights_url}{insight.id}/", {"format": "csv"}))

    assert (row["id"], row["name"], row["favorited"]) == (str(insight.id), "One", "true")


@pytest.mark.parametrize("dangerous", ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB"])
def test_formula_cells_are_escaped(owner_api, insights_url, make_insight, dangerous):
    make_insight(name=dangerous, description="plain text")

    [row] = rows(owner_api.get(insights_url, {"format": "csv"}))

    assert row["results.0.name"] == "'" + dangerous
    assert row["results.0.description"] == "plain text"


def test_csv_names_a_sensible_file(owner_api, insights_url, make_insight):
    insight = make_insight()

    listing = owner_api.get(insights_url, {"format": "csv"})
    activity = owner_api.get(f"{insights_url}{insight.id}/activity/", {"format": "csv"})

    assert listing["Content-Disposition"] == 'attachment; filename="insights.csv"'
    assert activity["Content-Disposition"] == 'attachment; filename="insights-activity.csv"'


def test_errors_are_csv_too_when_csv_was_asked_for(owner_api, insights_url):
    response = owner_api.get(f"{insights_url}999999/", {"format": "csv"})

    assert response.status_code == 404
    assert rows(response) == [
        {"type": "invalid_request", "code": "not_found", "detail": "Insight not found.", "attr": ""}
    ]


def test_action_answers_are_csv_too(owner_api, insights_url, make_insight):
    insight = make_insight(tags=["=cmd()"])
    owner_api.post(f"{insights_url}viewed/", {"insight_ids": [insight.id]}, format="json")

    [trending] = rows(owner_api.get(f"{insights_url}trending/", {"format": "csv"}))
    [bulk] = rows(
        owner_api.post(
            f"{insights_url}bulk_update_tags/?format=csv",
            {"ids": [insight.id], "action": "add", "tags": ["b"]},
            format="json",
        )
    )
    mine = rows(owner_api.get(f"{insights_url}my_last_viewed/", {"format": "csv"}))

    assert trending["results.0.view_count"] == "1" and trending["results.0.tags.0"] == "'=cmd()"
    assert (bulk["updated.0.id"], bulk["updated.0.tags.0"], bulk["updated.0.tags.1"]) == (
        str(insight.id),
        "'=cmd()",
        "b",
    )
    assert [row["id"] for row in mine] == [str(insight.id)]
