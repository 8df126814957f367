"""`?format=csv` on every route: dotted columns, one row per element (per result of a page, its count and
links in headers), formula cells escaped."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = pytest.mark.django_db


def rows(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_a_paginated_list_is_one_row_per_result_with_dotted_columns(owner_api, insights_url, make_insight):
    first = make_insight(name="Signups", tags=["b", "a"])
    second = make_insight(name="Churn")

    response = owner_api.get(insights_url, {"format": "csv", "order": "id"})

    assert [(row["id"], row["name"]) for row in rows(response)] == [
        (str(first.id), "Signups"),
        (str(second.id), "Churn"),
    ]
    row = rows(response)[0]
    assert (row["tags.0"], row["tags.1"], row["created_by.email"]) == ("a", "b", "owner@acme.test")
    header = response.content.decode().splitlines()[0].split(",")
    assert header == sorted(header) and "count" not in header and "results.0.id" not in header
    assert response["X-Total-Count"] == "2" and not response.has_header("Link")


def test_the_count_and_the_neighbouring_pages_go_into_headers(owner_api, insights_url, make_insight):
    made = [make_insight(name=f"Insight {n}") for n in range(5)]

    response = owner_api.get(insights_url, {"format": "csv", "order": "id", "limit": 2, "offset": 2})

    assert [row["name"] for row in rows(response)] == ["Insight 2", "Insight 3"]
    assert response["X-Total-Count"] == "5"
    links = {rel: url for url, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', response["Link"])}
    assert {rel: parse_qs(urlsplit(url).query) for rel, url in links.items()} == {
        "next": {"format": ["csv"], "limit": ["2"], "offset": ["4"], "order": ["id"]},
        "prev": {"format": ["csv"], "limit": ["2"], "order": ["id"]},
    }
    following = owner_api.get(links["next"])
    assert [row["id"] for row in rows(following)] == [str(made[4].id)]
    assert following["X-Total-Count"] == "5" and following["Link"].endswith('; rel="prev"')


def test_an_empty_page_is_an_empty_header_line_with_its_count(owner_api, insights_url):
    response = owner_api.get(insights_url, {"format": "csv"})

    assert (response.content, response["X-Total-Count"]) == (b"\r\n", "0")


def test_every_paginated_route_exports_one_row_per_result(owner_api, insights_url, make_insight):
    insight = make_insight(name="Viewed")
    owner_api.patch(f"{insights_url}{insight.id}/", {"description": "changed"}, format="json")
    owner_api.post(f"{insights_url}viewed/", {"insight_ids": [insight.id]}, format="json")

    pages = {
        route: owner_api.get(f"{insights_url}{route}", {"format": "csv"})
        for route in ("", "trending/", "activity/", f"{insight.id}/activity/")
    }

    for route, response in pages.items():
        as_json = owner_api.get(f"{insights_url}{route}").json()
        assert len(rows(response)) == len(as_json["results"]) > 0, route
        assert response["X-Total-Count"] == str(as_json["count"]), route
    assert [row["activity"] for row in rows(pages["activity/"])] == ["updated", "created"]
    assert rows(pages["trending/"])[0]["view_count"] == "1"


def test_a_retrieved_object_is_one_row(owner_api, insights_url, make_insight):
    insight = make_insight(name="One", favorited=True)

    [row] = rows(owner_api.get(f"{insights_url}{insight.id}/", {"format": "csv"}))

    assert (row["id"], row["name"], row["favorited"]) == (str(insight.id), "One", "true")


@pytest.mark.parametrize("dangerous", ['=HYPERLINK("http://evil")', "+1+1", "-2+3", "@SUM(A1)", "\tTAB"])
def test_formula_cells_are_escaped(owner_api, insights_url, make_insight, dangerous):
    make_insight(name=dangerous, description="plain text")

    [row] = rows(owner_api.get(insights_url, {"format": "csv"}))

    assert row["name"] == "'" + dangerous
    assert row["description"] == "plain text"


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

    assert trending["view_count"] == "1" and trending["tags.0"] == "'=cmd()"
    assert (bulk["updated.0.id"], bulk["updated.0.tags.0"], bulk["updated.0.tags.1"]) == (
        str(insight.id),
        "'=cmd()",
        "b",
    )
    assert [row["id"] for row in mine] == [str(insight.id)]
