"""schemathesis against our own live `/api/schema/`: every operation, with an owner key (scope `*`)
and with a read-only key (`insight:read`), against gunicorn and a real worker.

Passes only with zero server errors and zero answers the schema does not promise: every status code
documented, every content type documented (`?format=csv` answers `text/csv`, a second media type of every
response), every JSON body matching its schema, every documented header
present, schema-invalid input refused with a 4xx, and undocumented methods answered 405.
The run is bounded (a fixed number of examples per operation and phase, a fixed seed) so it takes
about a minute per key on two cores.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.utils import timezone

from insights.models import Event
from tests.ecosystem.conftest import Stack
from tests.live import http

pytestmark = [pytest.mark.fuzz, pytest.mark.live, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "positive_data_acceptance",
    "unsupported_method",
    "ignored_auth",
]
# Per operation and phase; FUZZ_MAX_EXAMPLES=500 (say) digs deeper when run by hand.
MAX_EXAMPLES = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
STATEFUL = os.environ.get("FUZZ_STATEFUL", "") == "1"
SEED = int(os.environ.get("FUZZ_SEED", "20261126"))


def fuzz_config(*, project_id: int, insight_ids: list[str]) -> str:
    """schemathesis.toml: the project and real insights to aim at (random ids would mostly be 404s)."""
    ids = ", ".join(f'"{value}"' for value in insight_ids)
    return f"""
seed = {SEED}
workers = 1  # hypothesis is not thread-safe everywhere (its lambda-source cache raced with 2)
request-timeout = 30
suppress-health-check = ["too_slow", "filter_too_much"]
warnings = false

[generation]
max-examples = {MAX_EXAMPLES}
no-shrink = true
# Unknown query parameters are ignored by design (cache-busters, newer clients); don't send them as
# "invalid" input.
allow-extra-parameters = false
# No text may hold NUL (PostgreSQL cannot store it; the API description says so); refusing it is
# tested in tests/reliability/test_bad_input.py.
allow-x00 = false

[checks]
enabled = false
{chr(10).join(f"{check}.enabled = true" for check in CHECKS)}
# How this API refuses input: 414 is gunicorn's answer to an over-long URL.
negative_data_rejection.expected-statuses = [400, 401, 403, 404, 405, 406, 413, 414, 415, 429, "5xx"]
# Schema-valid input is accepted; 403 is the read-only key writing, 404 an id that is not (or no
# longer) there, 429 the throttle.
positive_data_acceptance.expected-statuses = ["2xx", 401, 403, 404, 429]

# What no schema can know, so a schema-valid body may still be a 400: whether the dashboards and
# members it names exist, and what the Trends engine runs yet (its 400 codes are documented).
[[operations]]
include-path-regex = '/insights/(\\{{id\\}}/)?(access_controls/)?$'
include-method-regex = "^(POST|PUT|PATCH)$"
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 403, 404, 429]

[[operations]]
include-path-regex = "/query/$"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 403, 404, 429]

# Nor whether the views window's date_to comes after its date_from, or the window reaches further
# back than the rollups keep (both a 400 validation_error, as the operation's description says).
[[operations]]
include-path-regex = '/insights/\\{{id\\}}/views/$'
include-method = "GET"
checks.positive_data_acceptance.expected-statuses = ["2xx", 400, 401, 403, 404, 429]

# A query node's schema is deep and recursive: the coverage phase's enumeration of every boundary of
# every nested field runs to ~100,000 cases. The fuzzing phase generates them instead, valid and not.
[[operations]]
include-path-regex = '/(insights/(\\{{id\\}}/|generate_metadata/)?|query/)$'
include-method-regex = "^(POST|PUT|PATCH)$"
phases.coverage.enabled = false

[phases.stateful]
enabled = {"true" if STATEFUL else "false"}

[dictionaries]
insights = {{ values = [{ids}] }}

[parameters]
"path.project_id" = {project_id}
"path.id" = {{ dictionary = "insights", probability = 0.8 }}
"""


@pytest.fixture
def fuzzed_project(project, owner, make_insight, make_dashboard):
    """A project with events, tagged insights on a dashboard, views: every route has data to show."""
    now = timezone.now()
    Event.objects.bulk_create(
        [Event(project=project, timestamp=now - timedelta(hours=hours), event="$pageview", distinct_id=f"u{hours % 4}",
               properties={"$browser": "Chrome" if hours % 3 else "Firefox"}) for hours in range(48)]
    )  # fmt: skip
    query = {
        "kind": "InsightVizNode",
        "source": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]},
    }
    dashboard = make_dashboard("Growth")
    insights = [
        make_insight(name="Pageviews", query=query, tags=["growth", "=formula"], dashboards=[dashboard]),
        make_insight(name="Untitled", tags=["kpi"]),
        make_insight(name="Deleted", deleted=True),
    ]
    return project, [str(insights[0].id), insights[0].short_id, str(insights[1].id), str(insights[2].id)]


def run_schemathesis(stack: Stack, key: str, config: str, workdir: Path) -> tuple[int, str, float]:
    (workdir / "schemathesis.toml").write_text(config)
    started = time.monotonic()
    finished = subprocess.run(
        [Path(sys.executable).parent / "schemathesis", "--config-file", workdir / "schemathesis.toml", "run",
         f"{stack.url}/api/schema/", "--header", f"Authorization: Bearer {key}", "--no-color",
         "--report", "junit", "--report-dir", workdir],
        cwd=workdir, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    output = finished.stdout + finished.stderr
    (workdir / "schemathesis-output.txt").write_text(output)
    return finished.returncode, output, time.monotonic() - started


@pytest.mark.parametrize("scopes", [["*"], ["insight:read"]], ids=["owner-key", "read-only-key"])
def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    stack, key_for, owner, fuzzed_project, scopes, tmp_path
):
    project, insight_ids = fuzzed_project

    status, output, seconds = run_schemathesis(
        stack, key_for(owner, scopes), fuzz_config(project_id=project.id, insight_ids=insight_ids), tmp_path
    )

    generated = re.search(r"(\d+) generated", output)
    print(f"schemathesis, key {scopes}: {generated and generated.group(1)} cases in {seconds:.0f}s")
    assert status == 0, output[-20000:]
    schema = yaml.safe_load(http(f"{stack.url}/api/schema/").content)
    count = sum(len(methods) for methods in schema["paths"].values())
    assert f"Selected: {count}/{count}" in output and f"Tested: {count}" in output, output[-3000:]
    assert "No issues found" in output, output[-3000:]
