"""The wiring's table of routes (insights_api/urls.py, PROJECT_ROUTES) is what the router serves."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

from insights_api.urls import PROJECT_ROUTES, project_router

ROOT = Path(__file__).resolve().parents[2]


def served() -> set[tuple[str, str, str, str]]:
    """Every (method, path, action, implementing file) the project router serves."""
    routes = set()
    for prefix, viewset, _ in project_router.registry:
        for route in project_router.get_routes(viewset):
            path = route.url.format(prefix=prefix, lookup="{id}", trailing_slash="/")
            path = re.sub(r"^\^|\$$", "", path)
            for method, action in route.mapping.items():
                handler = getattr(viewset, action, None)
                if handler is None:  # a method the route knows but this viewset does not serve
                    continue
                source = Path(inspect.getfile(handler)).relative_to(ROOT).as_posix()
                routes.add((method.upper(), path, action, source))
    return routes


def test_the_route_table_names_every_route_the_router_serves_and_the_module_that_implements_it():
    assert set(PROJECT_ROUTES) == served()
    assert len(PROJECT_ROUTES) == len(set(PROJECT_ROUTES))  # no route listed twice
