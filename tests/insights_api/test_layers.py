"""The house's floors, as pyproject.toml's import contracts draw them: the wiring on top, the apps in
the middle, the HTTP plumbing and the infrastructure at the bottom, knowing no app."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]


def test_every_import_keeps_to_the_floors_the_contracts_draw():
    linter = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [linter, "--no-cache", "--config", ROOT / "pyproject.toml"], cwd=ROOT, capture_output=True, text=True
    )

    # The report names each broken contract and the chain of imports that broke it.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_no_module_imports_itself_through_others():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    circles = [
        chain
        for module in sorted(graph.modules)
        for imported in graph.find_modules_directly_imported_by(module)
        if (chain := graph.find_shortest_chain(importer=imported, imported=module)) is not None
    ]

    assert circles == []  # each: a chain of imports leading back to where it started
