"""Pydantic models generated from the live schema with datamodel-code-generator's default options,
as a Python data team would make them, validating what the server really answers: every success
shape of the insight routes and the error envelope."""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType

import pytest
from django.utils import timezone

from insights.models import Event
from tests.ecosystem.conftest import Stack
from tests.live import http

pytestmark = [pytest.mark.live, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TRENDS = {
    "kind": "TrendsQuery",
    "series": [{"kind": "EventsNode", "event": "$pageview", "custom_name": None}],
}


@pytest.fixture(scope="module")
def models(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    out = tmp_path_factory.mktemp("pydantic")
    # Read from a file: the generator refuses URLs on private networks (its SSRF guard).
    (out / "schema.yaml").write_bytes(http(f"{stack.url}/api/schema/").content)
    generated = subprocess.run(
        [Path(sys.executable).parent / "datamodel-codegen", "--input", out / "schema.yaml",
         "--input-file-type", "openapi", "--output", out / "insights_models.py"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("insights_models")
    finally:
        sys.path.remove(str(out))
        sys.modules.pop("insights_models", None)


def test_every_answer_of_the_insight_routes_validates_against_the_generated_models(
    models, stack, key_for, owner, project, make_insight
):
    Event.objects.bulk_create(
        [Event(project=project, timestamp=timezone.now() - timedelta(hours=n), event="$pageview", distinct_id="u")
         for n in range(1, 5)]
    )  # fmt: skip
    # Nulls where a generator might not expect them: no description, no order, a series without a name.
    insight = make_insight(name="Views", query={"kind": "InsightVizNode", "source": TRENDS})
    make_insight(name=None, derived_name=None)
    key = key_for(owner)
    base = f"{stack.url}/api/projects/{project.id}"

    def get(path: str, model: type, method: str = "GET", body: object = None) -> object:
        answer = http(f"{base}{path}", method, key=key, body=body)
        assert answer.status < 500, answer.content
        return model.model_validate_json(answer.content)

    http(f"{base}/insights/viewed/", "POST", key=key, body={"insight_ids": [insight.id]})
    checked = [
        get("/insights/?limit=1", models.PaginatedInsightListItemList),
        get("/insights/?basic=true", models.PaginatedInsightListItemList),
        get(f"/insights/{insight.id}/", models.InsightRetrieve),
        get(f"/insights/{insight.short_id}/?refresh=force_cache", models.InsightRetrieve),
        get("/insights/trending/", models.PaginatedTrendingInsightList),
        get("/insights/activity/", models.PaginatedActivityLogList),
        get(f"/insights/{insight.id}/access_controls/", models.AccessControls),
        get("/query/", models.QueryResponse, "POST", {"query": TRENDS}),
        get("/insights/generate_metadata/", models.MetadataSuggestion, "POST", {"query": TRENDS}),
        get(
            "/insights/bulk_update_tags/",
            models.BulkUpdateTagsResult,
            "POST",
            {"ids": [insight.id], "action": "add", "tags": ["x"]},
        ),
        get("/insights/nosuchid/", models.ErrorEnvelope),
    ]
    recent = http(f"{base}/insights/my_last_viewed/", key=key)
    me = http(f"{stack.url}/api/users/@me/", key=key)

    assert [
        models.InsightBasic.model_validate(row).id for row in __import__("json").loads(recent.content)
    ] == [insight.id]
    assert models.Me.model_validate_json(me.content).email == owner.email
    assert checked[0].next is not None and checked[1].results[0].order is None
    assert checked[-1].detail == "Insight not found."
