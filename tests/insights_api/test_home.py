"""`/` (insights_api/home.py): a page for a browser, the same facts as JSON for an API client."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def test_an_api_client_gets_json_naming_the_docs_and_how_to_authenticate(api):
    for accept in ("*/*", "application/json"):  # curl's, and an explicit one
        response = api.get("/", HTTP_ACCEPT=accept)

        assert response.status_code == 200 and response["Content-Type"] == "application/json"
        body = response.json()
        assert body["name"] == "Insights API" and "Bearer" in body["authentication"]
        assert body["links"] == {
            "swagger_ui": "/api/schema/swagger-ui/",
            "redoc": "/api/schema/redoc/",
            "schema": "/api/schema/",
            "health": "/_health",
            "ready": "/_ready",
        }


def test_a_browser_gets_a_page_linking_the_docs_health_and_how_to_get_a_key(api):
    response = api.get("/", HTTP_ACCEPT=BROWSER)
    page = response.content.decode()

    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    assert "<title>Insights API</title>" in page
    for path in ("/api/schema/swagger-ui/", "/api/schema/redoc/", "/api/schema/", "/_health", "/_ready"):
        assert f'href="{path}"' in page
    assert "manage.py bootstrap" in page


def test_another_method_is_refused_in_the_error_envelope(api):
    response = api.post("/", {}, format="json")

    assert response.status_code == 405 and response["Allow"] == "GET, HEAD"
    assert response.json()["code"] == "method_not_allowed"
