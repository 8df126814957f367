"""JSON request bodies, hardened: a body too deep for the parser is a 400, not a RecursionError.

(Size is capped by Django's DATA_UPLOAD_MAX_MEMORY_SIZE, which DRF enforces for JSON bodies; the
exception handler turns it into a 413.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import IO, Any, NoReturn

from django.conf import settings
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(
        self,
        stream: IO[bytes],
        media_type: str | None = None,
        parser_context: Mapping[str, object] | None = None,
    ) -> Any:  # any JSON value, though DRF's stubs say an object
        encoding = (parser_context or {}).get("encoding")
        encoding = encoding if isinstance(encoding, str) and encoding else settings.DEFAULT_CHARSET
        try:
            text = stream.read().decode(encoding)
        except UnicodeDecodeError:
            raise ParseError("JSON parse error - the body is not valid UTF-8.") from None
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except ValueError as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(data):
            raise ParseError("JSON parse error - a \\u escape is half of a surrogate pair, not a character.")
        return data


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


# JSON lets "\ud800" stand alone, but a lone surrogate is no character: it cannot be stored, nor
# echoed in an error message (encoding the answer would fail), so such a body is refused like bad
# UTF-8. The exact check runs only when the text has such an escape at all.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(data: object) -> bool:
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
