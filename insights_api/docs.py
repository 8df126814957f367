"""The schema and its two viewers, as drf-spectacular serves them, with two changes.

- Their errors use the API's JSON envelope: the viewers render HTML templates, so DRF would
  otherwise answer a wrong method with a bare "405 Method Not Allowed" page, and OPTIONS (whose
  answer is data, not a page) with a 500 from the template renderer.
- Swagger UI loads its start-up script from a URL instead of inlining it, so the docs pages run
  under a Content-Security-Policy without 'unsafe-inline' scripts (apikit/security.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

if TYPE_CHECKING:  # what the mixin is mixed into: the viewers, which are DRF views
    from rest_framework.views import APIView as _View
else:
    _View = object


class _EnvelopeErrors(_View):
    # GET only: OPTIONS would describe the view as data, which an HTML template cannot render.
    http_method_names: Sequence[str] = ["get", "head"]

    def finalize_response(
        self, request: Request, response: Response, *args: object, **kwargs: object
    ) -> Response:
        if response.status_code >= 400:
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)


class SchemaView(_EnvelopeErrors, SpectacularAPIView):
    pass


class SwaggerView(_EnvelopeErrors, SpectacularSwaggerSplitView):
    pass


class RedocView(_EnvelopeErrors, SpectacularRedocView):
    template_name = "insights_api/redoc.html"  # drf-spectacular's, without its Google Fonts links
