"""The OpenAPI components of query nodes, generated from the pydantic models that validate them, so
the schema and the validator cannot disagree. Two roots: `QueryNode` (every kind an insight or
`generate_metadata` accepts) and `RunnableQueryNode` (what the query route runs)."""

from __future__ import annotations

import copy
import functools
from typing import Any

from pydantic import BaseModel, TypeAdapter

from apikit.schema import document_default
from insights.query_nodes import QueryNode, RunnableQueryNode

ROOT_DESCRIPTIONS = {
    "QueryNode": (
        'A query node, chosen by `kind`, e.g. `{"kind": "InsightVizNode", "source": {"kind": "TrendsQuery", '
        '"series": [{"kind": "EventsNode", "event": "$pageview"}]}}`. Fields not listed here (display '
        "options) are kept as sent."
    ),
    "RunnableQueryNode": (
        "A query the query route runs: a `TrendsQuery`, or an `InsightVizNode` wrapping one."
    ),
}


class _Roots(BaseModel):
    QueryNode: QueryNode
    RunnableQueryNode: RunnableQueryNode


def query_node_components() -> dict[str, dict[str, Any]]:
    """Every query-node schema component by name: the two roots and each node they reference. A
    fresh copy each time: drf-spectacular's postprocessing edits components in place."""
    return copy.deepcopy(_generated_components())


@functools.cache
def _generated_components() -> dict[str, dict[str, Any]]:
    generated = TypeAdapter(_Roots).json_schema(ref_template="#/components/schemas/{model}")
    components = {name: _tidy(schema) for name, schema in generated["$defs"].items()}
    for name, schema in generated["properties"].items():
        components[name] = {**_tidy(schema), "description": ROOT_DESCRIPTIONS[name]}
    return components


def _tidy(schema: dict[str, Any]) -> dict[str, Any]:
    """Without pydantic's titles (generators would name types after them) and with defaults moved
    into descriptions (generators read a default as "always present", in requests and answers)."""
    schema = {key: value for key, value in schema.items() if key != "title"}
    choices = [option for option in schema.get("anyOf", []) if "enum" in option]
    if len(schema.get("anyOf", [])) == 2 and choices and {"type": "null"} in schema["anyOf"]:
        # An optional choice as one nullable enum, which becomes a named enum component.
        del schema["anyOf"]
        schema.update(type=[choices[0]["type"], "null"], enum=[*choices[0]["enum"], None])
    for key in ("items", "additionalProperties", "not", "if", "then", "else"):
        if isinstance(schema.get(key), dict):
            schema[key] = _tidy(schema[key])
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            schema[key] = [_tidy(item) for item in schema[key]]
    if "properties" in schema:
        schema["properties"] = {name: _tidy(field) for name, field in schema["properties"].items()}
        for field in schema["properties"].values():
            document_default(field)
    return schema
