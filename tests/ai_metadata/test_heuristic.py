"""The heuristic provider (docs/insight-actions.md#generate_metadata): good, deterministic names for every kind, offline."""

from __future__ import annotations

import re

import pytest

from ai_metadata.heuristic import finish_description, finish_name, heuristic_metadata, humanize_event
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


TRENDS = {"kind": "TrendsQuery", "series": events("$pageview")}
FUNNEL = {"kind": "FunnelsQuery", "series": events("$pageview", "$pageleave")}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"kind": "ActorsQuery", "source": {"kind": "InsightActorsQuery", "source": TRENDS, "day": "2026-03-30"}},
            ("Persons Who Performed Pageviews", "Lists the persons who performed pageviews on 2026-03-30."),
        ),
        (
            {"kind": "ActorsQuery", "source": {"kind": "FunnelsActorsQuery", "source": FUNNEL, "funnelStep": -2}},
            ("Persons Who Dropped Off Before Pageleaves",
             "Lists the persons who dropped off at step 2 (pageleaves) of the pageviews → pageleaves funnel."),
        ),
        (
            {"kind": "ActorsQuery", "source": {"kind": "FunnelsActorsQuery", "source": FUNNEL, "funnelStep": 2}},
            ("Persons Who Converted to Pageleaves",
             "Lists the persons who reached step 2 (pageleaves) of the pageviews → pageleaves funnel."),
        ),
        (
            {"kind": "ActorsQuery", "source": {"kind": "InsightActorsQuery", "status": "resurrecting",
                                               "source": {"kind": "LifecycleQuery", "series": events("$pageview")}}},
            ("Resurrecting Persons for Pageviews", "Lists the persons who were resurrecting for pageviews."),
        ),
        (
            {"kind": "ActorsQuery", "source": {"kind": "InsightActorsQuery", "series": 1,
                                               "source": {"kind": "TrendsQuery", "series": events("$pageview", "$pageleave")}}},
            ("Persons Who Performed Pageleaves", "Lists the persons who performed pageleaves."),
        ),
        ({"kind": "ActorsQuery", "search": "john"}, ("Persons Matching John", "Lists the persons matching “john”.")),
        (
            {"kind": "GroupsQuery", "group_type_index": 3,
             "properties": [{"key": "$virt_revenue", "value": ["5555"], "type": "group"}]},
            ("Groups of Type 3 Filtered on Virt Revenue", "Lists the groups of type 3, filtered on virt revenue."),
        ),
        (
            {"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["count()"], "after": "-24h"}},
            ("All Events", "A table that counts all events over the last 24 hours."),
        ),
        (
            {"kind": "DataTableNode", "source": {"kind": "EventsQuery", "select": ["*"], "event": "$pageview"}},
            ("Latest Pageviews", "Lists the most recent pageviews with the selected columns."),
        ),
        ({"kind": "HogQuery", "code": "return 1"}, ("Hog Program Output", "Shows what a Hog program returns when it runs.")),
    ],
)  # fmt: skip
def test_lists_persons_groups_and_programs_are_named_for_what_they_show(query, expected):
    assert (name_of(query), description_of(query)) == expected


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT toStartOfDay(timestamp) AS day, properties.$browser, count() FROM events "
            "WHERE event = '$pageview' AND timestamp > now() - interval 7 day GROUP BY day, properties.$browser",
            ("Pageviews by Browser",
             "A SQL query that counts pageviews per day over the last 7 days, broken down by browser."),
        ),
        (
            "select uniq(person_id) from events where event in ('purchase', 'signup')",
            ("Unique Users for Purchase and Signup", "A SQL query that computes unique users for purchase and signup."),
        ),
        (
            "select sum(properties.revenue) from events where event = 'purchase' group by properties.$geoip_country_code",
            ("Sum of Revenue for Purchase by Country",
             "A SQL query that computes sum of revenue for purchase, broken down by country."),
        ),
        (
            "WITH buyers AS (SELECT person_id FROM events WHERE event = 'purchase') SELECT count() FROM buyers",
            ("Purchase", "A SQL query that counts purchase."),
        ),
        (
            "SELECT properties.email, properties.name FROM persons LIMIT 100",
            ("Persons with Email and Name", "A SQL query that lists persons with their email and name."),
        ),
        ("select 1", ("Custom SQL Query Result", "Shows the result of a SQL query that reads no table.")),
    ],
)  # fmt: skip
def test_a_sql_insight_is_named_from_what_it_selects_and_from_where(sql, expected):
    for query in (
        {"kind": "HogQLQuery", "query": sql},
        {
            "kind": "DataVisualizationNode",
            "source": {"kind": "HogQLQuery", "query": sql},
            "display": "ActionsLineGraph",
        },
    ):
        assert (name_of(query), description_of(query)) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM events WHERE properties.password = 'hunter2' -- the admin's",
        "select count() from events /* 'hunter2' */ where properties.token = 'hunter2'",
        "SELECT 'hunter2' AS x, count() FROM events GROUP BY x",
        "not sql at all: hunter2",
    ],
)
def test_no_part_of_the_sql_text_but_identifiers_reaches_a_name_or_description(sql):
    answer = heuristic_metadata(query_parse({"kind": "HogQLQuery", "query": sql}))

    for text in answer.values():
        assert "hunter2" not in text.lower() and "'" not in text
        assert not re.search(r"\b(select|where|group by|count\(\))\b", text, re.IGNORECASE), text
