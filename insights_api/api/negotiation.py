"""Content negotiation that answers an unknown `?format=` with 406 naming the choices, not a 404."""

from __future__ import annotations

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer


class ContentNegotiation(DefaultContentNegotiation):
    def filter_renderers(self, renderers: list[BaseRenderer], format: str) -> list[BaseRenderer]:
        matching = [renderer for renderer in renderers if renderer.format == format]
        if not matching:
            choices = ", ".join(sorted({renderer.format for renderer in renderers}))
            raise NotAcceptable(f"Unsupported format {format!r}; use one of: {choices}.")
        return matching
