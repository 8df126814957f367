"""The query kinds PostHog's frontend saves (docs/posthog-clients.md): accepted as insights and by
`generate_metadata` through one validator, refused with the path of the first mistake, and
retrieved with `result: null` where this service cannot run them."""

from __future__ import annotations

import pytest

from insights.models import Insight

pytestmark = pytest.mark.django_db

SQL = "SELECT properties.$browser AS browser, count() FROM events WHERE event = '$pageview' GROUP BY browser"
TRENDS = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
FUNNEL = {
    "kind": "FunnelsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview"}, {"kind": "EventsNode", "event": "signed_up"}],
}

# What PostHog's frontend saves (its defaults for new table and SQL insights, its person modals).
SAVED_KINDS = {
    "events table": {
        "kind": "DataTableNode",
        "source": {"kind": "EventsQuery", "select": ["*", "event", "person", "timestamp"], "after": "-24h"},
        "full": True,
    },
    "persons table": {
        "kind": "DataTableNode",
        "source": {"kind": "ActorsQuery", "select": ["person", "created_at"], "search": "acme"},
    },
    "legacy events table": {"kind": "DataTableNode", "source": {"kind": "EventsNode", "event": "$pageview"}},
    "SQL table": {"kind": "DataTableNode", "source": {"kind": "HogQLQuery", "query": SQL}},
    "SQL insight": {
        "kind": "DataVisualizationNode",
        "source": {"kind": "HogQLQuery", "query": SQL, "filters": {"dateRange": {"date_from": "-30d"}}},
        "display": "ActionsBar",
        "chartSettings": {"yAxis": [{"column": "count()"}]},
    },
    "bare SQL": {"kind": "HogQLQuery", "query": SQL},
    "groups": {"kind": "GroupsQuery", "group_type_index": 0, "search": "acme"},
    "Hog": {"kind": "HogQuery", "code": "return 1 + 1"},
}

# What `generate_metadata` accepts besides: the person lists behind a point of an insight.
ACTORS_KINDS = {
    "persons of a trend's day": {
        "kind": "ActorsQuery",
        "source": {"kind": "InsightActorsQuery", "source": TRENDS, "day": "2026-11-30", "series": 0},
    },
    "persons who dropped off a funnel": {
        "kind": "ActorsQuery",
        "source": {"kind": "FunnelsActorsQuery", "source": FUNNEL, "funnelStep": -2},
    },
    "groups of a type": {"kind": "GroupsQuery", "group_type_index": 1},
}

MALFORMED = {
    "a table without a source": ({"kind": "DataTableNode"}, "source"),
    "a table over an insight query": ({"kind": "DataTableNode", "source": TRENDS}, "source"),
    "a SQL insight over an events list": (
        {"kind": "DataVisualizationNode", "source": {"kind": "EventsQuery", "select": ["*"]}},
        "source",
    ),
    "SQL without its text": ({"kind": "HogQLQuery"}, "query"),
    "empty SQL": ({"kind": "HogQLQuery", "query": ""}, "query"),
    "an events list selecting nothing": ({"kind": "EventsQuery", "select": []}, "select"),
    "a funnel step 0": (
        {"kind": "ActorsQuery", "source": {"kind": "FunnelsActorsQuery", "source": FUNNEL, "funnelStep": 0}},
        "source",
    ),
    "actors of a funnel over a trend": (
        {"kind": "ActorsQuery", "source": {"kind": "FunnelsActorsQuery", "source": TRENDS}},
        "source.source",
    ),
    "a group type past the fifth": ({"kind": "GroupsQuery", "group_type_index": 9}, "group_type_index"),
    "a negative row limit": ({"kind": "GroupsQuery", "group_type_index": 0, "limit": -1}, "limit"),
}


@pytest.mark.parametrize("query", SAVED_KINDS.values(), ids=SAVED_KINDS.keys())
def test_every_kind_the_frontend_saves_is_kept_and_retrieved_with_a_null_result(
    owner_api, insights_url, query
):
    created = owner_api.post(insights_url, {"name": "Saved", "query": query}, format="json")
    assert created.status_code == 201, created.json()

    retrieved = owner_api.get(f"{insights_url}{created.json()['id']}/")

    assert retrieved.status_code == 200
    assert retrieved.json()["query"] == query
    assert retrieved.json()["result"] is None


@pytest.mark.parametrize(
    "query", [*SAVED_KINDS.values(), *ACTORS_KINDS.values()], ids=[*SAVED_KINDS, *ACTORS_KINDS]
)
def test_generate_metadata_names_every_kind_with_the_heuristic(owner_api, insights_url, query):
    response = owner_api.post(f"{insights_url}generate_metadata/", {"query": query}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["provider"] == "heuristic"
    assert response.json()["name"] and response.json()["description"].endswith(".")
    assert "SELECT" not in response.json()["name"] + response.json()["description"]


@pytest.mark.parametrize(("query", "path"), MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_node_is_refused_with_its_path_by_create_and_generate_metadata_alike(
    owner_api, insights_url, query, path
):
    created = owner_api.post(insights_url, {"name": "Broken", "query": query}, format="json")
    described = owner_api.post(f"{insights_url}generate_metadata/", {"query": query}, format="json")

    for response in (created, described):
        assert response.status_code == 400
        assert response.json()["attr"] == "query"
    assert created.json()["detail"].startswith(path), created.json()["detail"]
    assert not Insight.objects.exists()
