"""API key scopes (docs/tenancy-and-errors.md): the scope-by-action matrix, and keys limited to projects."""

from __future__ import annotations

import pytest

from accounts.models import Project

pytestmark = pytest.mark.django_db

READ, WRITE = "insight:read", "insight:write"
QUERY = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}


def _call(client, method: str, url: str, body: dict | None = None):
    return (
        getattr(client, method)(url, body, format="json")
        if body is not None
        else getattr(client, method)(url)
    )


@pytest.fixture
def routes(insights_url, make_insight):
    insight = make_insight(name="Target")
    detail = f"{insights_url}{insight.id}/"
    tags_url = insights_url.replace("insights/", "tags/")
    # (name, method, url, body, required scope)
    return [
        ("list", "get", insights_url, None, READ),
        ("retrieve", "get", detail, None, READ),
        ("activity", "get", f"{detail}activity/", None, READ),
        ("all_activity", "get", f"{insights_url}activity/", None, READ),
        ("create", "post", insights_url, {"name": "new"}, WRITE),
        ("update", "put", detail, {"name": "put"}, WRITE),
        ("partial_update", "patch", detail, {"name": "patched"}, WRITE),
        ("viewed", "post", f"{insights_url}viewed/", {"insight_ids": [insight.id]}, READ),
        ("my_last_viewed", "get", f"{insights_url}my_last_viewed/", None, READ),
        ("trending", "get", f"{insights_url}trending/", None, READ),
        ("views", "get", f"{detail}views/", None, READ),
        ("viewers", "get", f"{detail}viewers/", None, READ),
        ("usage", "get", f"{insights_url}usage/", None, READ),
        ("cancel", "post", f"{insights_url}cancel/", {"client_query_id": "q1"}, READ),
        (
            "bulk_update_tags",
            "post",
            f"{insights_url}bulk_update_tags/",
            {"ids": [insight.id], "action": "add", "tags": ["x"]},
            WRITE,
        ),
        ("generate_metadata", "post", f"{insights_url}generate_metadata/", {"query": QUERY}, WRITE),
        ("query", "post", insights_url.replace("insights/", "query/"), {"query": QUERY}, READ),
        ("tags", "get", tags_url, None, READ),
        ("tags_rename", "post", f"{tags_url}rename/", {"from": "x", "to": "y"}, WRITE),
        ("tags_delete", "post", f"{tags_url}delete/", {"name": "y"}, WRITE),
        # Last: the insight stays deleted for none of the routes above.
        ("bulk_delete", "post", f"{insights_url}bulk_delete/", {"ids": [insight.id]}, WRITE),
        ("bulk_restore", "post", f"{insights_url}bulk_restore/", {"ids": [insight.id]}, WRITE),
    ]


@pytest.mark.parametrize(
    ("scopes", "granted"),
    [
        (["*"], {READ, WRITE}),
        ([WRITE], {READ, WRITE}),  # write implies read
        ([READ], {READ}),
    ],
)
def test_scope_by_action_matrix(client_for, owner, routes, scopes, granted):
    client = client_for(owner, scopes=scopes)

    for name, method, url, body, required in routes:
        response = _call(client, method, url, body)
        if required in granted:
            assert response.status_code in (200, 201), (name, response.content)
        else:
            assert response.status_code == 403, name
            assert response.json()["detail"] == f"API key missing required scope '{required}'", name


def test_sessions_are_not_limited_by_scopes(client_for, owner, routes):
    client = client_for(owner, session=True)

    for name, method, url, body, _ in routes:
        assert _call(client, method, url, body).status_code in (200, 201), name


def test_a_key_limited_to_another_project_gets_403(client_for, owner, org, insights_url, routes):
    elsewhere = Project.objects.create(organization=org, name="Second")
    client = client_for(owner, projects=[elsewhere.id])

    for name, method, url, body, _ in routes:
        response = _call(client, method, url, body)
        assert response.status_code == 403, name
        assert response.json()["detail"] == "API key does not have access to this project."


def test_a_key_limited_to_this_project_works(client_for, owner, project, insights_url):
    assert client_for(owner, projects=[project.id]).get(insights_url).status_code == 200
