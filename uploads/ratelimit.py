"""Counting requests against a rate, shared by every process (the `limits` library's moving
window: an atomic Lua script in Redis when REDIS_URL is set, else this process's memory).

Used by the API's per-user throttles and by the callback endpoint's per-address limit on
refused deliveries. Redis down is DependencyUnavailable (a 503 naming it), never a 500.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache

import redis
from django.conf import settings
from limits import parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .dependencies import DependencyUnavailable


@lru_cache(maxsize=4)
def _limiter(redis_url: str) -> MovingWindowRateLimiter:
    """Redis when configured (shared by every process), else this process's memory."""
    storage = storage_from_string(redis_url) if redis_url else MemoryStorage()
    return MovingWindowRateLimiter(storage)


def hit(rate: str, *identity: str) -> int:
    """Count one request of `identity` against `rate` (e.g. "60/minute"): 0 when it is
    within the rate, else the seconds until the window lets the next one in."""
    item = parse(rate)
    limiter = _limiter(settings.REDIS_URL)
    try:
        if limiter.hit(item, *identity):
            return 0
        reset_at = limiter.get_window_stats(item, *identity).reset_time
    except (redis.exceptions.RedisError, StorageError) as exc:
        # The rate cannot be counted: refuse plainly (503) rather than let every request
        # through unlimited or fail with a 500.
        raise DependencyUnavailable(
            "redis", "The rate limiter's store (Redis) is unavailable.") from exc
    return max(1, math.ceil(reset_at - time.time()))


def reset() -> None:
    """Forget every count (tests; an operator after changing a rate)."""
    _limiter(settings.REDIS_URL).storage.reset()
