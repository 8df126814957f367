"""`make run`'s runner stops with `make` (scripts/stack.py, ParentWatch): an IDE's stop button or a
supervisor signals make's pid alone, and GNU make passes SIGTERM on to its children but not SIGINT.
Tried with the real GNU make and a runner that reports what it saw."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.live import wait_until

ROOT = Path(__file__).resolve().parents[2]
RUNNER = textwrap.dedent(
    """
    import signal, sys, time
    sys.path.insert(0, {scripts!r})
    import stack
    make = stack.ParentWatch()
    print("watching" if make.watching else "not watching", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: (print("got SIGTERM", flush=True), sys.exit(0)))
    while not make.interrupted():
        time.sleep(0.1)
    print("make was interrupted", flush=True)
    """
)


@pytest.fixture
def make_run(tmp_path):
    """`make run` of a Makefile whose recipe execs a stand-in runner, as the project's does."""
    (tmp_path / "runner.py").write_text(RUNNER.format(scripts=str(ROOT / "scripts")))
    (tmp_path / "Makefile").write_text(f"run:\n\t@exec {sys.executable} runner.py\n")
    log = tmp_path / "runner.log"
    # A make of its own, not a sub-make of `make test` (which would announce its directories).
    env = {name: value for name, value in os.environ.items() if not name.startswith(("MAKE", "MFLAGS"))}
    process = subprocess.Popen(
        ["make", "run"], cwd=tmp_path, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    wait_until(lambda: "watching" in log.read_text(), what="the runner to start")
    yield process, log
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_sigint_to_make_alone_is_seen_by_the_runner_which_then_stops_everything(make_run):
    make, log = make_run
    os.kill(make.pid, signal.SIGINT)
    make.wait(30)

    assert log.read_text().splitlines() == ["watching", "make was interrupted"]


def test_sigterm_to_make_alone_reaches_the_runner(make_run):
    make, log = make_run
    os.kill(make.pid, signal.SIGTERM)
    make.wait(30)

    assert log.read_text().splitlines() == ["watching", "got SIGTERM"]
