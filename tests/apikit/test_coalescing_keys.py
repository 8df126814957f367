"""Which requests count as identical for coalescing (docs/queries.md)."""

from __future__ import annotations

import json

from django.test import RequestFactory

from apikit.coalescing import key_of

factory = RequestFactory()


def post(path: str, body: dict) -> str:
    return key_of(factory.post(path, json.dumps(body), content_type="application/json"))


def test_client_query_id_and_session_id_do_not_split_identical_requests():
    query = {"kind": "TrendsQuery"}

    assert post(
        "/api/projects/1/query/", {"query": query, "client_query_id": "a", "session_id": "s1"}
    ) == post("/api/projects/1/query", {"session_id": "s2", "query": query, "client_query_id": "b"})
    assert key_of(
        factory.get("/api/projects/1/insights/5/", {"client_query_id": "x", "refresh": "blocking"})
    ) == (key_of(factory.get("/api/projects/1/insights/5", {"refresh": "blocking"})))


def test_anything_else_does_split_them():
    base = key_of(factory.get("/api/projects/1/insights/5/", {"refresh": "blocking"}))

    assert base != key_of(factory.get("/api/projects/2/insights/5/", {"refresh": "blocking"}))
    assert base != key_of(factory.get("/api/projects/1/insights/5/", {"refresh": "force_blocking"}))
    assert base != key_of(
        factory.get("/api/projects/1/insights/5/", {"refresh": "blocking", "format": "csv"})
    )
    assert post("/api/projects/1/query/", {"query": {"kind": "TrendsQuery"}}) != post(
        "/api/projects/1/query/", {"query": {"kind": "TrendsQuery", "interval": "week"}}
    )


def test_the_environments_alias_is_the_same_request_as_the_projects_route():
    query = {"query": {"kind": "TrendsQuery"}}

    assert post("/api/environments/1/query/", query) == post("/api/projects/1/query/", query)
    assert key_of(factory.get("/api/environments/1/insights/5", {"refresh": "blocking"})) == (
        key_of(factory.get("/api/projects/1/insights/5/", {"refresh": "blocking"}))
    )
    assert post("/api/environments/2/query/", query) != post("/api/projects/1/query/", query)
