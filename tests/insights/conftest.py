"""Fixtures of the live insights tests."""

from __future__ import annotations

import pytest

from accounts.services import personal_api_key_create


@pytest.fixture
def keys(owner, teammate, stranger) -> dict[str, str]:
    """An API key secret (`*`) of each member of the cast, by name: owner, teammate, stranger."""
    return {user.email.split("@")[0]: personal_api_key_create(user=user, label="live", scopes=["*"]).secret
            for user in (owner, teammate, stranger)}  # fmt: skip
