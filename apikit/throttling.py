"""Request budgets, counted in Redis: per API key (or per user for sessions), and per project for AI.

Rates come from settings.THROTTLE_RATES at request time (so tests and operators can change them).
If Redis cannot be reached the request is let through: throttling protects the service, it must not
take it down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from infra.redis import redis_client

if TYPE_CHECKING:  # rest_framework.views imports this module (DEFAULT_THROTTLE_CLASSES)
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)


class _RedisRateThrottle(throttling.BaseThrottle):
    """A fixed-window counter in Redis: one INCR (and EXPIRE) per request, whatever the rate.

    DRF's SimpleRateThrottle keeps every request's timestamp in one cached list that each request
    reads and rewrites, which grows with the rate (thousands of entries for "4800/hour"). A window
    counter costs the same for any rate; the price is that a caller may spend two windows' budget
    across a window boundary.
    """

    scope: ClassVar[str]
    _wait: float | None = None

    def ident_for(self, request: Request, view: APIView) -> str:
        raise NotImplementedError

    def allow_request(self, request: Request, view: APIView) -> bool:
        return not throttle_waits([self], request, view)

    def window(self, request: Request, view: APIView) -> _Window | None:
        """This request's counter: its key, limit and period; None when the scope has no rate."""
        rate = settings.THROTTLE_RATES.get(self.scope)
        if rate is None:
            return None
        limit, period = parse_rate(rate)
        now = time.time()
        window = int(now // period)
        key = f"{settings.CACHES['default']['KEY_PREFIX']}:throttle:{self.scope}:{self.ident_for(request, view)}:{window}"
        return _Window(key=key, limit=limit, period=period, wait=(window + 1) * period - now)

    def wait(self) -> float | None:
        return self._wait


@dataclass(frozen=True)
class _Window:
    key: str
    limit: int
    period: int
    wait: float  # seconds until the window ends


def throttle_waits(throttles: Sequence[BaseThrottle], request: Request, view: APIView) -> list[float | None]:
    """How long each refusing throttle asks the caller to wait (empty: allowed), counting the request
    against every Redis budget in one round trip; other throttles answer as DRF asks them."""
    counted = [
        (throttle, window)
        for throttle in throttles
        if isinstance(throttle, _RedisRateThrottle) and (window := throttle.window(request, view)) is not None
    ]
    waits: list[float | None] = [
        throttle.wait()
        for throttle in throttles
        if not isinstance(throttle, _RedisRateThrottle) and not throttle.allow_request(request, view)
    ]
    if not counted:
        return waits
    try:
        pipeline = redis_client().pipeline(transaction=False)
        for _, window in counted:
            pipeline.incr(window.key)
            pipeline.expire(window.key, window.period + 1)
        replies = pipeline.execute()
    except redis.exceptions.RedisError:
        logger.warning("Throttles %s skipped: Redis unavailable", ", ".join(t.scope for t, _ in counted))
        return waits
    for (throttle, window), count in zip(counted, replies[::2], strict=True):
        throttle._wait = window.wait
        if count > window.limit:
            waits.append(window.wait)
    return waits


def parse_rate(rate: str) -> tuple[int, int]:
    """ "480/minute" → (480, 60). The unit's first letter decides: s, m, h or d."""
    count, _, unit = rate.partition("/")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}.get(unit[:1])
    if not count.isdigit() or seconds is None:
        raise ImproperlyConfigured(f"Throttle rate {rate!r} must look like '480/minute'.")
    return int(count), seconds


class _PerCallerThrottle(_RedisRateThrottle):
    def ident_for(self, request: Request, view: APIView) -> str:
        # A credential row (an API key) has its own budget; a session's request.auth is None.
        credential_id = getattr(request.auth, "pk", None)
        if credential_id is not None:
            return f"key:{credential_id}"
        if request.user and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return f"ip:{self.get_ident(request)}"


class BurstThrottle(_PerCallerThrottle):
    scope = "burst"


class SustainedThrottle(_PerCallerThrottle):
    scope = "sustained"


class LoginThrottle(_RedisRateThrottle):
    """Password guessing, per client address. (Not per email: that would let anyone lock a user out.)"""

    scope = "login"

    def ident_for(self, request: Request, view: APIView) -> str:
        return self.get_ident(request)


class AIProjectThrottle(_RedisRateThrottle):
    """The stricter AI budget of `generate_metadata`, shared by everyone in a project."""

    scope = "ai_project"

    def ident_for(self, request: Request, view: APIView) -> str:
        return f"project:{view.kwargs.get('project_id')}"
