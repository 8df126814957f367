"""Statements compiled from a queryset once per process and run with new values on every request.

Compiling a queryset with a few subqueries costs Django milliseconds of Python on every request,
though only the values change between requests. `prepare` compiles a queryset built with stand-in
values (`Markers`), finds the stand-ins among the compiled statement's parameters, and keeps the SQL,
the places of the stand-ins and Django's converters of its columns; `Prepared.rows` fills in the
values of a request and returns named tuples converted exactly as the ORM converts them. The rows a
statement may return are still decided by the queryset every other route uses; only its compilation
is shared.

A value must enter the queryset as a parameter to be replaced (filters and `Value`s do; slicing
does not, hence `limit`/`offset` here), and a marker must reach the statement unchanged (integers
lists of integers and strings do).

A statement shared between requests is compiled twice, with two different sets of stand-ins
(`prepare_shared`), and kept only if both compilations agree: the same SQL, the same parameters at
the same places, each stand-in's hole where the other has its own. A stand-in the statement took in
any other form — inlined into the SQL, folded into a longer value, turned into a value of any other
type — makes the two differ, so a statement that would run with one caller's values for every caller
cannot be kept, whatever the types of its parameters.

`compiled_once` is the cache: each read selector names its statement by a key (the selector, the
shape of its filters, the caller's kind of visibility) and gets the one statement compiled for it in
this process.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from django.db import connection
from django.db.models import Model, QuerySet

# A stand-in value: a number, a text, or a list of numbers (kept as a tuple, to be a key).
StandIn = int | str | tuple[int, ...]
M = TypeVar("M", int, str, tuple[int, ...])

_FIRST_MARKER = -(2**62)  # far outside any id, count or limit


class Markers:
    """Stand-in values for a statement's parameters, one per name; `variant` picks another set of
    values for the same names (prepare_shared compiles with two)."""

    def __init__(self, variant: int = 0) -> None:
        self.names: dict[StandIn, str] = {}
        self._first = _FIRST_MARKER - variant * 2**32
        self._variant = variant

    def number(self, name: str) -> int:
        return self._mark(name, lambda n: self._first - n)

    def text(self, name: str) -> str:
        # NUL never reaches a statement from a request (PostgreSQL refuses it in text), so no
        # request value can be taken for this stand-in.
        return self._mark(name, lambda n: f"\x00{name}\x00{self._variant}\x00{n}")

    def numbers(self, name: str) -> list[int]:
        """A stand-in for a list of integers (an `= ANY(%s)` parameter)."""
        return list(self._mark(name, lambda n: (self._first - n,)))

    def _mark(self, name: str, make: Callable[[int], M]) -> M:
        for marked, known in self.names.items():
            if known == name:
                return cast(M, marked)  # made by `make` when the name was first marked
        value = make(len(self.names))
        self.names[value] = name
        return value


# The statements of `compiled_once`, by the key their selector names them with.
_COMPILED: dict[Hashable, Prepared] = {}


def compiled_once(key: Hashable | None, build: Callable[[Markers], Prepared]) -> Prepared:
    """The statement `build` prepares from the stand-ins it is given, compiled once per process for
    each `key` and shared by every request from then on (compiled twice and kept only if both
    agree: `prepare_shared`); with key None, compiled for this call alone, as a statement carrying a
    request's own values must be."""
    if key is None:
        return build(Markers())
    statement = _COMPILED.get(key)
    if statement is None:
        statement = _COMPILED[key] = prepare_shared(build)
    return statement


def prepare_shared(build: Callable[[Markers], Prepared]) -> Prepared:
    """`build`'s statement (prepared from a queryset made with the stand-ins it is given), compiled
    with two sets of stand-ins and kept only if the two agree; a ValueError names what differs."""
    first, second = build(Markers(variant=0)), build(Markers(variant=1))
    if first.sql != second.sql:
        raise ValueError(
            "The statement's SQL holds a stand-in's value: it cannot be shared between requests."
        )
    if len(first.params) != len(second.params):
        raise ValueError("The statement's parameters depend on a stand-in's value: it cannot be shared.")
    for position, (one, other) in enumerate(zip(first.params, second.params, strict=True)):
        if not _same(one, other):
            raise ValueError(
                f"Parameter {position + 1} of the statement holds a stand-in's value in a form it cannot "
                f"replace ({one!r} / {other!r}): it cannot be shared between requests."
            )
    return first


def _same(one: object, other: object) -> bool:
    """Whether two compilations' parameters are one value (a parameter type without equality, such
    as a JSON adapter, is compared by its representation)."""
    return type(one) is type(other) and (one == other or repr(one) == repr(other))


@dataclass(frozen=True)
class _Hole:
    name: str


