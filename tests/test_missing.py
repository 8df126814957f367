"""No vacuous passes (tests/missing.py): in CI a test whose real part is missing fails saying what to
install, and no other skip passes either; on a developer's machine the same tests skip, saying it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPING = """
import pytest

from tests.missing import missing


def test_needs_a_frobnicator():
    missing("The frobnicator", install="apt-get install frobnicator")


def test_skips_for_its_own_reason():
    pytest.skip("no frobnicator here")


@pytest.mark.skipif(True, reason="never on this machine")
def test_is_marked_to_skip():
    pass
"""


def run_pytest(tmp_path: Path, *, ci: str | None) -> subprocess.CompletedProcess[str]:
    """pytest with the suite's own configuration and CI hook on a file of skipping tests."""
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    env = {name: value for name, value in os.environ.items() if name != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", ROOT / "pyproject.toml", "--rootdir", ROOT, "-p", "tests.missing",
         "-rA", "-q", tmp_path / "test_skipping.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.parametrize("ci", ["1", "true"])
def test_in_ci_every_skip_fails_and_a_missing_part_names_its_install(tmp_path, ci):
    run = run_pytest(tmp_path, ci=ci)

    assert run.returncode == 1, run.stdout + run.stderr
    # A skip at set-up (a `skipif` mark) fails there: pytest counts it as an error.
    assert "2 failed, 1 error" in run.stdout, run.stdout
    assert (
        "In CI no test may skip: The frobnicator is missing; install it with: apt-get install frobnicator"
        in (run.stdout)
    )
    assert "In CI no test may skip: no frobnicator here" in run.stdout
    assert "In CI no test may skip: never on this machine" in run.stdout


@pytest.mark.parametrize("ci", [None, "false"], ids=["unset", "false"])
def test_on_a_developers_machine_they_skip_saying_what_to_install(tmp_path, ci):
    run = run_pytest(tmp_path, ci=ci)

    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 skipped" in run.stdout, run.stdout
    assert "The frobnicator is missing; install it with: apt-get install frobnicator" in run.stdout


def test_ci_runs_the_suite_telling_it_that_it_is_ci(tmp_path):
    # A stand-in `make` (the one tool .ci/run hands over to) reports what it was run with.
    (tmp_path / "make").write_text('#!/bin/sh\necho "make $* CI=$CI"\n')
    (tmp_path / "make").chmod(0o755)
    env = {
        **{name: value for name, value in os.environ.items() if name != "CI"},
        "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}",
    }

    run = subprocess.run(["bash", ROOT / ".ci" / "run"], env=env, capture_output=True, text=True, timeout=60)

    assert (run.returncode, run.stdout.strip()) == (0, "make test CI=1"), run.stderr
