"""Per-user rates for asking VOD on a user's behalf, shared by every process.

DRF's own rate throttles read the request history from the cache, append, and write it
back: concurrent requests all read the same history and all pass. These use the `limits`
library's moving window instead, which counts atomically (a Lua script in Redis), so the
rate holds across threads, workers and hosts.
"""

import math
import time
from functools import lru_cache

import redis
from django.conf import settings
from limits import parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter
from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from ..dependencies import DependencyUnavailable


@lru_cache(maxsize=4)
def _limiter(redis_url: str) -> MovingWindowRateLimiter:
    """Redis when configured (shared by every process), else this process's memory."""
    storage = storage_from_string(redis_url) if redis_url else MemoryStorage()
    return MovingWindowRateLimiter(storage)


class _UserMovingWindowThrottle(BaseThrottle):
    """A per-user rate from DEFAULT_THROTTLE_RATES[scope], e.g. "60/minute"."""

    scope = ""

    def __init__(self):
        self._wait = None

    def allow_request(self, request, view) -> bool:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if not rate or not request.user.is_authenticated:
            return True
        item = parse(rate)
        limiter = _limiter(settings.REDIS_URL)
        identity = ("vodportal-throttle", self.scope, str(request.user.pk))
        try:
            if limiter.hit(item, *identity):
                return True
            reset_at = limiter.get_window_stats(item, *identity).reset_time
        except (redis.exceptions.RedisError, StorageError) as exc:
            # The rate cannot be counted: refuse plainly (503) rather than let every request
            # through unlimited or fail with a 500.
            raise DependencyUnavailable(
                "redis", "The rate limiter's store (Redis) is unavailable.") from exc
        self._wait = max(1, math.ceil(reset_at - time.time()))
        return False

    def wait(self):
        return self._wait


class CredentialIssueThrottle(_UserMovingWindowThrottle):
    """POST /videos/, /images/, /attached-media/: API_CREDENTIAL_RATE per user."""

    scope = "credentials"


class CredentialRefreshThrottle(_UserMovingWindowThrottle):
    """POST /videos/{id}/refresh/: API_REFRESH_RATE per user."""

    scope = "refresh"
