"""Rate limits kept in the shared cache, so that every web process (and machine) counts together:
API requests per bearer token (per user for session calls), and the counters the login throttle
uses (core/login.py).

Counts live in fixed windows: a key per subject and window, incremented with the cache's `incr`
(atomic on Redis; on the embedded file cache two hits in the same instant may count once)."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from core.models import ApiToken

API_RATE_WINDOW = 60  # seconds: API_RATE_LIMIT is a number of requests a minute


def window_key(key: str, *, window: int, now: float, back: int = 0) -> str:
    """The cache key counting `key` in the window `now` falls in (`back` windows earlier)."""
    return f"{key}:{int(now // window) - back}"


def window_hit(key: str, *, window: int, now: float) -> int:
    """Count one hit on `key` in the current window of `window` seconds; return the window's count."""
    bucket = window_key(key, window=window, now=now)
    try:
        return cache.incr(bucket)
    except ValueError:  # the first hit of the window (or the key was evicted)
        # The key outlives its window and the next: the login throttle reads the previous count too.
        if cache.add(bucket, 1, timeout=2 * window + 5):
            return 1
        return cache.incr(bucket)


def window_seconds_left(*, window: int, now: float) -> int:
    """Whole seconds until the current window of `window` seconds ends (at least 1)."""
    return max(1, math.ceil(window - now % window))


class ApiRateThrottle(BaseThrottle):
    """At most API_RATE_LIMIT requests a minute per bearer token, or per user for session calls;
    0 turns it off. Refused requests get 429 with Retry-After (seconds to the next minute)."""

    def __init__(self) -> None:
        self.retry_after: int | None = None

    def allow_request(self, request, view) -> bool:
        limit = settings.API_RATE_LIMIT
        subject = self.subject(request)
        if not limit or subject is None:
            return True
        now = time.time()
        if window_hit(f"api-rate:{subject}", window=API_RATE_WINDOW, now=now) <= limit:
            return True
        self.retry_after = window_seconds_left(window=API_RATE_WINDOW, now=now)
        return False

    @staticmethod
    def subject(request) -> str | None:
        if isinstance(request.auth, ApiToken):
            return f"token:{request.auth.pk}"
        if request.user is not None and request.user.is_authenticated:
            return f"user:{request.user.pk}"
        return None  # anonymous: health, or a request about to be refused as unauthenticated

    def wait(self) -> int | None:
        return self.retry_after
