"""The soak's short version (issue 22, item 6): a minute of `make soak` (bench/soak.py), mixed traffic
from several projects and keys through a Redis restart and a PostgreSQL crash, on private servers of
its own. `make soak` runs the same for ten minutes; RELIABILITY.md records such a run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.reliability.processes import ROOT

pytestmark = [pytest.mark.live, pytest.mark.slow]


def test_a_minute_of_mixed_traffic_through_a_redis_and_a_postgres_restart_answers_as_documented_and_loses_nothing(
    tmp_path,
):
    report_path = tmp_path / "soak.json"
    run = subprocess.run(
        [sys.executable, "bench/soak.py", "--seconds", "60", "--json", str(report_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert report_path.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads(report_path.read_text())
    print(
        "soak (60 s):",
        json.dumps({name: report[name] for name in ("requests", "by_status", "refused_by_phase")}),
    )

    assert report["unexpected"] == [], report["unexpected"]
    assert set(report["by_status"]) <= {"200", "201", "429", "503"}, report["by_status"]
    assert report["views_acknowledged"] > 0 and report["tags_acknowledged"] > 0
    assert report["views_lost"] == report["views_missing_from_trending"] == report["tags_lost"] == 0, report
    assert run.returncode == 0, run.stdout[-3000:]
