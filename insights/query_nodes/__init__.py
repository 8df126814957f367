"""Query nodes: the JSON that says what an insight computes or shows (docs/queries.md, docs/posthog-clients.md), validated with
pydantic. `query_parse` is the single entry point, for insights and `generate_metadata` alike; it
raises InvalidQuery with a readable reason.

- common.py: property filters, series, date ranges, breakdowns;
- insight.py: the six insight queries and `InsightVizNode`;
- data.py: event, person and group lists, SQL, Hog, `DataTableNode` and `DataVisualizationNode`.
"""

from __future__ import annotations

import hashlib
import json
from typing import Annotated

from pydantic import BaseModel, Field, ValidationError

from infra.json_types import JSONObject
from insights.query_nodes import data, insight
from insights.query_nodes.common import (
    ActionsNode,
    BreakdownFilter,
    DateRange,
    EventsNode,
    PropertyFilter,
    PropertyGroup,
)
from insights.query_nodes.data import DataTableNode, DataVisualizationNode
from insights.query_nodes.insight import InsightVizNode, TrendsInsightVizNode, TrendsQuery

__all__ = [
    "NODE_KINDS",
    "ActionsNode",
    "AnyQueryNode",
    "BreakdownFilter",
    "DataTableNode",
    "DataVisualizationNode",
    "DateRange",
    "EventsNode",
    "InsightVizNode",
    "InvalidQuery",
    "PropertyFilter",
    "PropertyGroup",
    "QueryNode",
    "RunnableQueryNode",
    "TrendsQuery",
    "query_fingerprint",
    "query_parse",
    "query_source",
]

MAX_QUERY_BYTES = 256 * 1024
MAX_QUERY_DEPTH = 32

# The kinds a query (an insight's, or `generate_metadata`'s) may have at its top.
AnyQueryNode = (
    InsightVizNode
    | TrendsQuery
    | insight.FunnelsQuery
    | insight.RetentionQuery
    | insight.PathsQuery
    | insight.StickinessQuery
    | insight.LifecycleQuery
    | data.EventsQuery
    | data.ActorsQuery
    | data.GroupsQuery
    | data.HogQLQuery
    | data.HogQuery
    | DataTableNode
    | DataVisualizationNode
)
QueryNode = Annotated[AnyQueryNode, Field(discriminator="kind")]
# What the query route runs today (the Trends engine); other kinds answer `unsupported_query_kind`.
RunnableQueryNode = Annotated[TrendsQuery | TrendsInsightVizNode, Field(discriminator="kind")]
INSIGHT_SOURCE_KINDS = (
    "TrendsQuery",
    "FunnelsQuery",
    "RetentionQuery",
    "PathsQuery",
    "StickinessQuery",
    "LifecycleQuery",
)
NODE_KINDS = (
    "InsightVizNode",
    *INSIGHT_SOURCE_KINDS,
    "EventsQuery",
    "ActorsQuery",
    "GroupsQuery",
    "HogQLQuery",
    "HogQuery",
    "DataTableNode",
    "DataVisualizationNode",
)
# pydantic puts the chosen union member's tag in error paths; readers do not need it.
DISCRIMINATOR_TAGS = frozenset(
    {
        *NODE_KINDS,
        "EventsNode",
        "ActionsNode",
        "InsightActorsQuery",
        "FunnelsActorsQuery",
        "StickinessActorsQuery",
    }
)


class _Root(BaseModel):
    node: QueryNode


class InvalidQuery(ValueError):
    """The value is not a query node this service accepts; the message says why."""


def query_parse(value: object) -> AnyQueryNode:
    """Validate a query node and return it as a model; raise InvalidQuery otherwise."""
    if not isinstance(value, dict):
        raise InvalidQuery("A query must be a JSON object with a 'kind'.")
    if value.get("kind") not in NODE_KINDS:
        raise InvalidQuery(
            f"Unknown query kind {value.get('kind')!r}; expected one of {', '.join(NODE_KINDS)}."
        )
    _check_json(value, depth=0)
    if len(json.dumps(value)) > MAX_QUERY_BYTES:
        raise InvalidQuery(f"A query may be at most {MAX_QUERY_BYTES} bytes of JSON.")
    try:
        return _Root.model_validate({"node": value}).node
    except ValidationError as exc:
        error = exc.errors()[0]
        path = ".".join(str(part) for part in error["loc"][1:] if part not in DISCRIMINATOR_TAGS) or "query"
        raise InvalidQuery(f"{path}: {error['msg'].removeprefix('Value error, ')}") from None


def query_source(node: AnyQueryNode) -> AnyQueryNode:
    """The insight query inside an InsightVizNode, or the node itself."""
    return node.source if isinstance(node, InsightVizNode) else node


def query_fingerprint(value: JSONObject) -> str:
    """A stable hash of a query's JSON (key order and whitespace do not matter), for cache keys."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _check_json(value: object, *, depth: int) -> None:
    """What pydantic does not check: depth and NUL characters (PostgreSQL rejects them in jsonb).
    Integers of any size are kept where the service does not interpret them; the fields it does
    interpret declare their bounds."""
    if depth > MAX_QUERY_DEPTH:
        raise InvalidQuery(f"A query may nest at most {MAX_QUERY_DEPTH} levels.")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidQuery("A query may not contain NUL characters.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_json(key, depth=depth + 1)
            _check_json(item, depth=depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, depth=depth + 1)
