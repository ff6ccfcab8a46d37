"""Where the VOD limiter keeps its slots (uploads/vod/limiter.py has the rule and why):
a Redis sorted set per operation, booked by one Lua script on Redis's clock, or the same
rule inside one process when there is no REDIS_URL (development and tests)."""

from __future__ import annotations

import threading
import time
from functools import lru_cache

import redis

KEY_PREFIX = "vodportal:vod-qps:"

# Atomic booking on Redis's own clock (app servers' clocks may disagree). KEYS[1]: the held
# slots, scored by when each frees; KEYS[2]: the newest send moment booked. Sends are booked
# in time order, so a new send at `at` overlaps every slot freeing after `at`: at most
# limit - 1 of them may. KEYS[3]: the pace's next moment (a send may run ahead of it by at
# most the tolerance). Under one limit and tolerance the pace never passes the newest send
# plus both; a pace set under a smaller limit (a settings change, a test) is clamped to that
# instead of holding calls back for a second. ARGV: limit, call id, hold seconds, longest wait seconds, lead
# seconds, pace tolerance seconds. Answers "0:<wait>" when booked (send after <wait>
# seconds), "1:<wait>" when refused.
_BOOK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local lead = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local at = now + lead
local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
if newest > at then at = newest end
local held = redis.call('ZCARD', KEYS[1])
if held >= limit then
  local bound = redis.call('ZRANGE', KEYS[1], held - limit, held - limit, 'WITHSCORES')
  if tonumber(bound[2]) > at then at = tonumber(bound[2]) end
end
local pace = tonumber(redis.call('GET', KEYS[3]) or '0')
local most = newest + tonumber(ARGV[6]) + 1 / limit
if pace > most then pace = most end
if pace - tonumber(ARGV[6]) > at then at = pace - tonumber(ARGV[6]) end
if at - now - lead > tonumber(ARGV[4]) + 0.000001 then
  return '1:' .. tostring(at - now - lead)
end
redis.call('ZADD', KEYS[1], at + tonumber(ARGV[3]), ARGV[2])
local ttl = math.ceil((at - now + tonumber(ARGV[3])) * 1000) + 1000
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SET', KEYS[2], tostring(at), 'PX', ttl)
if pace < at then pace = at end
redis.call('SET', KEYS[3], tostring(pace + 1 / limit), 'PX', ttl)
return '0:' .. tostring(at - now)
"""
# A call's slot now frees ARGV[2] seconds from now (a first call answered: 1 s; a call
# leaving late: its hold from now). ARGV: call id, seconds.
_HOLD_FROM_NOW = """
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], 'XX', tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(ARGV[2]),
           ARGV[1])
return 1
"""


class RedisSlots:
    """The shared slots: a sorted set per operation, its newest send moment and its pace."""

    def __init__(self, url: str):
        self._client = redis.Redis.from_url(url)
        self._book = self._client.register_script(_BOOK)
        self._hold_from_now = self._client.register_script(_HOLD_FROM_NOW)

    def book(self, operation: str, limit: int, hold: float, longest_wait: float,
             call_id: str, lead: float, tolerance: float) -> tuple[bool, float]:
        """(booked, seconds until the send moment; or refused, seconds of waiting it would
        have taken)."""
        key = KEY_PREFIX + operation
        answer = self._book(keys=[key, key + ":newest", key + ":pace"],
                            args=[limit, call_id, hold, longest_wait, lead, tolerance]).decode()
        refused, _, wait = answer.partition(":")
        return refused == "0", max(0.0, float(wait))

    def hold_from_now(self, operation: str, call_id: str, seconds: float) -> None:
        """Make a held slot free `seconds` from now (on Redis's clock); a freed one stays
        free."""
        self._hold_from_now(keys=[KEY_PREFIX + operation], args=[call_id, seconds])

    def clear(self) -> None:
        """Forget every operation's slots and pace."""
        for key in self._client.scan_iter(match=KEY_PREFIX + "*"):
            self._client.delete(key)


class LocalSlots:
    """The same rule inside one process (no REDIS_URL: development and tests)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._frees: dict[str, dict[str, float]] = {}
        self._newest: dict[str, float] = {}
        self._pace: dict[str, float] = {}

    def book(self, operation: str, limit: int, hold: float, longest_wait: float,
             call_id: str, lead: float, tolerance: float) -> tuple[bool, float]:
        """As RedisSlots.book, on this process's monotonic clock."""
        with self._lock:
            now = time.monotonic()
            frees = {held: at for held, at in self._frees.get(operation, {}).items() if at > now}
            at = max(now + lead, self._newest.get(operation, 0.0))
            ordered = sorted(frees.values())
            if len(ordered) >= limit:
                at = max(at, ordered[len(ordered) - limit])
            pace = min(self._pace.get(operation, 0.0),
                       self._newest.get(operation, 0.0) + tolerance + 1 / limit)
            at = max(at, pace - tolerance)
            if at - now - lead > longest_wait + 1e-6:  # (floating point)
                return False, at - now - lead
            self._frees[operation] = {**frees, call_id: at + hold}
            self._newest[operation] = at
            self._pace[operation] = max(pace, at) + 1 / limit
            return True, at - now

    def hold_from_now(self, operation: str, call_id: str, seconds: float) -> None:
        """As RedisSlots.hold_from_now."""
        with self._lock:
            frees = self._frees.get(operation, {})
            if call_id in frees:
                frees[call_id] = time.monotonic() + seconds

    def clear(self) -> None:
        """As RedisSlots.clear."""
        with self._lock:
            self._frees.clear()
            self._newest.clear()
            self._pace.clear()


@lru_cache(maxsize=4)
def store(redis_url: str):
    """The slots every process shares through Redis, or this process's own without it."""
    return RedisSlots(redis_url) if redis_url else LocalSlots()
