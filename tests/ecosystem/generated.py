"""Python clients generated with openapi-python-client, imported for the length of a test module."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType


@contextmanager
def generated_client(package: str, out: Path, *args: str | Path) -> Iterator[ModuleType]:
    """Generate `package` into `out` (`args`: the schema's `--url` or `--path`, and any options), and
    import it, `package.models` bound; forget it afterwards."""
    venv_bin = Path(sys.executable).parent
    generated = subprocess.run(
        [venv_bin / "openapi-python-client", "generate", *args, "--meta", "none", "--output-path", out / package],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"},  # for its ruff pass
    )  # fmt: skip
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    # The generator warns about every schema part it cannot type (and then leaves it out).
    assert "Warning" not in output and "Unable" not in output, output
    sys.path.insert(0, str(out))
    try:
        importlib.import_module(f"{package}.models")
        yield importlib.import_module(package)
    finally:
        sys.path.remove(str(out))
        for name in [name for name in sys.modules if name == package or name.startswith(f"{package}.")]:
            del sys.modules[name]
