"""The heuristic provider (SPEC §3.3): good, deterministic names for every kind, offline."""

from __future__ import annotations

import re

import pytest

from ai_metadata.naming import finish_description, finish_name, heuristic_metadata, humanize_event
from insights.query_nodes import query_parse

FILLER = re.compile(r"\b(count|total|data|trend)\b", re.IGNORECASE)


def events(*names: str, **fields) -> list[dict]:
    return [{"kind": "EventsNode", "event": name, **fields} for name in names]


def name_of(query: dict) -> str:
    return heuristic_metadata(query_parse(query))["name"]


def description_of(query: dict) -> str:
    return heuristic_metadata(query_parse(query))["description"]


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ("$pageview", "Pageviews"),
        ("$autocapture", "Autocaptured Events"),
        ("user_signed_up", "User Signed Up"),
        ("checkoutCompleted", "Checkout Completed"),
        ("$custom-thing", "Custom Thing"),
        (None, "All Events"),
    ],
)
def test_event_names_are_humanised(event, expected):
    assert humanize_event(event) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"kind": "TrendsQuery", "series": events("$pageview")}, "Pageviews"),
        (
            {
                "kind": "InsightVizNode",
                "source": {"kind": "TrendsQuery", "series": events("$pageview", math="dau")},
            },
            "Unique Users for Pageviews",
        ),
        ({"kind": "TrendsQuery", "series": events("$pageview", math="weekly_active")}, "Weekly Active Users"),
        (
            {"kind": "TrendsQuery", "series": events("purchase", math="sum", math_property="revenue")},
            "Sum of Revenue for Purchase",
        ),
        (
            {
                "kind": "TrendsQuery",
                "series": events("$pageview"),
                "breakdownFilter": {"breakdown": "$browser"},
            },
            "Pageviews by Browser",
        ),
        (
            {
                "kind": "TrendsQuery",
                "series": events("user_signed_up"),
                "breakdownFilter": {
                    "breakdowns": [{"property": "$browser"}, {"property": "$geoip_country_code"}]
                },
            },
            "User Signed Up by Browser and Country",
        ),
        ({"kind": "TrendsQuery", "series": events("$pageview", "purchase")}, "Pageviews and Purchase"),
        (
            {"kind": "FunnelsQuery", "series": events("$pageview", "user_signed_up")},
            "Pageviews → User Signed Up Conversion",
        ),
        (
            {
                "kind": "RetentionQuery",
                "retentionFilter": {
                    "targetEntity": {"id": "user_signed_up"},
                    "returningEntity": {"id": "$pageview"},
                    "period": "Week",
                },
            },
            "Weekly Pageviews Retention After User Signed Up",
        ),
        (
            {"kind": "PathsQuery", "pathsFilter": {"includeEventTypes": ["$pageview", "$screen"]}},
            "Page & Screen Paths",
        ),
        ({"kind": "StickinessQuery", "series": events("$pageview")}, "Stickiness of Pageviews"),
        ({"kind": "LifecycleQuery", "series": events("$pageview")}, "User Lifecycle for Pageviews"),
        ({"kind": "EventsQuery", "select": ["*"], "event": "purchase"}, "Latest Purchase"),
        (
            {"kind": "ActorsQuery", "source": {"kind": "TrendsQuery", "series": events("$pageview")}},
            "People in Pageviews",
        ),
    ],
)
def test_each_kind_gets_a_name_for_what_it_shows(query, expected):
    assert name_of(query) == expected


def test_by_appears_only_with_a_breakdown():
    plain = {
        "kind": "TrendsQuery",
        "series": events("$pageview"),
        "properties": [{"key": "$browser", "value": "Chrome"}],
    }

    assert " by " not in name_of(plain)


def test_funnels_never_say_vs():
    assert (
        "vs" not in name_of({"kind": "FunnelsQuery", "series": events("a", "b", "c", "d", "e", "f")}).split()
    )


def test_names_are_title_case_without_filler_and_of_three_to_twelve_words_when_rich_enough():
    queries = [
        {
            "kind": "TrendsQuery",
            "series": events("$pageview", math="dau"),
            "breakdownFilter": {"breakdown": "$os"},
        },
        {"kind": "FunnelsQuery", "series": events("$pageview", "user_signed_up", "purchase")},
        {"kind": "RetentionQuery", "retentionFilter": {"targetEntity": {"id": "user_signed_up"}}},
    ]
    for query in queries:
        name = name_of(query)
        words = name.split()
        assert 3 <= len(words) <= 12, name
        assert not FILLER.search(name), name
        assert all(word[0].isupper() or word in {"by", "and", "for", "of", "→"} for word in words), name


def test_descriptions_say_what_over_which_period_and_how_it_is_split():
    description = description_of(
        {
            "kind": "TrendsQuery",
            "series": events("$pageview"),
            "interval": "week",
            "dateRange": {"date_from": "-30d"},
            "breakdownFilter": {"breakdown": "$browser"},
        }
    )

    assert description == "Counts pageviews per week over the last 30 days, broken down by browser."


def test_the_same_query_always_gets_the_same_answer():
    query = {
        "kind": "FunnelsQuery",
        "series": events("$pageview", "purchase"),
        "dateRange": {"date_from": "-14d"},
    }

    assert heuristic_metadata(query_parse(query)) == heuristic_metadata(query_parse(query))


def test_long_names_and_descriptions_are_cut_with_an_ellipsis():
    name = finish_name("word " * 40)
    description = finish_description("x" * 300)

    assert len(name) == 100 and name.endswith("...")
    assert len(description) == 200 and description.endswith("...")


def test_shaping_strips_quotes_and_keeps_one_sentence():
    assert finish_name('"weekly signups"') == "Weekly Signups"
    assert finish_description("Counts signups. Then says more.") == "Counts signups."
