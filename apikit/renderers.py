"""`?format=csv` on every route: the JSON body flattened to dotted columns, safe for spreadsheets."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TypeGuard

from django.http import HttpResponseBase
from rest_framework_csv.renderers import CSVRenderer

# A spreadsheet evaluates a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# The paginated envelope (apikit/pagination.py, and any route that builds one by hand): its rows are
# the `results`, the rest goes into headers.
ENVELOPE = frozenset({"count", "next", "previous", "results"})
TOTAL_COUNT = "X-Total-Count"


def escape_cell(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"  # match the JSON body, not Python's True/False
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def is_page(data: object) -> TypeGuard[Mapping[str, object]]:
    """Whether a body is a page of a paginated list: exactly the envelope's keys, `results` a list."""
    return isinstance(data, dict) and data.keys() == ENVELOPE and isinstance(data["results"], list)


def page_link_header(page: Mapping[str, object]) -> str | None:
    """RFC 8288 links to the neighbouring pages (`rel="next"`, `rel="prev"`), those there are."""
    links = [
        f'<{page[key]}>; rel="{rel}"' for key, rel in (("next", "next"), ("previous", "prev")) if page[key]
    ]
    return ", ".join(links) or None


class SafeCSVRenderer(CSVRenderer):
    """djangorestframework-csv's flattening (a list → one row per element, an object → one row,
    nested keys → `a.0.b` columns, header = sorted union of keys; a list of bare values → one
    column, `value`), with formula cells escaped and a download file name derived from the route.
    A page of a paginated list is one row per result: its `count` goes into `X-Total-Count` and its
    `next`/`previous` into a `Link` header, so every paginated route, whoever adds it, exports rows
    a spreadsheet can use."""

    def tablize(
        self, data: object, header: Sequence[str] | None = None, labels: Mapping[str, str] | None = None
    ) -> Iterator[list[object]]:
        # Header cells too: column names come from JSON keys, and a stored query's keys are user input.
        for row in super().tablize(data, header=header, labels=labels):
            yield [escape_cell(cell) for cell in row]

    def render(
        self,
        data: object,
        media_type: str | None = None,
        renderer_context: Mapping[str, object] | None = None,
    ) -> bytes:
        renderer_context = renderer_context or {}
        response = renderer_context.get("response")
        view = renderer_context.get("view")
        assert response is None or isinstance(response, HttpResponseBase)
        if response is not None:
            response["Content-Disposition"] = f'attachment; filename="{_file_name(view, response)}"'
        if is_page(data):
            if response is not None:
                response[TOTAL_COUNT] = str(data["count"])
                if links := page_link_header(data):
                    response["Link"] = links
            data = data["results"]
        if isinstance(data, list) and data and not any(isinstance(item, (dict, list)) for item in data):
            # A list of bare values (the project's tag names) is one column, named.
            data = [{"value": item} for item in data]
        if data == []:
            # No rows and no columns: an empty header line. (An empty body would make DRF drop the
            # Content-Type, and the client could not tell it from a body-less answer.)
            return b"\r\n"
        return super().render(data, media_type, renderer_context)


def _file_name(view: object, response: HttpResponseBase) -> str:
    if response.status_code >= 400:
        return "error.csv"
    basename = getattr(view, "basename", None) or "export"
    action = getattr(view, "action", None)
    parts = [basename] if action in (None, "list", "retrieve") else [basename, action]
    return "-".join(part.replace("_", "-") for part in parts) + ".csv"
