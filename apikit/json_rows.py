"""Rows written as a read-only serializer writes them, with every per-field decision made once.

For each request DRF deep-copies every declared field of a serializer, and for each row walks the
fields through `get_attribute`, the null check and `to_representation`. A `RowWriter` binds a
serializer class's fields once per process and turns each into one small function of the row, so a
page costs one dict per row. The serializer stays the description of the shape (the OpenAPI
schema is generated from it, and it can still render the same rows); the writer follows it field
by field, with DRF's rules for nulls, defaults and absent attributes, and tests compare the two on
the same rows.

A row is an object with the fields' sources as attributes (a model instance, or a named tuple of
`infra.db.compiled`), or a mapping (a JSON object built by PostgreSQL, for a nested
serializer). A method field (`get_<name>`) is called with a stand-in for the serializer whose only
attribute is `context`: such methods read `self.context` and the row, nothing else.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone
from rest_framework import ISO_8601, serializers
from rest_framework.fields import empty
from rest_framework.settings import api_settings

# Returned by a field's function when DRF would leave the key out of the row.
_SKIP = object()

FieldWriter = Callable[[Any, Any], Any]  # (row, stand-in) -> value, or _SKIP


class _Stand:
    """What a serializer's method field sees as `self`; also what every row of one write shares."""

    __slots__ = ("context", "timezone")

    def __init__(self, context: dict[str, Any]) -> None:
        self.context = context
        self.timezone = timezone.get_current_timezone() if settings.USE_TZ else None


class RowWriter:
    def __init__(self, serializer: serializers.Serializer, attributes: tuple[str, ...] | None = None) -> None:
        """`attributes`: every attribute of the rows to come, when they are all named tuples of one
        type; a field whose source is not among them is written without looking."""
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
        cls, serializer_class: type[serializers.Serializer], rows: list[Any], context: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """`rows` written as `serializer_class` writes them, with `context` for its method fields."""
        attributes = getattr(rows[0], "_fields", None) if rows else None  # a named tuple's
        return cls.of(serializer_class, attributes).write(rows, context)

    def write(self, rows: Iterable[Any], context: dict[str, Any]) -> list[dict[str, Any]]:
        stand = _Stand(context)
        return [self.write_one(row, stand) for row in rows]

    def write_one(self, row: Any, stand: _Stand) -> dict[str, Any]:
        written = {}
        for name, field_writer in self.plan:
            value = field_writer(row, stand)
            if value is not _SKIP:
                written[name] = value
        return written


def _compile(field: serializers.Field, attributes: tuple[str, ...] | None = None) -> FieldWriter:
    if isinstance(field, serializers.SerializerMethodField):
        method = getattr(type(field.parent), field.method_name)
        return lambda row, stand: method(stand, row)
    if attributes is not None and field.source != "*" and field.source_attrs[0] not in attributes:
        absent = _absent_value(field)
        if absent is _RAISE:
            raise AttributeError(f"The rows have no {field.source_attrs[0]!r} for {field.field_name!r}.")
        return lambda row, stand: absent() if callable(absent) else absent
    read = _reader(field)
    if isinstance(field, serializers.ListSerializer):
        assert isinstance(field.child, serializers.Serializer), f"{field.field_name!r} lists no serializer"
        child = RowWriter(field.child)

        def write_many(row: Any, stand: _Stand) -> Any:
            value = read(row)
            if value is None or value is _SKIP:
                return value
            return [child.write_one(item, stand) for item in value]

        return write_many
    if isinstance(field, serializers.Serializer):
        nested = RowWriter(field)

        def write_nested(row: Any, stand: _Stand) -> Any:
            value = read(row)
            return value if value is None or value is _SKIP else nested.write_one(value, stand)

        return write_nested
    represent = field.to_representation
    if _plain_datetime(field):
        return _datetime_writer(read, represent)

    def write_value(row: Any, stand: _Stand) -> Any:
        value = read(row)
        return value if value is None or value is _SKIP else represent(value)

    return write_value


def _plain_datetime(field: serializers.Field) -> bool:
    """A DateTimeField written in ISO 8601 in the current time zone, as DRF writes them by default."""
    output_format = getattr(field, "format", api_settings.DATETIME_FORMAT)
    return (
        type(field) is serializers.DateTimeField
        and isinstance(output_format, str)
        and output_format.lower() == ISO_8601
        and not hasattr(field, "timezone")
    )


def _datetime_writer(read: Callable[[Any], Any], represent: Callable[[Any], Any]) -> FieldWriter:
    """DateTimeField.to_representation with the time zone looked up once per write, not per value."""

    def write_datetime(row: Any, stand: _Stand) -> Any:
        value = read(row)
        if value is None or value is _SKIP:
            return value
        if stand.timezone is None or not isinstance(value, datetime) or timezone.is_naive(value):
            return represent(value)  # DRF's own way for anything unusual
        try:
            written = value.astimezone(stand.timezone).isoformat()
        except OverflowError:
            return represent(value)
        return written[:-6] + "Z" if written.endswith("+00:00") else written

    return write_datetime


def _reader(field: serializers.Field) -> Callable[[Any], Any]:
    """`field.get_attribute` without the per-call bookkeeping: the source's attributes (or keys) in
    turn; an absent one gives the field's default, null, or no key at all, as DRF decides."""
    if field.source == "*":
        return lambda row: row
    attrs = tuple(field.source_attrs)
    absent = _absent_value(field)

    def read(row: Any) -> Any:
        for attr in attrs:
            try:
                row = row[attr] if isinstance(row, dict) else getattr(row, attr)
            except (KeyError, AttributeError):
                if absent is _RAISE:
                    raise
                return absent() if callable(absent) else absent
        return row

    return read


_RAISE = object()


def _absent_value(field: serializers.Field) -> Any:
    """What DRF writes for a field whose attribute the row lacks (`Field.get_attribute`)."""
    if field.default is not empty:
        return field.get_default
    if field.allow_null:
        return None
    if not field.required:
        return _SKIP
    return _RAISE
