"""`/`: what this service is, for whoever opens its address — a small page for a browser, the same
facts as JSON for an API client (whichever its `Accept` header prefers; JSON unless it asks for HTML)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

ABOUT = "Keep, share and find saved product-analytics insights. Wire-compatible with PostHog's Insights API."
LINKS = {
    "swagger_ui": ("Swagger UI", "/api/schema/swagger-ui/", "try every operation in the browser"),
    "redoc": ("Redoc", "/api/schema/redoc/", "the API reference"),
    "schema": ("OpenAPI schema", "/api/schema/", "for SDK generators (YAML; ?format=json for JSON)"),
    "health": ("Health", "/_health", "the process answers"),
    "ready": ("Readiness", "/_ready", "PostgreSQL, Redis and a query worker answer"),
}
# How a new installation gets its first user and key (README, "Using it").
GET_A_KEY = "manage.py bootstrap --email you@example.com --organization Acme --project Web --json"


def home(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):  # in the API's error envelope, like every other route
        refused = JsonResponse(
            {"type": "invalid_request", "code": "method_not_allowed",
             "detail": f'Method "{request.method}" not allowed.', "attr": None},
            status=405,
        )  # fmt: skip
        refused["Allow"] = "GET, HEAD"
        return refused
    if request.get_preferred_type(["application/json", "text/html"]) == "text/html":  # curl's */*: JSON
        return render(
            request,
            "insights_api/home.html",
            {"about": ABOUT, "links": LINKS.values(), "get_a_key": GET_A_KEY},
        )
    return JsonResponse(
        {
            "name": "Insights API",
            "description": ABOUT,
            "links": {name: path for name, (_, path, _) in LINKS.items()},
            "authentication": "Authorization: Bearer <personal API key>, or a session from POST /api/login/.",
            "get_a_key": GET_A_KEY,
        }
    )
