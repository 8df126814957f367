"""`limit`/`offset` pagination with the envelope `{"count", "next", "previous", "results"}`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from django.db.models import Model, QuerySet
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.utils.urls import remove_query_param, replace_query_param

if TYPE_CHECKING:  # DRF's views import the pagination class from the settings: no import at run time
    from rest_framework.views import APIView

MAX_OFFSET = 10**9
PAGE = "page"
Row = TypeVar("Row")


class LimitOffsetPagination(pagination.LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000

    def paginate_queryset(
        self, queryset: QuerySet[Model, Row] | Sequence[Row], request: Request, view: APIView | None = None
    ) -> list[Row]:
        return self.paginate(
            request,
            page=lambda limit, offset: list(queryset[offset : offset + limit]),
            count=lambda: self.get_count(queryset),
        )

    def paginate(
        self, request: Request, *, page: Callable[[int, int], list[Row]], count: Callable[[], int]
    ) -> list[Row]:
        """The page (`page(limit, offset)`) first; `count()` only when the page cannot tell the
        total: a page short of `limit` ends the list, so `offset` plus its length is the count."""
        self.request = request
        self.limit = self.get_limit(request)
        self.offset = self.get_offset(request)
        rows = page(self.limit, self.offset)
        if 0 < len(rows) < self.limit or (not rows and self.offset == 0):
            self.count = self.offset + len(rows)
        else:
            self.count = count()
        return rows

    def get_limit(self, request: Request) -> int:
        return self._read(request, self.limit_query_param, self.default_limit, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        # PostHog's frontend pages its activity log with `page` (from 1) and `limit`; `offset` wins.
        page = self._read(request, PAGE, 1, 1, MAX_OFFSET)
        if request.query_params.get(self.offset_query_param) in (None, "") and PAGE in request.query_params:
            return min((page - 1) * self.get_limit(request), MAX_OFFSET)
        return self._read(request, self.offset_query_param, 0, 0, MAX_OFFSET)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        envelope = super().get_paginated_response_schema(schema)
        envelope["required"] = ["count", "next", "previous", "results"]  # always there, null at the ends
        for link in ("next", "previous"):  # OpenAPI 3.1 spells "nullable" as a type
            envelope["properties"][link].pop("nullable", None)
            envelope["properties"][link]["type"] = ["string", "null"]
        return envelope

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        bounds = {
            self.limit_query_param: {"minimum": 1, "maximum": self.max_limit, "default": self.default_limit},
            self.offset_query_param: {"minimum": 0, "maximum": MAX_OFFSET},
        }
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"].update(bounds.get(parameter["name"], {}))
        return [
            *parameters,
            {
                "name": PAGE,
                "required": False,
                "in": "query",
                "description": "A page number from 1, of `limit` rows each; used when `offset` is absent.",
                "schema": {"type": "integer", "minimum": 1, "maximum": MAX_OFFSET},
            },
        ]

    @staticmethod
    def _read(request: Request, name: str, default: int, minimum: int, maximum: int) -> int:
        """Reject a bad value with a 400 naming the parameter, where DRF would silently ignore it."""
        raw = request.query_params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ValidationError({name: [f"'{name}' must be an integer."]}, code="invalid") from None
        if not minimum <= value <= maximum:
            raise ValidationError(
                {name: [f"'{name}' must be between {minimum} and {maximum}."]}, code="invalid"
            )
        return value


def page_links(request: Request, *, count: int, limit: int, offset: int) -> tuple[str | None, str | None]:
    """`next` and `previous` links of a limit/offset page computed outside a queryset."""
    url = request.build_absolute_uri()
    following = (
        replace_query_param(replace_query_param(url, "limit", limit), "offset", offset + limit)
        if offset + limit < count
        else None
    )
    if offset <= 0:
        return following, None
    previous_url = replace_query_param(url, "limit", limit)
    previous_offset = max(0, min(offset, count) - limit)
    previous = (
        remove_query_param(previous_url, "offset")
        if previous_offset == 0
        else replace_query_param(previous_url, "offset", previous_offset)
    )
    return following, previous
