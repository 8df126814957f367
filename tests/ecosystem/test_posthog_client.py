"""A Python client generated from **PostHog's** published schema (tests/ecosystem/posthog/, an
excerpt of PostHog's own `openapi.yaml`), pointed at this service under gunicorn (docs/posthog-clients.md).

The client parses every answer into PostHog's models, whose required fields are many (an insight
needs `is_sample`, `effective_privilege_level`, `hogql`, …): parsing proves that this service's
answers carry everything PostHog's clients expect. Where PostHog's schema is wrong about PostHog
itself, the test says so and checks what PostHog's server really does.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.ecosystem.conftest import Stack
from tests.ecosystem.generated import generated_client

pytestmark = [pytest.mark.sdk, pytest.mark.live, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

SCHEMA = Path(__file__).parent / "posthog" / "insights_openapi.yaml"
TRENDS = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
    },
}


@pytest.fixture(scope="module")
def posthog_sdk(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """`posthog_client`, generated from PostHog's schema."""
    schema = yaml.safe_load(SCHEMA.read_text())
    # PostHog declares a group type index as a number enum (0.0 … 4.0), which the generator cannot
    # type (it would leave out every series node); it is an integer everywhere PostHog uses it.
    schema["components"]["schemas"]["MathGroupTypeIndex"].update(type="integer", enum=[0, 1, 2, 3, 4])
    out = tmp_path_factory.mktemp("posthog-sdk")
    (out / "schema.yaml").write_text(yaml.safe_dump(schema))
    with generated_client("posthog_client", out, "--path", out / "schema.yaml") as client:
        yield client


def operation(sdk: ModuleType, name: str) -> ModuleType:
    return importlib.import_module(f"{sdk.__name__}.api.insights.{name}")


@pytest.fixture
def client(posthog_sdk, stack: Stack, key_for, owner):
    return lambda strict=True: posthog_sdk.AuthenticatedClient(
        base_url=stack.url, token=key_for(owner), raise_on_unexpected_status=strict, timeout=30
    )


def test_posthogs_client_creates_lists_retrieves_and_edits_insights_here(posthog_sdk, client, project):
    models, api = posthog_sdk.models, client()
    # PostHog's schema types the create body as a whole Insight, read-only fields required; its
    # PatchedInsight, all optional, is what a caller can build, and serialises the same way.
    body = models.PatchedInsight.from_dict({"name": "Daily visitors", "query": TRENDS, "tags": ["growth"]})

    created = operation(posthog_sdk, "insights_create").sync(str(project.id), client=api, body=body)
    listed = operation(posthog_sdk, "insights_list").sync(str(project.id), client=api)
    retrieved = operation(posthog_sdk, "insights_retrieve").sync(
        project_id=str(project.id),
        id=created.id,
        client=api,
        refresh=models.InsightsRetrieveRefresh.FORCE_BLOCKING,
    )
    patched = operation(posthog_sdk, "insights_partial_update").sync(
        project_id=str(project.id), id=created.id, client=api, body=models.PatchedInsight(favorited=True)
    )
    replaced = operation(posthog_sdk, "insights_update").sync(
        project_id=str(project.id),
        id=created.id,
        client=api,
        body=models.PatchedInsight(name="Visitors", query=patched.query),
    )

    assert isinstance(created, models.Insight) and created.name == "Daily visitors"
    assert isinstance(created.query, models.InsightVizNode)
    assert created.query.source.series[0].event == "$pageview"
    assert (created.tags, created.is_sample, created.effective_privilege_level) == (["growth"], False, 37)
    assert created.created_by.email == "owner@acme.test"
    assert [row.id for row in listed.results] == [created.id] and listed.count == 1
    assert retrieved.is_cached is False and retrieved.result[0]["count"] == 0 and retrieved.last_refresh
    assert (patched.favorited, replaced.name, replaced.favorited, replaced.tags) == (
        True,
        "Visitors",
        False,
        [],
    )


def test_posthogs_client_calls_the_actions_its_schema_lists(posthog_sdk, client, project, make_insight):
    insight = make_insight(name="Watched", query=TRENDS)
    models, strict, lenient = posthog_sdk.models, client(), client(strict=False)
    body = models.PatchedInsight.from_dict  # the actions' bodies are typed as insights too

    # Its schema documents 200 for `viewed` and `cancel`; PostHog's server (like this one) answers 201.
    viewed = operation(posthog_sdk, "insights_viewed_create").sync_detailed(
        str(project.id), client=lenient, body=body({"insight_ids": [insight.id]})
    )
    cancelled = operation(posthog_sdk, "insights_cancel_create").sync_detailed(
        str(project.id), client=lenient, body=body({"client_query_id": "dashboard-1"})
    )
    # The reads the schema leaves untyped answer 200 with the bodies PostHog's frontend reads.
    recent = operation(posthog_sdk, "insights_my_last_viewed_retrieve").sync_detailed(
        str(project.id), client=strict
    )
    trending = operation(posthog_sdk, "insights_trending_retrieve").sync_detailed(
        str(project.id), client=strict
    )
    activity = operation(posthog_sdk, "insights_activity_retrieve").sync_detailed(
        str(project.id), client=strict
    )

    assert (viewed.status_code, viewed.content) == (201, b"")
    assert (cancelled.status_code, json.loads(cancelled.content)) == (201, {"cancelled": False})
    assert [row["id"] for row in json.loads(recent.content)] == [insight.id]
    assert [row["id"] for row in json.loads(trending.content)["results"]] == [insight.id]
    assert json.loads(activity.content)["results"][0]["activity"] == "created"