@dataclass(frozen=True)
class Prepared:
    sql: str
    params: tuple[object, ...]  # fixed values and _Holes
    # Per converted column: its position, its converters and the expression they are given.
    converters: tuple[tuple[int, tuple[Callable[..., object], ...], object], ...]
    row_type: type[tuple[Any, ...]]

    def rows(self, **values: object) -> list[Any]:
        """The rows for `values` (one for each hole's name): named tuples, each reader names the
        columns it reads with a Protocol or a dataclass of its own."""
        # The cursor takes every value psycopg adapts; django-stubs' list of them is narrower (it
        # leaves out the ORM's JSON adapters).
        params: list[Any] = [values[param.name] if type(param) is _Hole else param for param in self.params]
        with connection.cursor() as cursor:
            cursor.execute(self.sql, params)
            fetched = cursor.fetchall()
        if self.converters:
            fetched = [self._convert(list(row)) for row in fetched]
        make = self.row_type._make  # type: ignore[attr-defined]
        return [make(row) for row in fetched]

    def _convert(self, row: list[object]) -> list[object]:
        # As SQLCompiler.apply_converters does, with the connection of this request.
        for position, converters, expression in self.converters:
            value = row[position]
            for converter in converters:
                value = converter(value, expression, connection)
            row[position] = value
        return row

    def count(self, **values: object) -> int:
        """The number of rows the statement returns."""
        rows = Prepared(
            sql=f"SELECT count(*) FROM ({self.sql}) AS counted",
            params=self.params,
            converters=(),
            row_type=_Count,
        ).rows(**values)
        count: int = rows[0].count
        return count


_Count = collections.namedtuple("_Count", ["count"])


def prepare(
    queryset: QuerySet[Model, object],
    markers: Markers,
    *,
    rename: dict[str, str] | None = None,
    limit: str | None = None,
    offset: str | None = None,
) -> Prepared:
    """The statement of `queryset` (a `values_list()` one), its stand-ins turned into holes, its rows
    named after the selected names (or `rename`'s names for them), optionally paged by the values
    named `limit` and `offset`."""
    query = queryset.query
    compiler = query.get_compiler(using=queryset.db)
    sql, params = compiler.as_sql()
    holes = tuple(_hole(param, markers) for param in params)
    _refuse_baked_markers(sql, holes, markers)
    if limit is not None:
        sql += " LIMIT %s"
        holes += (_Hole(limit),)
    if offset is not None:
        sql += " OFFSET %s"
        holes += (_Hole(offset),)
    # In the SELECT's order; `_fields` (the names of values()/values_list()) is not in django-stubs.
    renamed = [(rename or {}).get(name, name) for name in queryset._fields]  # type: ignore[attr-defined]
    selected = [column[0] for column in compiler.select[: compiler.col_count]]
    converters = tuple(
        (position, tuple(converters), expression)
        for position, (converters, expression) in sorted(compiler.get_converters(selected).items())
    )
    return Prepared(
        sql=sql,
        params=holes,
        converters=converters,
        row_type=collections.namedtuple("Row", renamed),
    )


def prepare_sql(
    sql: str,
    params: dict[str, object],
    markers: Markers,
    *,
    columns: tuple[str, ...],
    holes: tuple[str, ...] = (),
) -> Prepared:
    """A hand-written statement with named parameters (`%(name)s`), prepared as `prepare` prepares a
    queryset's: parameter values that are `markers`' stand-ins, and the parameters named in `holes`,
    are filled in by each run; rows are named `columns` (values as psycopg returns them)."""
    positional: list[object] = []

    def place(match: re.Match[str]) -> str:
        if match.group() == "%%":
            return "%%"
        name = match.group(1)
        positional.append(_Hole(name) if name in holes else _hole(params[name], markers))
        return "%s"

    compiled = _NAMED.sub(place, sql)
    _refuse_baked_markers(compiled, tuple(positional), markers)
    return Prepared(
        sql=compiled, params=tuple(positional), converters=(), row_type=collections.namedtuple("Row", columns)
    )


_NAMED = re.compile(r"%%|%\((\w+)\)s")


def _hole(param: object, markers: Markers) -> object:
    key = tuple(param) if isinstance(param, list) else param
    if not isinstance(key, int | str | tuple):  # no stand-in's type: a fixed value
        return param
    try:
        name = markers.names.get(key)
    except TypeError:  # an unhashable parameter is a fixed value
        return param
    return param if name is None else _Hole(name)


def _refuse_baked_markers(sql: str, params: tuple[object, ...], markers: Markers) -> None:
    """A stand-in the statement took in another form (inlined in the SQL, or inside a longer
    parameter) would run with the stand-in's value on every request: refuse to prepare it. (A
    stand-in the statement does not use at all is fine: an admin's visibility needs no caller.)"""
    texts = [sql, *(param for param in params if isinstance(param, str))]
    for value, name in markers.names.items():
        mark = value if isinstance(value, str) else str(abs(value[0] if isinstance(value, tuple) else value))
        if any(mark in text for text in texts):
            raise ValueError(f"The statement holds the stand-in of {name!r} in a form it cannot replace.")
