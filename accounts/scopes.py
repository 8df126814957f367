"""API key scopes: `<object>:<read|write>` or `*`. Sessions are not scoped."""

from __future__ import annotations

ALL = "*"
SCOPE_OBJECTS = ("insight",)
VALID_SCOPES = frozenset({ALL} | {f"{obj}:{level}" for obj in SCOPE_OBJECTS for level in ("read", "write")})


def scopes_grant(granted: list[str], required: str) -> bool:
    """Whether a key holding `granted` may perform an action that requires `required`.

    `*` grants everything and `<object>:write` implies `<object>:read`.
    """
    if ALL in granted or required in granted:
        return True
    obj, _, level = required.partition(":")
    return level == "read" and f"{obj}:write" in granted


def invalid_scopes(scopes: list[str]) -> list[str]:
    return [scope for scope in scopes if scope not in VALID_SCOPES]
