"""Our own ceiling on VOD calls per second, shared by every process through Redis.

VOD answers `Throttling` once the account passes its QPS limit (80/s per API in most
regions, 40/s in some). A portal serving many users must stay under it rather than pass
VOD's refusal on, so each call first takes a slot in a moving one-second window per
operation. Near the limit a call waits briefly for a slot; past `VOD_QPS_MAX_WAIT_MS` it
is refused with our own throttled error (429 + Retry-After), and VOD is never asked.

The window admits `VOD_QPS_LIMIT × VOD_QPS_HEADROOM` calls: the headroom absorbs the
jitter between our clock and VOD's arrival times at the window's edge.
"""

from __future__ import annotations

import math
import random
import time
from functools import lru_cache

from django.conf import settings
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .types import VodThrottled

NAMESPACE = "vodportal-vod-qps"


@lru_cache(maxsize=4)
def _limiter(redis_url: str) -> MovingWindowRateLimiter:
    """One limiter per storage: Redis when configured (shared), else this process only."""
    storage = storage_from_string(redis_url) if redis_url else MemoryStorage()
    return MovingWindowRateLimiter(storage)


def _item() -> RateLimitItemPerSecond | None:
    allowed = math.floor(settings.VOD_QPS_LIMIT * settings.VOD_QPS_HEADROOM)
    return RateLimitItemPerSecond(allowed) if allowed > 0 else None


def acquire(operation: str) -> None:
    """Take a slot for one `operation` call, waiting up to VOD_QPS_MAX_WAIT_MS for it."""
    item = _item()
    if item is None:
        return  # limit switched off (VOD_QPS_LIMIT=0)
    limiter = _limiter(settings.REDIS_URL)
    deadline = time.monotonic() + settings.VOD_QPS_MAX_WAIT_MS / 1000
    while not limiter.hit(item, NAMESPACE, operation):
        reset_at = limiter.get_window_stats(item, NAMESPACE, operation).reset_time
        wait = max(reset_at - time.time(), 0.001)
        if time.monotonic() + wait > deadline:
            raise VodThrottled(
                "vodportal is holding VOD calls under the account's QPS limit.",
                code="QpsLimitReached", retry_after=max(1, math.ceil(wait)),
                operation=operation)
        # A little spread so waiting processes do not all retry at the same instant.
        time.sleep(wait + random.uniform(0, 0.005))
