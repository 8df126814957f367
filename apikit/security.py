"""Content-Security-Policy on every response (Django 5.2 has no built-in one).

API answers are data, never pages: `default-src 'none'`, so a browser that renders one anyway (an
error message echoing part of a URL, say) runs nothing and loads nothing. The pages (`/` and the two
docs viewers) load only this service's own scripts, styles, images and fonts (Swagger UI's start-up
script comes from a URL, see insights_api/docs.py); inline styles are allowed because both viewers
set styles at run time, and Redoc builds its search index in a `blob:` worker. No page may be framed.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
DOCS_PAGES = frozenset({"swagger-ui", "redoc", "home"})  # URL names (insights_api/urls.py)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if HEADER not in response:
            match = getattr(request, "resolver_match", None)
            response[HEADER] = (
                DOCS_POLICY if match is not None and match.url_name in DOCS_PAGES else API_POLICY
            )
        return response
