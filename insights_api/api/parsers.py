"""JSON request bodies, hardened: a body too deep for the parser is a 400, not a RecursionError.

(Size is capped by Django's DATA_UPLOAD_MAX_MEMORY_SIZE, which DRF enforces for JSON bodies; the
exception handler turns it into a 413.)
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        encoding = (parser_context or {}).get("encoding") or settings.DEFAULT_CHARSET
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError:
            raise ParseError("JSON parse error - the body is not valid UTF-8.") from None
        try:
            return json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
