"""What a test does when the machine lacks a real part it needs (a browser, a server binary, a
toolchain): on a developer's machine it is skipped, saying what to install; in CI (`CI` set, as
.ci/run sets it) it fails with the same sentence, so a run without the part cannot pass by not
running. Any other skip fails in CI too: tests/conftest.py takes the hook below."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

FALSE = ("", "0", "false", "no", "off")


def in_ci() -> bool:
    """Whether this run is CI's: `CI` set to anything but a false word (CI services set `CI=true`)."""
    return os.environ.get("CI", "").strip().lower() not in FALSE


def missing(what: str, *, install: str) -> NoReturn:
    """Stop the test: `what` is not on this machine, and `install` says how to get it."""
    message = f"{what} is missing; install it with: {install}"
    if in_ci():
        pytest.fail(f"In CI no test may skip: {message}", pytrace=False)
    pytest.skip(message)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """In CI a skip is a failure: whatever a test skips for, a run that skipped it has not shown
    that it works."""
    report = yield
    if report.skipped and in_ci() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"In CI no test may skip: {reason}"
    return report
