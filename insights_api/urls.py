"""The routing table. Every API route answers with or without a trailing slash."""

from __future__ import annotations

from django.urls import include, path, re_path

from accounts.api.views import LoginView, LogoutView, MeView
from apikit.routers import OptionalSlashRouter
from insights.api.query_views import QueryViewSet
from insights.api.views import InsightViewSet
from insights_api import health, home
from insights_api.docs import RedocView, SchemaView, SwaggerView
from tagging.api.views import TagViewSet

# Project-scoped resources: /api/projects/{project_id}/<resource>/
project_router = OptionalSlashRouter()
project_router.register(r"insights", InsightViewSet, basename="insights")
project_router.register(r"query", QueryViewSet, basename="query")
# The tags of the project's insights: list, rename or merge, delete.
project_router.register(r"tags", TagViewSet, basename="tags")

urlpatterns = [
    # What this is, for whoever opens the address: a page for browsers, JSON for API clients.
    path("", home.home, name="home"),
    # Session authentication for the frontend, and the caller's identity.
    re_path(r"^api/login/?$", LoginView.as_view(), name="login"),
    re_path(r"^api/logout/?$", LogoutView.as_view(), name="logout"),
    re_path(r"^api/users/@me/?$", MeView.as_view(), name="users-me"),
    # Everything that belongs to a project; and the same views again under `environments`, the name
    # PostHog's frontend uses (docs/posthog-clients.md): one set of views, so the two can never drift apart.
    re_path(r"^api/projects/(?P<project_id>\d+)/", include(project_router.urls)),
    re_path(r"^api/environments/(?P<project_id>\d+)/", include((project_router.urls, "environments"))),
    # The OpenAPI schema and its two viewers (assets served locally, no CDN).
    re_path(r"^api/schema/?$", SchemaView.as_view(), name="schema"),
    re_path(r"^api/schema/swagger-ui/?$", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    re_path(r"^api/schema/redoc/?$", RedocView.as_view(url_name="schema"), name="redoc"),
    # Liveness and readiness for orchestrators; metrics for Prometheus.
    path("_health", health.health, name="health"),
    path("_ready", health.ready, name="ready"),
    path("metrics", health.metrics, name="metrics"),
]

handler400 = "apikit.exceptions.handler400"
handler403 = "apikit.exceptions.handler403"
handler404 = "apikit.exceptions.handler404"
handler500 = "apikit.exceptions.handler500"
