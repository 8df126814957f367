#!/usr/bin/env python
"""Django's command-line utility.

While `make run` is serving, it writes the addresses of the services it started to `.run/env`;
variables set there become defaults here, so `manage.py <command>` reaches the same database and
Redis with no extra environment. Variables already set in the environment win.
"""

import os
import sys
from pathlib import Path

RUNTIME_ENV = Path(__file__).resolve().parent / ".run" / "env"


def load_runtime_env() -> None:
    if not RUNTIME_ENV.exists():
        return
    for line in RUNTIME_ENV.read_text().splitlines():
        name, sep, value = line.partition("=")
        if sep and name.strip() and not name.startswith("#"):
            os.environ.setdefault(name.strip(), value.strip())


def main() -> None:
    load_runtime_env()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "insights_api.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
