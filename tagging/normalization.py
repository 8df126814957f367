"""The one tag normalisation, applied wherever tags are written."""

from __future__ import annotations

from collections.abc import Iterable

MAX_TAG_LENGTH = 255


def normalize_tags(raw: Iterable[str]) -> list[str]:
    """Trim, lowercase, drop empties and duplicates; sorted. `["  UPPER  ", "Mixed Case"]` →
    `["mixed case", "upper"]`."""
    return sorted({name.strip().lower() for name in raw} - {""})
