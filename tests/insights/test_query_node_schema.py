"""The published query-node schema and the validator are one definition: every node the validator
accepts the schema allows, and every node it refuses for a reason a schema can state, the schema
refuses too."""

from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml
from django.core.management import call_command

from insights.query_nodes import InvalidQuery, query_parse

pytestmark = pytest.mark.django_db

SERIES = [{"kind": "EventsNode", "event": "$pageview"}]
TRENDS = {"kind": "TrendsQuery", "series": SERIES}


@pytest.fixture(scope="module")
def components(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("schema") / "schema.yml"
    call_command("spectacular", "--file", str(path))
    return yaml.safe_load(path.read_text())["components"]["schemas"]


def allowed_by(components: dict, root: str, node: dict) -> bool:
    schema = {"$ref": f"#/components/schemas/{root}", "components": {"schemas": copy.deepcopy(components)}}
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    return validator.is_valid(node)


def accepted(node: dict) -> bool:
    try:
        query_parse(node)
    except InvalidQuery:
        return False
    return True


def trends(**fields) -> dict:
    return {**TRENDS, **fields}


def series(**fields) -> dict:
    return trends(series=[{"kind": "EventsNode", **fields}])


def prop(**fields) -> dict:
    return series(properties=[{"key": "$browser", **fields}])


NODES = [
    TRENDS,
    {"kind": "InsightVizNode", "source": TRENDS},
    {"kind": "InsightVizNode", "source": {"kind": "FunnelsQuery", "series": SERIES * 2}},
    {"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["*"]}},
    {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "select 1"}},
    {"kind": "ActorsQuery", "source": {"kind": "FunnelsActorsQuery", "source": {"kind": "FunnelsQuery", "series": SERIES * 2}, "funnelStep": -1}},
    trends(display="ActionsLineGraph", someNewOption={"nested": [1, 2**60]}),  # unknown fields are kept
    trends(interval="hour", dateRange={"date_from": "-24h", "date_to": None}),
    trends(dateRange={"date_from": "2026-02-01", "date_to": "2026-02-28T23:59:59+01:00"}),
    series(math="sum", math_property="revenue"),
    series(math="dau"),
    prop(operator="is_set"),
    prop(value=["Chrome", "Firefox"]),
    prop(operator="gt", value=2**53),
    series(properties={"type": "OR", "values": [{"key": "a", "value": 1}, {"type": "AND", "values": []}]}),
    # Refused, for reasons the schema states:
    {"kind": "TrendQuery", "series": SERIES},
    {"kind": "TrendsQuery", "seris": SERIES},
    trends(series=[]),
    trends(interval="fortnight"),
    trends(dateRange={"date_from": "yesterday"}),
    trends(dateRange={"date_from": "2026-02-30"}),
    series(math="totl"),
    series(math="p90"),
    series(math="sum", math_property=""),
    prop(),
    prop(operator="exact", value=None),
    prop(value=2**53 + 1),
    prop(value=[1, -(2**53) - 1]),
    prop(operator="startswith", value="x"),
    {"kind": "ActorsQuery", "source": {"kind": "FunnelsActorsQuery", "source": {"kind": "FunnelsQuery", "series": SERIES * 2}, "funnelStep": 0}},
    {"kind": "DataVisualizationNode", "source": {"kind": "HogQLQuery", "query": "select 1", "explain": 0}},
    trends(filterTestAccounts="true"),
]  # fmt: skip


@pytest.mark.parametrize("node", NODES, ids=range(len(NODES)))
def test_the_schema_allows_a_query_node_exactly_when_the_validator_accepts_it(components, node):
    assert allowed_by(components, "QueryNode", node) == accepted(node)


def test_the_query_route_schema_allows_only_the_kinds_it_runs(components):
    assert allowed_by(components, "RunnableQueryNode", TRENDS)
    assert allowed_by(components, "RunnableQueryNode", {"kind": "InsightVizNode", "source": TRENDS})
    funnel = {"kind": "FunnelsQuery", "series": SERIES * 2}
    assert not allowed_by(components, "RunnableQueryNode", funnel)
    assert not allowed_by(components, "RunnableQueryNode", {"kind": "InsightVizNode", "source": funnel})
