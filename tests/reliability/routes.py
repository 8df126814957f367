"""Every route the service answers, read from the URL resolver, so the sweeps cover a new route
without anyone listing it; and, per route and method, what a correct request looks like and which
scope docs/tenancy-and-errors.md says it needs (data the tests check the service against, never read from the code).

A route added later fails `test_every_route_is_classified` until it gets a sample here; from then on
the bad-input sweep, the isolation matrix and the Redis-outage run all cover it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

# Routes anyone may call without credentials (login, the docs, health and metrics).
PUBLIC = frozenset({"home", "login", "schema", "swagger-ui", "redoc", "health", "ready", "metrics"})
# docs/tenancy-and-errors.md's scope table, by viewset action; actions it does not name (activity, async query status)
# are reads.
WRITE_ACTIONS = frozenset(
    {"create", "update", "partial_update", "bulk_update_tags", "generate_metadata", "access_controls_update",
     "bulk_delete", "bulk_restore", "rename", "delete_tag"}
)  # fmt: skip
READ_ACTIONS = frozenset(
    {"list", "retrieve", "my_last_viewed", "trending", "viewed", "cancel", "activity", "all_activity",
     "access_controls", "views", "viewers", "usage"}
)  # fmt: skip
# The query route's `create` runs a query: a read (docs/tenancy-and-errors.md), unlike an insight's create; its
# `destroy` is `cancel` by another route (docs/posthog-clients.md).
READ_OVERRIDES = frozenset({("query-list", "POST"), ("query-detail", "DELETE")})

TRENDS = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}
INSIGHT_QUERY = {"kind": "InsightVizNode", "source": TRENDS}


@dataclass(frozen=True)
class Route:
    name: str  # the URL name, e.g. "insights-detail"
    regex: str  # the full pattern, prefixes included
    method: str  # an HTTP method that has a handler
    action: str | None  # the viewset action, None for plain views

    @property
    def is_public(self) -> bool:
        return self.name in PUBLIC

    @property
    def in_project(self) -> bool:
        return "(?P<project_id>" in self.regex

    @property
    def scope(self) -> str | None:
        """The API-key scope docs/tenancy-and-errors.md requires, or None for routes outside a project."""
        if not self.in_project:
            return None
        if (self.name, self.method) in READ_OVERRIDES or self.action in READ_ACTIONS:
            return "insight:read"
        if self.action in WRITE_ACTIONS:
            return "insight:write"
        raise AssertionError(f"{self.name} {self.method} ({self.action}): add its scope to routes.py")

    def path(self, **values: Any) -> str:
        """A concrete URL: each named group replaced by `values[name]`, with the trailing slash."""
        missing = set(re.findall(r"\(\?P<(\w+)>", self.regex)) - set(values)
        assert not missing, f"{self.name} needs a value for {missing}"
        path = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda match: str(values[match.group(1)]), self.regex)
        return "/" + path.replace("^", "").replace("$", "").replace("/?", "/").replace("\\", "")

    def __str__(self) -> str:
        return f"{self.method} {self.name}"


def every_route() -> list[Route]:
    """One Route per (URL pattern, HTTP method with a handler), in the routing table's order."""
    return [
        Route(pattern.name or regex, regex, method, action)
        for regex, pattern in _patterns(get_resolver().url_patterns, "")
        for method, action in _methods(pattern)
    ]


def _patterns(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern


def _methods(pattern: URLPattern) -> list[tuple[str, str | None]]:
    callback = pattern.callback
    if actions := getattr(callback, "actions", None):  # a DRF viewset route
        return [
            (method.upper(), action)
            for method, action in actions.items()
            if method not in ("head", "options")
        ]
    view_class = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
    if view_class is None:  # a function view: it answers every method alike
        return [("GET", None)]
    return [
        (method.upper(), None)
        for method in view_class.http_method_names
        if method not in ("head", "options", "trace") and hasattr(view_class, method)
    ]


@dataclass(frozen=True)
class Sample:
    """A correct request for a route and method: its query string and JSON body."""

    query: str = ""
    body: Any = None


def samples(*, insight_id: int, email: str, password: str) -> dict[tuple[str, str], Sample]:
    """A correct request per (route name, method). Every route must be here (see the module doc)."""
    return {
        ("home", "GET"): Sample(),
        ("login", "POST"): Sample(body={"email": email, "password": password}),
        ("logout", "POST"): Sample(),
        ("users-me", "GET"): Sample(),
        ("insights-list", "GET"): Sample(query="?search=secret"),
        ("insights-list", "POST"): Sample(body={"name": "Made by the sweep", "tags": ["swept", "swept-2"]}),
        ("insights-all-activity", "GET"): Sample(),
        ("insights-bulk-update-tags", "POST"): Sample(
            body={"ids": [insight_id], "action": "add", "tags": ["swept"]}
        ),
        # The sweeps call the routes in the routing table's order (a viewset's extra actions by name):
        # bulk_delete then bulk_restore, so the insight is live again; the tags routes, after the
        # insights', delete "swept-2" and rename "swept", which the insight created above carries.
        ("insights-bulk-delete", "POST"): Sample(body={"ids": [insight_id]}),
        ("insights-bulk-restore", "POST"): Sample(body={"ids": [insight_id]}),
        ("insights-cancel", "POST"): Sample(body={"client_query_id": "sweep-1"}),
        ("insights-generate-metadata", "POST"): Sample(body={"query": INSIGHT_QUERY}),
        ("insights-my-last-viewed", "GET"): Sample(),
        ("insights-trending", "GET"): Sample(query="?days=30"),
        ("insights-viewed", "POST"): Sample(body={"insight_ids": [insight_id]}),
        ("insights-usage", "GET"): Sample(query="?days=30"),
        ("insights-views", "GET"): Sample(query="?date_from=-30d&interval=week"),
        ("insights-viewers", "GET"): Sample(query="?days=30"),
        ("insights-detail", "GET"): Sample(),
        ("insights-detail", "PUT"): Sample(body={"name": "Put by the sweep", "query": INSIGHT_QUERY}),
        ("insights-detail", "PATCH"): Sample(body={"description": "Patched by the sweep"}),
        ("insights-activity", "GET"): Sample(),
        ("insights-access-controls", "GET"): Sample(),
        ("insights-access-controls", "PUT"): Sample(body={"access_level": "editor"}),
        ("tags-list", "GET"): Sample(query="?usage=true"),
        ("tags-rename", "POST"): Sample(body={"from": "swept", "to": "swept again"}),
        ("tags-delete", "POST"): Sample(body={"name": "swept-2"}),
        ("query-list", "POST"): Sample(body={"query": INSIGHT_QUERY, "client_query_id": "sweep-2"}),
        ("query-detail", "GET"): Sample(),
        ("query-detail", "DELETE"): Sample(),
        ("schema", "GET"): Sample(),
        ("swagger-ui", "GET"): Sample(),
        ("redoc", "GET"): Sample(),
        ("health", "GET"): Sample(),
        ("ready", "GET"): Sample(),
        ("metrics", "GET"): Sample(),
    }
