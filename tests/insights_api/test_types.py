"""The code's types, as mypy checks them with the Django and DRF plugins (pyproject.toml's tool.mypy):
all of it, and strictly the services, where a wrong type is a wrong answer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_code_type_checks_with_no_error():
    mypy = Path(sys.executable).parent / "mypy"
    # The plugins load the settings, which need a SECRET_KEY; checking the types uses no secret.
    env = {**os.environ, "SECRET_KEY": "type-checking-only"}
    result = subprocess.run([mypy], cwd=ROOT, env=env, capture_output=True, text=True)

    # mypy's report lists each error with its file, line and code.
    assert result.returncode == 0, result.stdout + result.stderr
