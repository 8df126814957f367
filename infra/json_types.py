"""The type of a JSON value, for code that builds or reads one (an outcome in Redis, a response body,
a query): one recursive alias, so that a JSON value is not typed `Any`.

Its containers are the read-only `Sequence` and `Mapping`, which are covariant: a `list[float]` or a
`dict[str, str]` is a JSON value as it is. `JSONObject` is the mutable object a function builds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JSONValue: TypeAlias = "bool | int | float | str | Sequence[JSONValue] | Mapping[str, JSONValue] | None"
JSONObject: TypeAlias = "dict[str, JSONValue]"
