"""`POST …/insights/generate_metadata/` (docs/insight-actions.md#generate_metadata), end to end: model providers run on a real worker."""

from __future__ import annotations

import pytest

from accounts.models import Organization
from insights.models import Insight

QUERY = {
    "kind": "InsightVizNode",
    "source": {
        "kind": "TrendsQuery",
        "series": [{"kind": "EventsNode", "event": "$pageview", "math": "dau"}],
        "breakdownFilter": {"breakdown": "$browser"},
    },
}


@pytest.fixture
def generate(owner_api, insights_url):
    return lambda body, client=owner_api: client.post(
        f"{insights_url}generate_metadata/", body, format="json"
    )


@pytest.fixture
def approve(org):
    def set_approval(approved: bool = True) -> None:
        Organization.objects.filter(id=org.id).update(is_ai_data_processing_approved=approved)

    return set_approval


@pytest.mark.django_db
def test_the_heuristic_answers_by_default_and_writes_nothing(generate, make_insight):
    insight = make_insight(name="Untouched")

    response = generate({"name": "ignored", "query": QUERY})

    assert response.status_code == 200
    assert response.json() == {
        "name": "Unique Users for Pageviews by Browser",
        "description": "Measures unique users for pageviews per day over the last 7 days, broken down by browser.",
        "provider": "heuristic",
        "fallback": False,
    }
    assert list(Insight.objects.values_list("name", flat=True)) == [insight.name]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, "Missing 'query' field in request body"),
        ({"query": None}, "Missing 'query' field in request body"),
        ({"query": {}}, "Missing 'query' field in request body"),
        ({"query": {"kind": "NoSuchQuery"}}, "Invalid query format"),
        ({"query": {"kind": "TrendsQuery", "series": []}}, "Invalid query format"),
        (
            {"query": {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "math": "sum"}]}},
            "Invalid query format",
        ),
        ({"query": "select * from events"}, "Invalid query format"),
        ({"query": [1, 2]}, "Invalid query format"),
    ],
)
def test_a_missing_or_invalid_query_is_a_400(generate, body, detail):
    response = generate(body)

    assert response.status_code == 400
    assert (response.json()["attr"], response.json()["detail"]) == ("query", detail)


@pytest.mark.django_db
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_external_providers_need_the_organizations_approval(generate, settings, llm, provider):
    settings.AI_PROVIDER = provider

    response = generate({"query": QUERY})

    assert response.status_code == 403
    assert response.json()["detail"] == "AI data processing must be approved by your organization"
    assert llm.requests == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_an_approved_provider_answers_through_the_worker(
    celery_worker, generate, settings, llm, approve, provider
):
    settings.AI_PROVIDER = provider
    approve()
    llm.reply(
        'Here it is: {"name": "daily browser users", "description": "Unique users per day by browser."}'
    )

    response = generate({"query": QUERY})

    assert response.status_code == 200
    assert response.json() == {
        "name": "Daily Browser Users",
        "description": "Unique users per day by browser.",
        "provider": provider,
        "fallback": False,
    }
    assert len(llm.requests) == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_answers_are_cached_per_project_query_and_provider(celery_worker, generate, settings, llm, approve):
    settings.AI_PROVIDER = "openai"
    approve()
    llm.reply('{"name": "First Answer", "description": "From the model."}')
    llm.reply('{"name": "Second Answer", "description": "From the model again."}')
    reordered = {"source": dict(reversed(list(QUERY["source"].items()))), "kind": "InsightVizNode"}

    first = generate({"query": QUERY}).json()
    again = generate({"query": reordered}).json()

    assert first["name"] == again["name"] == "First Answer"
    assert len(llm.requests) == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_failing_model_gives_the_heuristic_with_fallback(celery_worker, generate, settings, llm, approve):
    settings.AI_PROVIDER = "anthropic"
    approve()
    llm.reply(status=500)

    body = generate({"query": QUERY}).json()

    assert (body["provider"], body["fallback"]) == ("heuristic", True)
    assert body["name"] == "Unique Users for Pageviews by Browser"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_missed_deadline_gives_the_heuristic_with_fallback(celery_worker, generate, settings, llm, approve):
    settings.AI_PROVIDER = "openai"
    settings.AI_METADATA_DEADLINE_SECONDS = 0.5
    approve()
    llm.reply(delay=3)

    response = generate({"query": QUERY})

    assert response.status_code == 200
    assert (response.json()["provider"], response.json()["fallback"]) == ("heuristic", True)


@pytest.mark.django_db
def test_the_ai_budget_is_per_project(generate, settings, client_for, teammate):
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES, "ai_project": "2/hour"}

    statuses = [generate({"query": QUERY}).status_code for _ in range(2)]
    teammates_turn = generate({"query": QUERY}, client=client_for(teammate))

    assert statuses == [200, 200]
    assert teammates_turn.status_code == 429
    assert teammates_turn.json()["type"] == "throttled_error"
    assert "Retry-After" in teammates_turn
