"""TypeScript clients from the live schema, as a frontend team would make them: openapi-typescript's
types with openapi-fetch, compiled with `tsc --strict` and run against gunicorn; @hey-api/openapi-ts's
SDK, compiled the same way; and Redocly's recommended lint of the same schema. The toolchain is pinned in tests/ecosystem/typescript/ and
installed (`npm ci`) once into build/typescript/.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.ecosystem.conftest import Stack
from tests.missing import missing

pytestmark = [pytest.mark.live, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SOURCES = Path(__file__).parent / "typescript"
WORKDIR = ROOT / "build" / "typescript"


def run(
    *command: str | Path, env: dict[str, str] | None = None, timeout: int = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(part) for part in command], cwd=WORKDIR, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


@pytest.fixture(scope="module")
def toolchain() -> Path:
    """build/typescript/ with the pinned packages installed (again only when the lockfile changed)."""
    if not (shutil.which("node") and shutil.which("npm")):
        missing(
            "Node.js (22.18 or later, for the pinned @hey-api/openapi-ts) with npm",
            install="your Node.js distribution's packages",
        )
    WORKDIR.mkdir(parents=True, exist_ok=True)
    lock = (SOURCES / "package-lock.json").read_bytes()
    stamp = WORKDIR / ".installed"
    for name in (
        "package.json",
        "package-lock.json",
        "tsconfig.json",
        "tsconfig.heyapi.json",
        "client.ts",
        "heyapi.ts",
    ):
        shutil.copy(SOURCES / name, WORKDIR / name)
    if not stamp.exists() or stamp.read_text() != hashlib.sha256(lock).hexdigest():
        installed = run("npm", "ci", "--no-audit", "--no-fund", "--loglevel=error", timeout=600)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        stamp.write_text(hashlib.sha256(lock).hexdigest())
    return WORKDIR / "node_modules" / ".bin"


def test_redocly_finds_nothing_to_report_in_the_schema(stack: Stack, toolchain):
    linted = run(toolchain / "redocly", "lint", f"{stack.url}/api/schema/", "--config", ROOT / "redocly.yaml")

    output = linted.stdout + linted.stderr
    assert linted.returncode == 0, output
    assert "Your API description is valid" in output and "Warning was generated" not in output, output


def test_a_strict_typescript_client_compiles_without_casts_and_runs_against_the_server(
    stack: Stack, toolchain, key_for, owner, project, pageviews
):
    generated = run(toolchain / "openapi-typescript", f"{stack.url}/api/schema/", "-o", "schema.d.ts")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    compiled = run(toolchain / "tsc", "-p", "tsconfig.json")
    assert (compiled.returncode, compiled.stdout + compiled.stderr) == (0, "")
    assert " as " not in (WORKDIR / "client.ts").read_text()  # no casts

    ran = run(
        "node",
        "dist/client.js",
        env={"BASE_URL": stack.url, "API_KEY": key_for(owner), "PROJECT_ID": str(project.id)},
    )

    assert ran.returncode == 0, ran.stdout + ran.stderr
    answer = json.loads(ran.stdout.strip().splitlines()[-1])
    assert answer == {
        "favorited": True,
        "listed": ["Pageviews from TypeScript"],
        "next": None,
        "counts": [29],
        "trending": [["Pageviews from TypeScript", 1]],
        "views": [1, 1],
        "viewers": [["owner@acme.test", 1]],
        "usage": [1, 1, 1, ["owner@acme.test"]],
        "bulk": [True, False],
        "renamed": 1,
        "tags": [["typescript", 1]],
        "untagged": 1,
        "missing": "Insight not found.",
    }


def test_the_hey_api_sdk_compiles_strict_without_casts(stack: Stack, toolchain):
    shutil.rmtree(WORKDIR / "heyapi", ignore_errors=True)
    generated = run(toolchain / "openapi-ts", "-i", f"{stack.url}/api/schema/", "-o", "heyapi")
    assert generated.returncode == 0, generated.stdout + generated.stderr

    compiled = run(toolchain / "tsc", "-p", "tsconfig.heyapi.json")

    assert (compiled.returncode, compiled.stdout + compiled.stderr) == (0, "")
    assert " as " not in (WORKDIR / "heyapi.ts").read_text()


def test_a_mistyped_query_does_not_compile(stack: Stack, toolchain):
    generated = run(toolchain / "openapi-typescript", f"{stack.url}/api/schema/", "-o", "schema.d.ts")
    assert generated.returncode == 0, generated.stdout + generated.stderr
    (WORKDIR / "typo.ts").write_text(
        'import type { components } from "./schema";\n'
        'type Query = components["schemas"]["QueryNode"];\n'
        'export const misspelt: Query = { kind: "TrendsQuery", seris: [] };\n'
        'export const badMath: Query = { kind: "TrendsQuery", series: [{ kind: "EventsNode", math: "totl" }] };\n'
        'export const badKind: Query = { kind: "TrendQuery", series: [] };\n'
        'export const fine: Query = { kind: "TrendsQuery", series: [{ kind: "EventsNode", math: "dau" }] };\n'
    )
    (WORKDIR / "tsconfig.typo.json").write_text(
        json.dumps({"extends": "./tsconfig.json", "compilerOptions": {"noEmit": True}, "files": ["typo.ts"]})
    )

    compiled = run(toolchain / "tsc", "-p", "tsconfig.typo.json")

    errors = [line for line in compiled.stdout.splitlines() if "error TS" in line]
    assert sorted(int(line.split("(")[1].split(",")[0]) for line in errors) == [3, 4, 5], compiled.stdout
