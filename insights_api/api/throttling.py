"""Request budgets, counted in Redis: per API key (or per user for sessions), and per project for AI.

Rates come from settings.THROTTLE_RATES at request time (so tests and operators can change them).
If Redis cannot be reached the request is let through: throttling protects the service, it must not
take it down.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from rest_framework import throttling
from rest_framework.request import Request

from accounts.models import PersonalAPIKey

if TYPE_CHECKING:
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


class _RedisRateThrottle(throttling.SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return settings.THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Request, view: APIView) -> bool:
        # SimpleRateThrottle parses the rate in __init__; re-read it so a changed setting applies.
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        try:
            return super().allow_request(request, view)
        except redis.exceptions.RedisError:
            logger.warning("Throttle %s skipped: Redis unavailable", self.scope)
            return True


class _PerCallerThrottle(_RedisRateThrottle):
    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if isinstance(request.auth, PersonalAPIKey):
            ident = f"key:{request.auth.id}"
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class BurstThrottle(_PerCallerThrottle):
    scope = "burst"


class SustainedThrottle(_PerCallerThrottle):
    scope = "sustained"


class LoginThrottle(_RedisRateThrottle):
    """Password guessing, per client address. (Not per email: that would let anyone lock a user out.)"""

    scope = "login"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AIProjectThrottle(_RedisRateThrottle):
    """The stricter AI budget of `generate_metadata`, shared by everyone in a project."""

    scope = "ai_project"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": f"project:{view.kwargs.get('project_id')}"}
