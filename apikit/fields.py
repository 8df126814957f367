"""Serializer fields shared by several APIs, and the base of query-parameter serializers."""

from __future__ import annotations

import functools
import json
from typing import Any, TypedDict, TypeVar, Unpack, cast

from django.utils.functional import cached_property
from rest_framework import serializers
from rest_framework.utils.serializer_helpers import BindingDict

MAX_DB_ID = 2**63 - 1
F = TypeVar("F", bound=serializers.Field)


class JSONListParam(serializers.ListField):
    """A query parameter holding a JSON array, e.g. `?tags=["growth","kpi"]` (PostHog's convention).
    A bare comma-separated value (`?tags=growth,kpi`) is accepted too."""

    def to_internal_value(self, data: object) -> list[object]:
        # From a query string DRF hands over every value of the parameter: ['["a","b"]'] or ['a', 'b'].
        values = data if isinstance(data, list) else [data]
        items: list[object] = []
        for value in values:
            text = value.strip() if isinstance(value, str) else value
            if isinstance(text, str) and text.startswith("["):
                try:
                    parsed = json.loads(text)
                except ValueError:
                    self.fail("invalid_json")
                if not isinstance(parsed, list):
                    self.fail("invalid_json")
                items.extend(parsed)
            elif isinstance(text, str):
                items.extend(item.strip() for item in text.split(",") if item.strip())
            else:
                items.append(text)
        return super().to_internal_value(items)

    default_error_messages = {
        **serializers.ListField.default_error_messages,
        "invalid_json": "Expected a JSON array, e.g. [1, 2].",
    }


class FieldOptions(TypedDict, total=False):
    """The options of DRF's fields that the fields built here pass on."""

    required: bool
    allow_null: bool
    read_only: bool
    help_text: str


def DatabaseIdField(**kwargs: Unpack[FieldOptions]) -> serializers.IntegerField:
    """A positive integer that fits a bigint column (so a huge id is a 400, never a database error)."""
    return serializers.IntegerField(min_value=1, max_value=MAX_DB_ID, **kwargs)


def BigIntField(**kwargs: Unpack[FieldOptions]) -> serializers.IntegerField:
    """Any integer a bigint column can hold: one outside that range is a 400, not a database error."""
    return serializers.IntegerField(min_value=-MAX_DB_ID - 1, max_value=MAX_DB_ID, **kwargs)


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans (DRF's CharField would turn 12 into "12")."""

    default_error_messages = {
        **serializers.CharField.default_error_messages,
        "not_a_string": "Must be a string.",
    }

    def to_internal_value(self, data: object) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean, nothing else (DRF's BooleanField would take 1, "yes" or "on" as true).
    For request bodies; query strings keep DRF's `true`/`false` parsing."""

    default_error_messages = {
        **serializers.BooleanField.default_error_messages,
        "not_a_boolean": "Must be true or false.",
    }

    def to_internal_value(self, data: object) -> bool:
        if not isinstance(data, bool):
            self.fail("not_a_boolean")
        return data


class DefaultOnly:
    """Marks an output field that no row has a value for: it is always its `default` (a field of
    PostHog's schema this service leaves null, say). DRF writes a field's default for a row without
    its attribute; the precompiled writers (apikit.json_rows) write this one without looking, and
    refuse any other field whose column the rows lack."""


def default_only(field_class: type[F], **kwargs: Any) -> F:
    """A read-only `field_class(**kwargs)`, marked DefaultOnly; `kwargs` must give the `default`."""
    if "default" not in kwargs:
        raise TypeError(f"A default-only {field_class.__name__} needs a default.")
    marked = _DEFAULT_ONLY.get(field_class)
    if marked is None:  # named as the field class it extends: the schema describes it as that field
        marked = _DEFAULT_ONLY[field_class] = type(field_class.__name__, (DefaultOnly, field_class), {})
    return cast(F, marked(read_only=True, **kwargs))


_DEFAULT_ONLY: dict[type, type] = {}  # field class → its DefaultOnly subclass


class ParamsSerializer(serializers.Serializer):
    """Query parameters, validated by fields built once per class: DRF deep-copies every declared
    field for each request, which cost a tenth of a list request's CPU. Sharing them is safe because
    a field keeps nothing of the values it validates; a subclass's fields and validators must not
    read the context (it is empty) or the request, and it is never partial."""

    @cached_property
    def fields(self) -> BindingDict:
        return _bound_fields(type(self))


@functools.cache
def _bound_fields(serializer_class: type[ParamsSerializer]) -> BindingDict:
    return super(ParamsSerializer, serializer_class()).fields
