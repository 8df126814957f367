"""A management command's options, read by type. argparse made each value as the command's
`add_arguments` declares it, so a value of another type is a bug there: refused loudly here, never
passed on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

T = TypeVar("T")


class CommandOptions:
    """The `**options` of `BaseCommand.handle`, each read as the type its argument declares."""

    def __init__(self, options: Mapping[str, object]) -> None:
        self._options = options

    def text(self, name: str) -> str:
        return self._read(name, str)

    def text_or_none(self, name: str) -> str | None:
        """An option without a default, `None` when not given."""
        return None if self._options[name] is None else self._read(name, str)

    def number(self, name: str) -> int:
        return self._read(name, int)

    def flag(self, name: str) -> bool:
        return self._read(name, bool)

    def _read(self, name: str, kind: type[T]) -> T:
        value = self._options[name]
        if not isinstance(value, kind):
            raise TypeError(f"Option {name!r} is {value!r}, not a {kind.__name__} as add_arguments declares.")
        return value
