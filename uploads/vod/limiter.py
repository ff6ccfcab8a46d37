"""Our own ceiling on VOD calls per second, shared by every process through Redis.

VOD answers `Throttling` once the account passes its QPS limit (80/s per API in most
regions, 40/s in some). A portal serving many users must stay under it rather than pass
VOD's refusal on, so each call first takes a slot per operation; near the limit it waits
briefly; past `VOD_QPS_MAX_WAIT_MS` it is refused with our own throttled error (429 +
Retry-After) and VOD is never asked.

Why not an ordinary rate limiter: it counts a call when it is admitted, but under load the
request can reach VOD hundreds of milliseconds later, so arrivals bunch at the window's edge
and VOD sees more than its limit. Here a call holds its slot from admission until one second
after its answer came back (the latest moment VOD can have received it). Then no one-second
span of VOD's arrivals can hold more than the limit, however late requests travel. The cost
is throughput: about limit / (1 s + call latency).
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from contextlib import contextmanager
from functools import lru_cache
from typing import Iterator

import redis
from django.conf import settings

from ..dependencies import DependencyUnavailable
from .types import VodThrottled

logger = logging.getLogger("uploads.vod")

KEY_PREFIX = "vodportal:vod-qps:"
# A call's slot is provisionally held this long past admission (longer than any call can
# take), so a process that dies mid-call frees its slots by itself.
_PROVISIONAL_HOLD = 120.0

# Atomic admission, on Redis's own clock (app servers' clocks may disagree).
# KEYS[1] window; ARGV: limit, call id, provisional hold seconds, key ttl ms.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  return '0'
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tostring(tonumber(oldest[2]) + 1 - now)
"""
# The call answered: its slot now ends one second after this moment.
_RELEASE = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1])
return 1
"""


class _RedisWindow:
    """The shared window: one sorted set per operation, scored by when a slot frees."""

    def __init__(self, url: str):
        self._client = redis.Redis.from_url(url)
        self._acquire = self._client.register_script(_ACQUIRE)
        self._release = self._client.register_script(_RELEASE)

    def try_acquire(self, operation: str, limit: int, call_id: str) -> float:
        """0 when admitted, else seconds until the next slot may free."""
        answer = self._acquire(keys=[KEY_PREFIX + operation],
                               args=[limit, call_id, _PROVISIONAL_HOLD,
                                     int((_PROVISIONAL_HOLD + 2) * 1000)])
        return float(answer)

    def release(self, operation: str, call_id: str) -> None:
        self._release(keys=[KEY_PREFIX + operation], args=[call_id])

    def clear(self) -> None:
        for key in self._client.scan_iter(match=KEY_PREFIX + "*"):
            self._client.delete(key)


class _LocalWindow:
    """The same rule inside one process (no REDIS_URL: development and tests)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._slots: dict[str, dict[str, float]] = {}

    def try_acquire(self, operation: str, limit: int, call_id: str) -> float:
        with self._lock:
            now = time.monotonic()
            slots = self._slots.setdefault(operation, {})
            for held, frees_at in list(slots.items()):
                if frees_at <= now - 1:
                    del slots[held]
            if len(slots) < limit:
                slots[call_id] = now + _PROVISIONAL_HOLD
                return 0.0
            return min(slots.values()) + 1 - now

    def release(self, operation: str, call_id: str) -> None:
        with self._lock:
            slots = self._slots.get(operation, {})
            if call_id in slots:
                slots[call_id] = time.monotonic()

    def clear(self) -> None:
        with self._lock:
            self._slots.clear()


@lru_cache(maxsize=4)
def _window(redis_url: str):
    return _RedisWindow(redis_url) if redis_url else _LocalWindow()


def clear() -> None:
    """Forget every held slot (tests; an operator after changing VOD_QPS_LIMIT)."""
    _window(settings.REDIS_URL).clear()


def _acquire(window, operation: str, limit: int, call_id: str) -> float:
    try:
        return window.try_acquire(operation, limit, call_id)
    except redis.exceptions.RedisError as exc:
        # Nothing was sent to VOD: the caller may say so, and the client may retry.
        raise DependencyUnavailable(
            "redis", "The VOD rate limiter's store (Redis) is unavailable.") from exc


def _release(window, operation: str, call_id: str) -> None:
    try:
        window.release(operation, call_id)
    except redis.exceptions.RedisError:
        # VOD has answered by now: losing its answer for the sake of the limiter's
        # bookkeeping would be worse. The slot frees itself after _PROVISIONAL_HOLD.
        logger.warning("VOD limiter: could not release a slot of %s (Redis unavailable)",
                       operation)


@contextmanager
def vod_call_slot(operation: str) -> Iterator[None]:
    """Hold a slot for one `operation` call; wait up to VOD_QPS_MAX_WAIT_MS to get one.

    Raises VodThrottled (our own code `QpsLimitReached`) past the wait, and
    DependencyUnavailable when Redis cannot be asked; in both cases VOD was not called.
    """
    limit = settings.VOD_QPS_LIMIT
    if limit <= 0:
        yield  # limit switched off
        return
    window = _window(settings.REDIS_URL)
    call_id = uuid.uuid4().hex
    deadline = time.monotonic() + settings.VOD_QPS_MAX_WAIT_MS / 1000
    while (wait := _acquire(window, operation, limit, call_id)) > 0:
        if time.monotonic() + wait > deadline:
            raise VodThrottled(
                "vodportal is holding VOD calls under the account's QPS limit.",
                code="QpsLimitReached", retry_after=max(1, math.ceil(wait)),
                operation=operation)
        # A little spread so waiting processes do not all retry at the same instant.
        time.sleep(min(wait, 0.05) + random.uniform(0, 0.005))
    try:
        yield
    finally:
        _release(window, operation, call_id)
