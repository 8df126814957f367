"""Another organization's data is never visible: every route answers 404, and nothing changes."""

from __future__ import annotations

import pytest

from insights.models import Insight
from tagging.models import TaggedItem
from viewtracking.models import InsightViewed

pytestmark = pytest.mark.django_db

TRENDS = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode"}]}


@pytest.fixture
def foreign_routes(insights_url, make_insight):
    insight = make_insight(name="Secret", tags=["confidential"])
    detail = f"{insights_url}{insight.id}/"
    return insight, [
        ("get", insights_url, None),
        ("get", detail, None),
        ("get", f"{insights_url}{insight.short_id}/", None),
        ("get", f"{detail}activity/", None),
        ("get", f"{insights_url}activity/", None),
        ("post", insights_url, {"name": "planted"}),
        ("put", detail, {"name": "hijacked"}),
        ("patch", detail, {"name": "hijacked", "deleted": True}),
        ("post", f"{insights_url}viewed/", {"insight_ids": [insight.id]}),
        ("get", f"{insights_url}my_last_viewed/", None),
        ("get", f"{insights_url}trending/", None),
        ("get", f"{detail}views/", None),
        ("get", f"{detail}viewers/", None),
        ("get", f"{insights_url}usage/", None),
        ("post", f"{insights_url}cancel/", {"client_query_id": "q"}),
        ("post", f"{insights_url}bulk_update_tags/", {"ids": [insight.id], "action": "set", "tags": []}),
        ("post", f"{insights_url}bulk_delete/", {"ids": [insight.id]}),
        ("post", f"{insights_url}bulk_restore/", {"ids": [insight.id]}),
        ("get", insights_url.replace("/insights/", "/tags/"), None),
        ("post", insights_url.replace("/insights/", "/tags/rename/"), {"from": "confidential", "to": "x"}),
        ("post", insights_url.replace("/insights/", "/tags/delete/"), {"name": "confidential"}),
        ("post", f"{insights_url}generate_metadata/", {"query": TRENDS}),
        ("post", insights_url.replace("/insights/", "/query/"), {"query": TRENDS}),
        ("get", insights_url.replace("/insights/", f"/query/{'a' * 32}/"), None),
    ]


@pytest.mark.parametrize("session", [False, True], ids=["api-key", "session"])
def test_stranger_gets_404_on_every_route_of_a_foreign_project(client_for, stranger, foreign_routes, session):
    insight, routes = foreign_routes
    client = client_for(stranger, session=session)

    for method, url, body in routes:
        response = getattr(client, method)(url, body, format="json") if body else getattr(client, method)(url)
        assert response.status_code == 404, (method, url)
        assert b"Secret" not in response.content and b"confidential" not in response.content

    insight.refresh_from_db()
    assert (insight.name, insight.deleted) == ("Secret", False)
    assert Insight.objects.count() == 1
    assert list(TaggedItem.objects.filter(insight=insight).values_list("tag__name", flat=True)) == [
        "confidential"
    ]
    assert not InsightViewed.objects.filter(user=stranger).exists()


def test_an_insight_is_not_reachable_through_another_projects_url(
    client_for, stranger, stranger_project, make_insight
):
    insight = make_insight(name="Secret")
    client = client_for(stranger)

    response = client.get(f"/api/projects/{stranger_project.id}/insights/{insight.id}/")

    assert response.status_code == 404


def test_the_owners_list_never_shows_a_strangers_insights(
    owner_api, insights_url, make_insight, stranger_project
):
    make_insight(name="Theirs", in_project=stranger_project)
    mine = make_insight(name="Mine")

    assert [row["id"] for row in owner_api.get(insights_url).json()["results"]] == [mine.id]


def test_teammates_see_the_same_project(client_for, teammate, insights_url, make_insight):
    insight = make_insight(name="Shared")

    assert client_for(teammate).get(f"{insights_url}{insight.id}/").json()["name"] == "Shared"


@pytest.mark.parametrize("project_id", ["0", "424242", "99999999999999999999999999"])
def test_a_project_that_does_not_exist_is_404(owner_api, project_id):
    response = owner_api.get(f"/api/projects/{project_id}/insights/")

    assert response.status_code == 404
    assert response.json()["detail"] == "Project not found."
