"""Rows written as a read-only serializer writes them, with every per-field decision made once.

For each request DRF deep-copies every declared field of a serializer, and for each row walks the
fields through `get_attribute`, the null check and `to_representation`. A `RowWriter` binds a
serializer class's fields once per process and turns each into one small function of the row, so a
page costs one dict per row. The serializer stays the description of the shape (the OpenAPI
schema is generated from it, and it can still render the same rows); the writer follows it field
by field, and tests compare the two, byte for byte, on the same rows.

Why this way (issue 23, `bench/run.py --writers`, bench/writers.md): the three ways to write a page
of the insight list were measured in one run on the same pages: these writers, the plain
serializers on the same rows, and PostgreSQL building each row's JSON (`json_build_object`). The
simplest within 10% of the fastest is kept. In each of three runs (on a shared machine; the
figures here are the last one's) the plain serializers were over 10% slower per request than the
fastest on pages of 100, 14-31% (their Python took two and a half times the writers': 16.1 ms
against 6.7 ms for 100 full rows), so they are out; the JSON built in SQL was at most 7% faster than
the writers (it saves Python, but its statement costs more, and it repeats every field's shape in
SQL), so these writers, simpler than it, are kept.

Safe by construction, where DRF would be lenient or the writer would differ from DRF:
- A column the rows lack raises (`MissingColumn`) instead of becoming the field's default: for rows
  that are named tuples, when the writer is compiled; for objects and mappings, when a row is
  written. A field no row has a value for says so (`apikit.fields.default_only`) and is written as
  its default without looking.
- A field that reads its value with its own `get_attribute`, or a serializer (nested or listed)
  with its own `to_representation`, is refused when the writer is compiled (`UnwritableField`); a
  field's own `to_representation` is what the writer calls, so it is followed.
- A source naming a method is called, as DRF calls it.

A row is an object with the fields' sources as attributes (a model instance, or a named tuple of
`infra.db.compiled`), or a mapping (a JSON object built by PostgreSQL, for a nested
serializer). A method field (`get_<name>`) is called with a stand-in for the serializer whose only
attribute is `context`: such methods read `self.context` and the row, nothing else.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime

from django.conf import settings
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.fields import is_simple_callable
from rest_framework.settings import api_settings

from apikit.fields import DefaultOnly

FieldWriter = Callable[[object, "_Stand"], object]  # (row, stand-in) -> value


class _Stand:
    """What a serializer's method field sees as `self`; also what every row of one write shares."""

    __slots__ = ("context", "timezone")

    def __init__(self, context: Mapping[str, object]) -> None:
        self.context = context
        self.timezone = timezone.get_current_timezone() if settings.USE_TZ else None


class MissingColumn(LookupError):
    """The rows lack what a field of the shape reads: a bug of the statement or of the shape, never
    something to write as the field's default."""

    def __init__(self, field: serializers.Field, attr: str) -> None:
        super().__init__(
            f"The rows have no {attr!r} for {type(field.parent).__name__}.{field.field_name}; a field "
            "no row has a value for is declared with apikit.fields.default_only."
        )


class UnwritableField(TypeError):
    """A field or serializer the writer cannot write as DRF would; refused when the writer is compiled."""

    def __init__(self, field: serializers.Field, reason: str) -> None:
        named = field.parent is not None and field.field_name  # not a top or a listed serializer
        owner = f"{type(field.parent).__name__}.{field.field_name}" if named else type(field).__name__
        super().__init__(f"{owner} {reason}: write its rows with the serializer itself.")


class RowWriter:
    def __init__(self, serializer: serializers.Serializer, attributes: tuple[str, ...] | None = None) -> None:
        """`attributes`: every attribute of the rows to come, when they are all named tuples of one
        type; a field whose source is not among them is refused now, not when a row is written."""
        if type(serializer).to_representation is not serializers.Serializer.to_representation:
            raise UnwritableField(serializer, "is written by its own to_representation")
        self.plan: tuple[tuple[str, FieldWriter], ...] = tuple(
            (name, _compile(field, attributes))
            for name, field in serializer.fields.items()
            if not field.write_only
        )

    @classmethod
    @functools.cache
    def of(
        cls, serializer_class: type[serializers.Serializer], attributes: tuple[str, ...] | None = None
    ) -> RowWriter:
        """The writer of `serializer_class` (for rows with these `attributes`), compiled on first use
        in each process."""
        return cls(serializer_class(), attributes)

    @classmethod
    def write_rows(
        cls,
        serializer_class: type[serializers.Serializer],
        rows: Sequence[object],
        context: Mapping[str, object],
    ) -> list[dict[str, object]]:
        """`rows` written as `serializer_class` writes them, with `context` for its method fields."""
        attributes = getattr(rows[0], "_fields", None) if rows else None  # a named tuple's
        return cls.of(serializer_class, attributes).write(rows, context)

    def write(self, rows: Iterable[object], context: Mapping[str, object]) -> list[dict[str, object]]:
        stand = _Stand(context)
        return [self.write_one(row, stand) for row in rows]

    def write_one(self, row: object, stand: _Stand) -> dict[str, object]:
        return {name: field_writer(row, stand) for name, field_writer in self.plan}


