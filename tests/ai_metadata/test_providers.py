"""Model providers through their real client libraries, against a local HTTP stub of each API."""

from __future__ import annotations

import pytest

from ai_metadata.providers import MalformedOutput, parse_model_output
from ai_metadata.services import suggestion_from_provider

QUERY = {"kind": "TrendsQuery", "series": [{"kind": "EventsNode", "event": "$pageview"}]}


@pytest.mark.parametrize(
    "reply",
    [
        '{"name": "weekly pageviews", "description": "Counts pageviews."}',
        'Sure! Here you go:\n```json\n{"name": "Weekly Pageviews", "description": "Counts pageviews."}\n```\nAnything else?',
        '```\n{"name": "Weekly Pageviews", "description": "Counts pageviews."}\n```',
        'I think {"name": "Weekly Pageviews", "description": "Counts pageviews. It is great."} fits.',
    ],
)
def test_fenced_or_chatty_replies_are_understood(reply):
    assert parse_model_output(reply) == {"name": "Weekly Pageviews", "description": "Counts pageviews."}


@pytest.mark.parametrize(
    "reply", ["no json here", '{"name": ""}', '{"name": 3, "description": "x"}', "{broken"]
)
def test_unusable_replies_are_refused(reply):
    with pytest.raises(MalformedOutput):
        parse_model_output(reply)


@pytest.mark.parametrize(
    ("provider", "path"), [("openai", "/v1/chat/completions"), ("anthropic", "/v1/messages")]
)
def test_each_provider_sends_the_query_and_shapes_the_reply(llm, settings, provider, path):
    llm.reply('```json\n{"name": "pageviews over time", "description": "Counts pageviews per day"}\n```')

    suggestion = suggestion_from_provider(project_id=1, provider=provider, query=QUERY)

    assert suggestion.as_json() == {
        "name": "Pageviews over Time",
        "description": "Counts pageviews per day.",
        "provider": provider,
        "fallback": False,
    }
    [request] = llm.requests
    assert request["path"] == path
    assert "$pageview" in str(request["body"]["messages"])


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_failing_provider_falls_back_to_the_heuristic(llm, provider):
    llm.reply(status=500)

    suggestion = suggestion_from_provider(project_id=1, provider=provider, query=QUERY)

    assert suggestion.as_json() == {
        "name": "Pageviews",
        "description": "Counts pageviews per day over the last 7 days.",
        "provider": "heuristic",
        "fallback": True,
    }


def test_a_malformed_reply_falls_back_to_the_heuristic(llm):
    llm.reply("I cannot help with that.")

    assert suggestion_from_provider(project_id=1, provider="openai", query=QUERY).fallback is True


def test_a_slow_provider_is_abandoned_at_its_timeout(llm, settings):
    settings.AI_PROVIDER_TIMEOUT_SECONDS = 0.3
    llm.reply(delay=2)

    assert suggestion_from_provider(project_id=1, provider="anthropic", query=QUERY).fallback is True
