"""The heuristic provider: names and describes a query from its structure alone, offline.

Deterministic: the same query always gets the same name. The rules follow docs/insight-actions.md#generate_metadata: Title Case,
humanised event names, math named unless it is the default total, "by <property>" only for a
breakdown, funnels as "A → B Conversion", and no filler words. Insight queries are named in
insights.py; lists, persons, groups, SQL (sql.py) and Hog in lists.py; the words themselves in
wording.py; a table or a visualization is named for what it shows (its source).
"""

from __future__ import annotations

from ai_metadata.heuristic.insights import INSIGHT_DESCRIBERS
from ai_metadata.heuristic.lists import LIST_DESCRIBERS
from ai_metadata.heuristic.wording import Describer, Metadata, finish_description, finish_name, humanize_event
from insights.query_nodes import DataTableNode, DataVisualizationNode, InsightVizNode
from insights.query_nodes.common import Node

__all__ = ["finish_description", "finish_name", "heuristic_metadata", "humanize_event"]

DESCRIBERS: dict[type, Describer] = {**INSIGHT_DESCRIBERS, **LIST_DESCRIBERS}


def heuristic_metadata(node: Node) -> Metadata:
    """Name and description for a parsed query node (see insights.query_nodes.query_parse)."""
    while isinstance(node, InsightVizNode | DataTableNode | DataVisualizationNode):
        node = node.source
    name, description = DESCRIBERS[type(node)](node)
    return {"name": finish_name(name), "description": finish_description(description)}
