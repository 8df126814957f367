"""The designs measured for workload isolation (issue 11), side by side: `bench/run.py --alternatives`.

Each design is the same service and data under another execution and waiting model:

- the query lane (query workers) or queries computed in the web processes, as before the lane
  (BEFORE_REV, checked out in a scratch git worktree);
- waiting in gevent greenlets, in gunicorn threads (8, as before, or 256), or in ASGI (uvicorn, with
  Django's sync views on its thread pool).

For each: the crowd (200 identical slow queries from two users), the storm (20 different slow
queries of one project while another project's user lists every 100 ms) and the mixed read
throughput. The table is written to bench/alternatives.md and summed up in bench/FINDINGS.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import stack

from bench import isolation
from bench.cases import World
from bench.measure import Client, Statements
from bench.reads import mixed_throughput

# The last commit before the query lane: queries computed in the web processes, gthread waiting.
BEFORE_REV = "42ebcdc"
UVICORN = "uvicorn==0.54.0"


@dataclass(frozen=True)
class Design:
    name: str
    server: str  # "gevent", "gthread:<threads per process>" or "uvicorn"
    lane: bool  # query workers compute (the lane) or the web processes do (before it)


DESIGNS = (
    Design("before: threads (2 x 8), queries in the web processes", "gthread:8", lane=False),
    Design("more threads (2 x 256), queries in the web processes", "gthread:256", lane=False),
    Design("gevent alone, queries in the web processes", "gevent", lane=False),
    Design("query lane, threads (2 x 8)", "gthread:8", lane=True),
    Design("query lane, ASGI (uvicorn, 2 processes)", "uvicorn", lane=True),
    Design("query lane, gevent (this design)", "gevent", lane=True),
)


def server_argv(design: Design, port: int) -> list[str | Path]:
    python = stack.VENV_BIN / "python"
    if design.server == "uvicorn":
        return [python, "-m", "uvicorn", "insights_api.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--workers", "2", "--no-access-log"]  # fmt: skip
    argv: list[str | Path] = [python, "-m", "gunicorn", "insights_api.wsgi:application", "--bind",
                              f"127.0.0.1:{port}", "--workers", "2", "--timeout", "120", "--no-control-socket"]  # fmt: skip
    if design.server == "gevent":
        return [*argv, "--worker-class", "gevent", "--worker-connections", "1000"]
    return [*argv, "--worker-class", "gthread", "--threads", design.server.split(":")[1]]


@contextlib.contextmanager
def running(
    design: Design, services: stack.ServiceStack, scratch: Path, env: dict[str, str], code: Path
) -> Iterator[str]:
    """The design's server (and query worker) from `code`; yields its base URL once it answers."""
    port = stack.free_port(28200)
    log = scratch / f"alternative-{port}.log"
    environment = {**os.environ, **env}
    with contextlib.ExitStack() as started:
        if design.lane:
            started.enter_context(
                stack.service(
                    "query worker",
                    [stack.VENV_BIN / "celery", "-A", "insights_api", "worker", "--queues", "queries",
                     "--concurrency", "2", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                    log=scratch / f"query-worker-{port}.log", env={**environment, "DATABASE_POOL": "false"}, cwd=code,
                )
            )  # fmt: skip
        server = started.enter_context(
            stack.service("server", server_argv(design, port), log=log, env=environment, cwd=code)
        )
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if Client(url, "").call("GET", "/_health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.exited():
                raise stack.StackError(f"{design.name} did not start:\n{stack.log_tail(log)}")
            time.sleep(0.1)
        yield url


@contextlib.contextmanager
def before_checkout(scratch: Path) -> Iterator[Path]:
    """BEFORE_REV in a git worktree of its own (removed afterwards)."""
    tree = scratch / "before"
    stack.run_checked(["git", "worktree", "add", "--detach", tree, BEFORE_REV], what="git worktree add",
                      cwd=stack.ROOT)  # fmt: skip
    try:
        yield tree
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=stack.ROOT, capture_output=True)


def ensure_uvicorn() -> None:
    if shutil.which("uvicorn", path=str(stack.VENV_BIN)) is None:
        stack.say(f"bench: installing {UVICORN} for the ASGI design")
        stack.run_checked([stack.VENV_BIN / "pip", "install", "-q", UVICORN], what="pip install uvicorn")


def compare(
    services: stack.ServiceStack, scratch: Path, env: dict[str, str], world: World, *, days: int
) -> str:
    """Measure every design; the markdown table of what each did."""
    ensure_uvicorn()
    statements = Statements(world.database_url)
    rows = []
    with before_checkout(scratch) as before:
        for design in DESIGNS:
            stack.say(f"bench: {design.name}")
            with running(design, services, scratch, env, stack.ROOT if design.lane else before) as url:
                lister = isolation.Lister(
                    Client(url, world.second_key), f"/api/projects/{world.project}/insights/?limit=5"
                )
                crowd = isolation.crowd(
                    url, [world.key, world.second_key], world.events_project, size=200, days=days,
                    executions=lambda: statements.calls_matching(isolation.EXECUTION_PATTERN), lister=lister,
                )  # fmt: skip
                storm = isolation.storm(
                    url, world.key, world.events_project, days=days, lister_key=world.second_key,
                    lister_project=world.project,
                )  # fmt: skip
                rate = mixed_throughput(url, world)
            rows.append(
                f"| {design.name} | {crowd.executions} | {isolation.statuses(crowd.answers)} | "
                f"{crowd.ratio:.2f}x ({crowd.wall:.1f} s vs {crowd.single:.1f} s) | "
                f"{isolation.statuses(storm.answers)} | {storm.ratio:.1f}x ({storm.load_p95 * 1000:.0f} ms vs "
                f"{storm.idle_p95 * 1000:.0f} ms), slowest {storm.load_max * 1000:.0f} ms"
                f"{_failures(storm.lister_failures)} | {rate:.0f} req/s |"
            )
    return "\n".join(
        [
            "| design | crowd: executions | crowd: answers | crowd: wall / one run | storm: answers | "
            "storm: other project's list p95 (loaded / idle) | mixed reads |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
    )


def _failures(failures: dict[int, int]) -> str:
    return (
        "; failed lists: " + ", ".join(f"{n} x {s}" for s, n in sorted(failures.items())) if failures else ""
    )


if __name__ == "__main__":
    sys.exit("Run it through bench/run.py --alternatives (it sets up the services and data).")
