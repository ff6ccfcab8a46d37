"""Generations in Redis: what cached answers are tagged with, replaced on every change.

A cache that must never serve an answer older than a committed change (the API token
cache, the upload policy memo) tags each answer with the generation it read before looking
the answer up; a change replaces the generation once it commits, which retires every answer
tagged with the old one. Values are short random strings read through one plain redis-py
client per URL: never Django's cache API, whose values are pickles (an unpickled value from
Redis would run whatever anyone able to write there put in it).
"""

from __future__ import annotations

import logging
import secrets
from functools import lru_cache

import redis
from django.conf import settings
from django.db import transaction

# The database answers if Redis does not: never wait long on it.
REDIS_TIMEOUT_SECONDS = 0.5


@lru_cache(maxsize=4)
def redis_client(url: str) -> redis.Redis:
    """The process's client for `url` (thread-safe, pooled), with short timeouts."""
    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS,
                                socket_connect_timeout=REDIS_TIMEOUT_SECONDS)


class Generation:
    """One generation key. `when_down` is logged when a change could not retire it."""

    def __init__(self, key: str, *, logger: logging.Logger, when_down: str):
        self.key, self._logger, self._when_down = key, logger, when_down

    def started(self, client: redis.Redis) -> bytes:
        """The generation after a read found none (first use, or Redis was emptied): a new
        one, or the one a concurrent process set first. Raises redis.RedisError."""
        client.set(self.key, secrets.token_hex(8), nx=True)
        return client.get(self.key)

    def read(self) -> bytes:
        """The current generation. Raises redis.RedisError."""
        client = redis_client(settings.REDIS_URL)
        return client.get(self.key) or self.started(client)

    def retire_after_commit(self) -> None:
        """Replace the generation once the current transaction commits (at once outside
        one): a lookup that read the old generation and then the old rows stored them under
        the old generation, which this retires."""
        transaction.on_commit(self._retire)

    def _retire(self) -> None:
        try:
            redis_client(settings.REDIS_URL).set(self.key, secrets.token_hex(8))
        except redis.RedisError:
            self._logger.error(self._when_down)
