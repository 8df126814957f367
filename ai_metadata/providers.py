"""Where suggestions come from: the offline heuristic, or a model behind an official client library.

`openai` speaks to any OpenAI-compatible chat-completions endpoint (hosted, or Ollama/vLLM through
OPENAI_BASE_URL); `anthropic` to the Messages API. A model's reply is parsed tolerantly (code
fences and chatter around the JSON are fine) and shaped by the same rules as the heuristic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Protocol

from django.conf import settings

from ai_metadata.heuristic import finish_description, finish_name, heuristic_metadata
from ai_metadata.heuristic.wording import Metadata
from ai_metadata.prompts import SYSTEM_PROMPT, user_message
from infra.json_types import JSONObject
from insights.query_nodes import AnyQueryNode

HEURISTIC, OPENAI, ANTHROPIC = "heuristic", "openai", "anthropic"
PROVIDERS = (HEURISTIC, OPENAI, ANTHROPIC)
FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


class MalformedOutput(ValueError):
    """The model's reply held no usable {"name", "description"} object."""


class Provider(Protocol):
    def suggest(self, *, node: AnyQueryNode, query: JSONObject) -> Metadata: ...


class HeuristicProvider:
    def suggest(self, *, node: AnyQueryNode, query: JSONObject) -> Metadata:
        return heuristic_metadata(node)


class OpenAIProvider:
    def suggest(self, *, node: AnyQueryNode, query: JSONObject) -> Metadata:
        import openai  # imported on first use: the SDK costs every process ~1 s of start-up

        client = openai.OpenAI(
            api_key=settings.OPENAI_API_KEY or "not-needed",  # local servers accept any key
            base_url=settings.OPENAI_BASE_URL or None,
            timeout=settings.AI_PROVIDER_TIMEOUT_SECONDS,
            max_retries=0,  # the deadline is short; the heuristic is the fallback
        )
        response = client.chat.completions.create(
            model=settings.OPENAI_MODEL,
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": user_message(query)},
            ],
            # No sampling or length options: servers and models disagree on their names; the
            # prompt asks for a short JSON object and the reply is shaped afterwards anyway.
        )
        return parse_model_output(response.choices[0].message.content or "")


class AnthropicProvider:
    def suggest(self, *, node: AnyQueryNode, query: JSONObject) -> Metadata:
        import anthropic  # imported on first use, like openai

        client = anthropic.Anthropic(
            api_key=settings.ANTHROPIC_API_KEY or "not-set",
            base_url=settings.ANTHROPIC_BASE_URL or None,
            timeout=settings.AI_PROVIDER_TIMEOUT_SECONDS,
            max_retries=0,
        )
        response = client.messages.create(
            model=settings.ANTHROPIC_MODEL,
            system=SYSTEM_PROMPT,
            messages=[{"role": "user", "content": user_message(query)}],
            max_tokens=300,
        )
        text = "".join(
            block.text for block in response.content if isinstance(block, anthropic.types.TextBlock)
        )
        return parse_model_output(text)


def provider_for(name: str) -> Provider:
    providers: dict[str, Callable[[], Provider]] = {
        HEURISTIC: HeuristicProvider,
        OPENAI: OpenAIProvider,
        ANTHROPIC: AnthropicProvider,
    }
    return providers[name]()


def parse_model_output(text: str) -> Metadata:
    """Find the first JSON object with string `name` and `description` in a model's reply, inside
    a code fence or surrounded by chatter, and shape it (Title Case, one sentence, length caps)."""
    candidates = [*FENCE.findall(text), text]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        for start in (index for index, char in enumerate(candidate) if char == "{"):
            try:
                value, _ = decoder.raw_decode(candidate, start)
            except ValueError:
                continue
            if isinstance(value, dict) and _usable(value.get("name")) and _usable(value.get("description")):
                return {
                    "name": finish_name(value["name"]),
                    "description": finish_description(value["description"]),
                }
    raise MalformedOutput(f"No name/description object in the model's reply ({len(text)} characters).")


def _usable(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
