"""The house's floors, as pyproject.toml's import contracts draw them: the wiring on top, the apps in
the middle (each app's `api/` above its own domain), the HTTP plumbing and the infrastructure at the
bottom, knowing no app; and no cycle between modules or between packages."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["root_packages"]
APPS = ("accounts", "insights", "tagging", "viewtracking", "ai_metadata")
LINTER = Path(sys.executable).parent / "lint-imports"
# The apps' HTTP layers, counted as one floor: their order among themselves is the layers contract's.
HTTP_FLOOR = "the apps' api/"


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """`make lint`'s import check, on the tree at `cwd`."""
    return subprocess.run(
        [LINTER, "--no-cache", "--config", cwd / "pyproject.toml"], cwd=cwd, capture_output=True, text=True
    )


def test_every_import_keeps_to_the_floors_the_contracts_draw():
    result = lint_imports(ROOT)

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


def package(module: str) -> str:
    """A module's package on the floor plan: its top-level package, except that an app's `api/` is
    apart from the app's domain (and with the other apps' `api/`)."""
    top, _, rest = module.partition(".")
    return HTTP_FLOOR if top in APPS and (rest == "api" or rest.startswith("api.")) else top


def package_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Each import of one package by another that the other imports back, with the modules that do."""
    imports: dict[tuple[str, str], tuple[str, str]] = {}
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            pair = (package(importer), package(imported))
            if pair[0] != pair[1]:
                imports.setdefault(pair, (importer, imported))
    reaches = {pair[0]: set() for pair in imports}
    for upstream, downstream in imports:
        reaches[upstream].add(downstream)
    for _ in reaches:  # the transitive closure, by repeated widening (a dozen packages)
        for upstream in reaches:
            reaches[upstream] |= {far for near in reaches[upstream] for far in reaches.get(near, ())}
    return sorted(
        [f"{upstream} → {downstream}", f"{modules[0]} imports {modules[1]}"]
        for (upstream, downstream), modules in imports.items()
        if upstream in reaches.get(downstream, ())
    )


def test_no_package_imports_itself_through_others():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)

    assert package_cycles(graph) == []  # each: an import between packages that closes a circle


def test_the_package_check_sees_a_domain_that_imports_its_own_api():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    graph.add_import(importer="accounts.models", imported="accounts.api.views")

    assert ["accounts → the apps' api/", "accounts.models imports accounts.api.views"] in package_cycles(
        graph
    )


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    """A copy of the code and its contracts, to plant an import in."""
    for name in PACKAGES:
        shutil.copytree(
            ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__", "migrations")
        )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    yield tmp_path


def plant(tree: Path, module: str, line: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{line}\n")


# A domain module of each app, and what it must never import: its own api/, or the HTTP plumbing.
PLANTED = [
    ("accounts.selectors", "from accounts.api import permissions", "No app's domain imports an HTTP layer"),
    ("insights.models", "from insights.api import serializers", "No app's domain imports an HTTP layer"),
    ("insights.query_nodes.common", "import insights.api.base", "No app's domain imports an HTTP layer"),
    ("tagging.normalization", "from tagging.api import serializers", "No app's domain imports an HTTP layer"),
    (
        "viewtracking.selectors",
        "from viewtracking.api import actions",
        "No app's domain imports an HTTP layer",
    ),
    (
        "ai_metadata.heuristic.wording",
        "from ai_metadata.api import serializers",
        "No app's domain imports an HTTP layer",
    ),
    ("tagging.services", "from apikit import fields", "No app's domain imports the HTTP plumbing"),
    ("insights.activity", "import rest_framework.serializers", "No app's domain imports the HTTP plumbing"),
]


def test_the_planted_tree_is_clean_before_planting(tree):
    result = lint_imports(tree)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("module", "line", "contract"), PLANTED, ids=[module for module, _, _ in PLANTED])
def test_a_domain_module_importing_the_http_layer_fails_lint(tree, module, line, contract):
    plant(tree, module, line)

    result = lint_imports(tree)

    assert result.returncode != 0, result.stdout
    assert f"{contract} BROKEN" in result.stdout, result.stdout
    assert module in result.stdout, result.stdout


def test_make_lint_runs_the_import_contracts():
    recipe = subprocess.run(["make", "-n", "lint"], cwd=ROOT, capture_output=True, text=True).stdout

    assert any(line.split()[0].endswith("/lint-imports") for line in recipe.splitlines() if line.strip()), (
        recipe
    )
