"""The Celery task that asks a model provider for a name and description."""

from __future__ import annotations

import json
import logging

from celery import shared_task

from ai_metadata.services import suggestion_from_provider, suggestion_reply
from infra.json_types import JSONObject

logger = logging.getLogger(__name__)


@shared_task(name="ai_metadata.generate_metadata", acks_late=False, max_retries=0, ignore_result=True)
def generate_metadata(*, project_id: int, provider: str, query: JSONObject, reply_id: str) -> None:
    """Runs on a worker so a slow model never ties up a web worker; the request waits for the reply
    up to its deadline. No retries: a late answer is worth nothing, the request falls back to the
    heuristic."""
    suggestion = suggestion_from_provider(project_id=project_id, provider=provider, query=query)
    suggestion_reply(reply_id).update({"suggestion": json.dumps(suggestion.as_json())})
