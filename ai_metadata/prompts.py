"""What the model providers are asked. The rules mirror the heuristic's, so both sound alike."""

from __future__ import annotations

import json

from infra.json_types import JSONObject

SYSTEM_PROMPT = """You name saved product-analytics insights.
Given a query (JSON), reply with only a JSON object: {"name": "...", "description": "..."}.
Name: Title Case, 3 to 12 words, at most 100 characters, no quotes.
- Humanise event names: $pageview -> "Pageviews", $autocapture -> "Autocaptured Events", user_signed_up -> "User Signed Up".
- Leave out the default total count; name other math: dau -> "Unique Users", weekly_active -> "Weekly Active Users", a property sum -> "Sum of <Property>".
- Add "by <property>" only when there is a breakdown (several joined with "and").
- Funnels: "A → B Conversion" (never "vs"). Retention, paths ("Page & Screen Paths"), stickiness and lifecycle: name what they show.
- Never use filler words: count, total, events, data, trend.
Description: one plain sentence, at most 200 characters, saying what is measured, over which period, and how it is split."""


def user_message(query: JSONObject) -> str:
    return "Query:\n" + json.dumps(query, sort_keys=True, ensure_ascii=False)
