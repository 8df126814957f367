"""`make test`: throwaway PostgreSQL and Redis on test-only ports, then pytest against them.

Both servers live in a fresh temporary directory that is deleted afterwards. Arguments are passed to
pytest, and the exit status is pytest's. The Celery worker that integration tests need is started by
a pytest fixture; INSIGHTS_TEST_STACK=1 tells the tests that real services are up, and `CI` (passed
through; .ci/run sets it) that nothing may skip (tests/missing.py). As root, a missing Chromium is
installed for the browser tests, or the run fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

import stack

# Apart from `make run`'s ports (15432, 16379), so tests can run while the service is serving; if a
# port is busy (a second `make test`, say) the next free one is used.
PG_PORT = 25433
REDIS_PORT = 26380


def run_pytest(args: Sequence[str], env: Mapping[str, str]) -> int:
    pytest = subprocess.Popen([stack.VENV_BIN / "python", "-m", "pytest", *args], env=env, cwd=stack.ROOT)

    # pytest stays in our process group, so a Ctrl-C at the terminal reaches it directly (it reports
    # and cleans up, and `--pdb` keeps the terminal); here SIGINT only waits for it to finish.
    # SIGTERM is passed on, in case it was sent to this process alone.
    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGTERM:
            pytest.terminate()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = pytest.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status if status >= 0 else 128 - status  # killed by a signal: the shell's convention


# Debian's packages; tests/ecosystem/browser.py finds either.
CHROMIUM_BINARIES = ("chromium", "chromium-headless-shell")
BROWSER_TESTS = "tests/ecosystem/test_docs_browser.py"


def browser_tests_selected(args: Sequence[str], env: Mapping[str, str]) -> bool:
    """Whether these pytest arguments run the browser tests: always with none, else ask pytest."""
    if not args:
        return True
    collected = subprocess.run(
        [stack.VENV_BIN / "python", "-m", "pytest", "--collect-only", "-q", *args],
        env=env, cwd=stack.ROOT, capture_output=True, text=True,
    )  # fmt: skip
    return BROWSER_TESTS in collected.stdout


def ensure_chromium(args: Sequence[str], env: Mapping[str, str]) -> None:
    """apt-get install Debian's `chromium` for the docs-in-a-browser tests, when they will run and it
    is missing: as root, or fail (a StackError stops `make test`). Not as root, the tests themselves
    skip saying what to install, and fail saying it in CI (tests/missing.py)."""
    if any(shutil.which(name) for name in CHROMIUM_BINARIES) or not browser_tests_selected(args, env):
        return
    if not stack.IS_ROOT:
        stack.warn(
            "Chromium is not installed: the browser tests will skip (fail in CI); apt-get install chromium"
        )
        return
    stack.say("Chromium is not installed; installing Debian's chromium for the browser tests (once)...")
    started = time.monotonic()
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    stack.run_checked(["apt-get", "update", "-q"], what="apt-get update", env=apt_env)
    stack.run_checked(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"],
        what="apt-get install chromium (the browser tests need it)",
        env=apt_env,
    )
    if not any(shutil.which(name) for name in CHROMIUM_BINARIES):
        raise stack.StackError(
            f"apt-get installed chromium, yet none of {', '.join(CHROMIUM_BINARIES)} is on PATH"
        )
    stack.say(f"chromium installed in {time.monotonic() - started:.1f}s")


def main(pytest_args: Sequence[str]) -> int:
    started = time.monotonic()
    try:
        with stack.ServiceStack() as services:
            # As root the `postgres` user must reach the cluster: /tmp, never a TMPDIR in root's home.
            tmp = Path(tempfile.mkdtemp(prefix="insights-test-", dir="/tmp" if stack.IS_ROOT else None))
            services.callback(shutil.rmtree, tmp, ignore_errors=True)
            tmp.chmod(0o711 if stack.IS_ROOT else 0o700)

            redis = services.enter_context(stack.redis_server(tmp / "redis", REDIS_PORT))
            bindir = stack.system_postgres_bindir() or stack.install_system_postgres()
            pg = services.enter_context(stack.postgres_cluster(bindir, tmp / "pg", PG_PORT, durable=False))
            # pytest-django creates and drops `test_insights` itself.
            stack.create_database(pg, "insights")
            stack.say(
                f"test services up in {time.monotonic() - started:.1f}s: PostgreSQL {pg.version} on "
                f"127.0.0.1:{pg.port}, Redis on 127.0.0.1:{redis.port}"
            )

            env = {
                **os.environ,
                "DATABASE_URL": pg.url("insights"),
                "REDIS_URL": redis.url(1),
                "CELERY_BROKER_URL": redis.url(2),
                "CELERY_RESULT_BACKEND": redis.url(3),
                "SECRET_KEY": "test-only",
                "INSIGHTS_TEST_STACK": "1",
            }
            # pyproject.toml names the test settings; a DJANGO_SETTINGS_MODULE exported in the shell
            # (for manage.py, say) would win over it and run the tests with production settings.
            env.pop("DJANGO_SETTINGS_MODULE", None)
            ensure_chromium(pytest_args, env)
            status = run_pytest(pytest_args, env)
        return status
    except stack.StackError as error:
        print(f"make test: {error}", file=sys.stderr)
        return 1
    except stack.Interrupted as interrupted:
        print(f"make test: interrupted ({interrupted}); services stopped", file=sys.stderr)
        return 128 + interrupted.signum


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
