"""The routing table. Every API route answers with or without a trailing slash."""

from __future__ import annotations

from django.urls import include, path, re_path

from accounts.api.views import LoginView, LogoutView, MeView
from ai_metadata.api.actions import InsightMetadataActions
from apikit.routers import OptionalSlashRouter
from insights.api.access_actions import InsightAccessActions
from insights.api.bulk_actions import InsightBulkDeleteActions
from insights.api.cancel_actions import InsightCancelActions
from insights.api.query_views import QueryViewSet
from insights.api.views import InsightRoutes
from insights_api import health, home
from insights_api.docs import RedocView, SchemaView, SwaggerView
from tagging.api.actions import InsightTagActions
from tagging.api.views import TagViewSet
from viewtracking.api.actions import InsightViewActions
from viewtracking.api.usage_actions import InsightUsageActions


class InsightViewSet(
    InsightViewActions,
    InsightUsageActions,
    InsightTagActions,
    InsightMetadataActions,
    InsightCancelActions,
    InsightAccessActions,
    InsightBulkDeleteActions,
    InsightRoutes,
):
    """/api/projects/{project_id}/insights/: insights' own routes (InsightRoutes) with the actions each
    app adds to them, composed here so no app's API imports another's (PROJECT_ROUTES says which
    module implements each)."""


# Every route under /api/projects/{project_id}/ (and again under /api/environments/{project_id}/):
# method, path, the viewset's action, and the module that implements it. `{id}` is an insight's id or
# short_id; every path also answers without its trailing slash. tests/insights_api/test_routes.py holds
# this table to what the router serves.
# fmt: off
PROJECT_ROUTES = (
    ("GET",    "insights/",                       "list",                   "insights/api/views.py"),
    ("POST",   "insights/",                       "create",                 "insights/api/views.py"),
    ("GET",    "insights/{id}/",                  "retrieve",               "insights/api/views.py"),
    ("PUT",    "insights/{id}/",                  "update",                 "insights/api/views.py"),
    ("PATCH",  "insights/{id}/",                  "partial_update",         "insights/api/views.py"),
    ("GET",    "insights/activity/",              "all_activity",           "insights/api/views.py"),
    ("GET",    "insights/{id}/activity/",         "activity",               "insights/api/views.py"),
    ("GET",    "insights/{id}/access_controls/",  "access_controls",        "insights/api/access_actions.py"),
    ("PUT",    "insights/{id}/access_controls/",  "access_controls_update", "insights/api/access_actions.py"),
    ("POST",   "insights/cancel/",                "cancel",                 "insights/api/cancel_actions.py"),
    ("POST",   "insights/bulk_delete/",           "bulk_delete",            "insights/api/bulk_actions.py"),
    ("POST",   "insights/bulk_restore/",          "bulk_restore",           "insights/api/bulk_actions.py"),
    ("POST",   "insights/bulk_update_tags/",      "bulk_update_tags",       "tagging/api/actions.py"),
    ("POST",   "insights/generate_metadata/",     "generate_metadata",      "ai_metadata/api/actions.py"),
    ("POST",   "insights/viewed/",                "viewed",                 "viewtracking/api/actions.py"),
    ("GET",    "insights/my_last_viewed/",        "my_last_viewed",         "viewtracking/api/actions.py"),
    ("GET",    "insights/trending/",              "trending",               "viewtracking/api/actions.py"),
    ("GET",    "insights/usage/",                 "usage",                  "viewtracking/api/usage_actions.py"),
    ("GET",    "insights/{id}/views/",            "views",                  "viewtracking/api/usage_actions.py"),
    ("GET",    "insights/{id}/viewers/",          "viewers",                "viewtracking/api/usage_actions.py"),
    ("POST",   "query/",                          "create",                 "insights/api/query_views.py"),
    ("GET",    "query/{id}/",                     "retrieve",               "insights/api/query_views.py"),
    ("DELETE", "query/{id}/",                     "destroy",                "insights/api/query_views.py"),
    ("GET",    "tags/",                           "list",                   "tagging/api/views.py"),
    ("POST",   "tags/rename/",                    "rename",                 "tagging/api/views.py"),
    ("POST",   "tags/delete/",                    "delete_tag",             "tagging/api/views.py"),
)
# fmt: on

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