def _compile(field: serializers.Field, attributes: tuple[str, ...] | None = None) -> FieldWriter:
    if isinstance(field, serializers.SerializerMethodField):
        method = getattr(type(field.parent), field.method_name)
        return lambda row, stand: method(stand, row)
    _refuse_unwritable(field)
    column = field.source_attrs[0] if field.source != "*" else None
    if isinstance(field, DefaultOnly):
        if attributes is not None and column in attributes:
            raise UnwritableField(field, f"is always its default, yet the rows have {column!r}")
        return _default_writer(field)
    if attributes is not None and column is not None and column not in attributes:
        raise MissingColumn(field, column)
    read = _reader(field, attributes)
    if isinstance(field, serializers.ListSerializer):
        assert isinstance(field.child, serializers.Serializer), f"{field.field_name!r} lists no serializer"
        child = RowWriter(field.child)

        def write_many(row: object, stand: _Stand) -> object:
            value = read(row)
            return None if value is None else [child.write_one(item, stand) for item in _items(value)]

        return write_many
    if isinstance(field, serializers.Serializer):
        nested = RowWriter(field)

        def write_nested(row: object, stand: _Stand) -> object:
            value = read(row)
            return value if value is None else nested.write_one(value, stand)

        return write_nested
    represent = field.to_representation
    if _plain_datetime(field):
        return _datetime_writer(read, represent)

    def write_value(row: object, stand: _Stand) -> object:
        value = read(row)
        return value if value is None else represent(value)

    return write_value


def _default_writer(field: serializers.Field) -> FieldWriter:
    """A DefaultOnly field, written as DRF writes a field's default for a row without its attribute."""
    default, represent = field.default, field.to_representation
    if callable(default):  # a new value each time (`default=list`)
        return lambda row, stand: None if (value := default()) is None else represent(value)
    written = None if default is None else represent(default)
    return lambda row, stand: written


def _plain_datetime(field: serializers.Field) -> bool:
    """A DateTimeField written in ISO 8601 in the current time zone, as DRF writes them by default."""
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    return (
        type(field) is serializers.DateTimeField
        and isinstance(output_format, str)
        and output_format.lower() == ISO_8601
        and not hasattr(field, "timezone")
    )


def _datetime_writer(read: Callable[[object], object], represent: Callable[[object], object]) -> FieldWriter:
    """DateTimeField.to_representation with the time zone looked up once per write, not per value."""

    def write_datetime(row: object, stand: _Stand) -> object:
        value = read(row)
        if value is None:
            return value
        if stand.timezone is None or not isinstance(value, datetime) or timezone.is_naive(value):
            return represent(value)  # DRF's own way for anything unusual
        try:
            written = value.astimezone(stand.timezone).isoformat()
        except OverflowError:
            return represent(value)
        return written[:-6] + "Z" if written.endswith("+00:00") else written

    return write_datetime


def _reader(field: serializers.Field, attributes: tuple[str, ...] | None) -> Callable[[object], object]:
    """`field.get_attribute` without the per-call bookkeeping: the source's attributes (or keys) in
    turn, a method among them called as DRF calls it; an absent one raises (`MissingColumn`)."""
    if field.source == "*":
        return lambda row: row
    attrs = tuple(field.source_attrs)
    if attributes is not None and len(attrs) == 1:
        # A column of a named tuple: a value from the database, never a method (the tuple's own
        # methods are not among its `_fields`).
        return operator.attrgetter(attrs[0])

    def read(row: object) -> object:
        for attr in attrs:
            try:
                row = row[attr] if isinstance(row, dict) else getattr(row, attr)
            except (KeyError, AttributeError):
                raise MissingColumn(field, attr) from None
            if callable(row) and is_simple_callable(row):
                row = row()
        return row

    return read


def _items(value: object) -> Iterable[object]:
    """The rows of a listed serializer's value (DRF iterates over it as it comes)."""
    assert isinstance(value, Iterable), "a listed serializer's value is a list of rows"
    return value


def _refuse_unwritable(field: serializers.Field) -> None:
    """A field that reads its row its own way, or a list of rows written its own way, would be
    written otherwise than DRF writes it: refused when the writer is compiled (a serializer that
    writes its rows its own way is refused by RowWriter)."""
    if type(field).get_attribute is not serializers.Field.get_attribute:
        raise UnwritableField(field, "reads its value with its own get_attribute")
    if (
        isinstance(field, serializers.ListSerializer)
        and type(field).to_representation is not serializers.ListSerializer.to_representation
    ):
        raise UnwritableField(field, "is written by its own to_representation")
