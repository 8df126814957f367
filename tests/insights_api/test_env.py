"""Settings readers fail loudly on values they cannot use."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from insights_api.env import env_bool, env_choice, env_int, env_list, env_str


def test_readers_parse_good_values(monkeypatch):
    monkeypatch.setenv("X_BOOL", "Yes")
    monkeypatch.setenv("X_INT", "42")
    monkeypatch.setenv("X_LIST", "a, b,,c")

    assert env_bool("X_BOOL", False) is True
    assert env_int("X_INT", 0, minimum=1) == 42
    assert env_list("X_LIST", []) == ["a", "b", "c"]
    assert env_int("X_UNSET", 7) == 7


@pytest.mark.parametrize(
    ("name", "value", "read"),
    [
        ("X_BOOL", "maybe", lambda: env_bool("X_BOOL", False)),
        ("X_INT", "4 2", lambda: env_int("X_INT", 0)),
        ("X_INT", "0", lambda: env_int("X_INT", 1, minimum=1)),
        ("X_CHOICE", "loud", lambda: env_choice("X_CHOICE", "info", ("info", "debug"))),
    ],
)
def test_readers_name_the_variable_on_a_bad_value(monkeypatch, name, value, read):
    monkeypatch.setenv(name, value)

    with pytest.raises(ImproperlyConfigured, match=name):
        read()


def test_a_required_variable_that_is_missing_is_an_error(monkeypatch):
    monkeypatch.delenv("X_REQUIRED", raising=False)

    with pytest.raises(ImproperlyConfigured, match="X_REQUIRED"):
        env_str("X_REQUIRED")
