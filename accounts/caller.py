"""Who is asking, as far as deciding what they may see goes (built per request by the API layer)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Caller:
    user_id: int
    is_admin: bool  # an admin or owner of the organization of the project asked about
