"""Raw SQL that embeds a queryset: for statements the ORM cannot write (a CTE that inserts), so the
rows a statement may touch are still decided by the same queryset every other route uses."""

from __future__ import annotations

import itertools
import re
from typing import Any

from django.db.models import Model, QuerySet

_PLACEHOLDER = re.compile(r"%%|%s")


def queryset_sql(queryset: QuerySet[Model, object], *, prefix: str) -> tuple[str, dict[str, Any]]:
    """`queryset`'s SQL with named placeholders (`%(<prefix>0)s`, …) and their values, to embed in a
    statement that uses named parameters (psycopg does not mix the two styles)."""
    sql, params = queryset.query.sql_with_params()
    names = (f"{prefix}{n}" for n in itertools.count())
    values: dict[str, Any] = {}

    def name(match: re.Match[str]) -> str:
        if match.group() == "%%":  # an escaped percent sign stays one
            return "%%"
        key = next(names)
        values[key] = params[len(values)]
        return f"%({key})s"

    return _PLACEHOLDER.sub(name, sql), values
