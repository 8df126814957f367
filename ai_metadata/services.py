"""Suggesting an insight's name and description (docs/insight-actions.md#generate_metadata).

The heuristic runs inline: it is a pure function of the query and needs nothing else. A model
provider runs on a Celery worker and the request waits for it up to AI_METADATA_DEADLINE_SECONDS;
a provider error, an unusable reply, a missed deadline or an unreachable broker all give the
heuristic answer marked `fallback: true`. Model answers are cached per (project, normalised query,
provider).
"""

from __future__ import annotations

import logging
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from typing import TypedDict, cast

import redis
from celery import current_app as celery_app  # the project's app (insights_api.celery), set as current
from django.conf import settings
from kombu.exceptions import OperationalError as BrokerUnavailable

from accounts.models import Project
from ai_metadata.heuristic import heuristic_metadata
from ai_metadata.providers import HEURISTIC, provider_for
from infra import slots
from infra.errors import DomainError
from infra.json_types import JSONObject
from infra.records import DeadlinePassed, Record, RedisLost, Snapshot
from infra.redis import cache_get, cache_set
from insights.query_nodes import query_fingerprint, query_parse

logger = logging.getLogger(__name__)
GENERATE_TASK = "ai_metadata.generate_metadata"  # ai_metadata/tasks.py; sent by name
REPLY_TTL_SECONDS = 300


class AIProcessingNotApproved(DomainError):
    """The organization has not approved sending its data to an external AI provider."""

    status = 403
    code = "permission_denied"
    type = "authentication_error"
    default_detail = "AI data processing must be approved by your organization"


class SuggestionJSON(TypedDict):
    """A Suggestion as JSON: cached, and a worker's reply."""

    name: str
    description: str
    provider: str
    fallback: bool


@dataclass(frozen=True)
class Suggestion:
    name: str
    description: str
    provider: str
    fallback: bool = False

    def as_json(self) -> SuggestionJSON:
        return {"name": self.name, "description": self.description, "provider": self.provider,
                "fallback": self.fallback}  # fmt: skip


def metadata_suggest(*, project: Project, query: JSONObject) -> Suggestion:
    """The suggestion for a query already validated with query_parse."""
    node = query_parse(query)
    provider = settings.AI_PROVIDER
    if provider == HEURISTIC:
        return Suggestion(**heuristic_metadata(node), provider=HEURISTIC)
    if not project.organization.is_ai_data_processing_approved:
        raise AIProcessingNotApproved
    normalised = node.model_dump(mode="json", exclude_none=True)
    cache_key = f"ai-metadata:{project.id}:{provider}:{query_fingerprint(normalised)}"
    cached = cache_get(cache_key)
    if cached is not None:
        return Suggestion(**cast(SuggestionJSON, cached))  # as cached below
    suggestion = _on_worker(project_id=project.id, provider=provider, query=normalised)
    if suggestion is None:
        return Suggestion(**heuristic_metadata(node), provider=HEURISTIC, fallback=True)
    if not suggestion.fallback:
        cache_set(cache_key, suggestion.as_json(), timeout=settings.AI_METADATA_CACHE_SECONDS)
    return suggestion


def suggestion_from_provider(*, project_id: int, provider: str, query: JSONObject) -> Suggestion:
    """Ask one provider (the worker's side); any failure of the provider gives the heuristic."""
    node = query_parse(query)
    try:
        return Suggestion(**provider_for(provider).suggest(node=node, query=query), provider=provider)
    except Exception:
        logger.warning(
            "AI provider %s failed for project %s; using the heuristic", provider, project_id, exc_info=True
        )
        return Suggestion(**heuristic_metadata(node), provider=HEURISTIC, fallback=True)


def suggestion_reply(reply_id: str) -> Record:
    """Where a worker's suggestion for a waiting request goes (field `suggestion`)."""
    return Record(f"reply:{reply_id}", ttl=REPLY_TTL_SECONDS)


def _on_worker(*, project_id: int, provider: str, query: JSONObject) -> Suggestion | None:
    deadline = settings.AI_METADATA_DEADLINE_SECONDS
    reply_id = uuid.uuid4().hex
    try:
        pending = celery_app.send_task(
            GENERATE_TASK,
            kwargs={"project_id": project_id, "provider": provider, "query": query, "reply_id": reply_id},
            expires=deadline,
            retry=False,
            ignore_result=True,  # the reply comes through its record, not Celery's result backend
        )
        with slots.waiting():
            # A reply needs Redis to arrive: without it, fall back at once rather than hold on.
            answer = suggestion_reply(reply_id).wait(
                _replied, deadline=time.monotonic() + deadline, hold_on=0
            )
    except (BrokerUnavailable, redis.exceptions.RedisError, RedisLost):
        logger.warning("Broker unreachable; metadata falls back to the heuristic", exc_info=True)
        return None
    except DeadlinePassed:
        logger.warning("Metadata task %s missed its %ss deadline", pending.id, deadline)
        with suppress(BrokerUnavailable, redis.exceptions.RedisError):
            pending.revoke()
        return None
    return answer


def _replied(reply: Snapshot) -> Suggestion | None:
    """The suggestion a worker replied (ai_metadata/tasks.py), once it has."""
    answer = reply.json("suggestion")
    return None if answer is None else Suggestion(**cast(SuggestionJSON, answer))
