"""Which upload policy governs a user, remembered in each process between policy changes.

`policies.policy_for` is one query, but a costly one to build: the user's groups joined to
the policies' groups, grouped and ordered. py-spy put it at a fifth of the portal's CPU per
credential, most of it Django compiling the query (bench/README.md, "Capacity under VOD
latency"). Its answer changes only when a policy, a policy's groups or a user's groups
change, which is rare. So each process keeps the answer per user, tagged with the policy
generation read from Redis just before; every such change replaces the generation once it
commits, and an answer tagged with another generation is looked up again. One Redis read
instead of the query.

A change that bypasses model signals (`QuerySet.update()`, raw SQL) applies within
MEMO_SECONDS. Off without REDIS_URL (a change made in another process could not reach this
one); if Redis cannot be read, the database is asked, as without the memo.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from functools import lru_cache
from typing import Callable, TypeVar

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from ..models import UploadPolicy

logger = logging.getLogger("uploads.policies")

GENERATION_KEY = "vodportal:upload-policy:generation"
# Longest an answer is trusted without a signalled change (see the module's docstring).
MEMO_SECONDS = 60.0
# Users remembered per process, least recently used forgotten first.
MEMO_USERS = 10_000
# The database answers if Redis does not: never wait long on it.
_REDIS_TIMEOUT_SECONDS = 0.5

Answer = TypeVar("Answer")

_lock = threading.Lock()
_memo: OrderedDict[int, tuple[bytes, float, object]] = OrderedDict()


@lru_cache(maxsize=4)
def _client(url: str) -> redis.Redis:
    # A plain client, not Django's cache API: its values are pickles, and an unpickled
    # value from Redis would run whatever anyone able to write there put in it.
    return redis.Redis.from_url(url, socket_timeout=_REDIS_TIMEOUT_SECONDS,
                                socket_connect_timeout=_REDIS_TIMEOUT_SECONDS)


def _generation() -> bytes | None:
    """The current generation; None when the memo is off or Redis cannot be read."""
    if not settings.REDIS_URL:
        return None
    try:
        client = _client(settings.REDIS_URL)
        generation = client.get(GENERATION_KEY)
        if generation is None:
            # First use, or Redis was emptied: a new generation (a concurrent process may
            # win the race; its value is then the one read back).
            client.set(GENERATION_KEY, secrets.token_hex(8), nx=True)
            generation = client.get(GENERATION_KEY)
        return generation
    except redis.RedisError:
        logger.warning("Upload policy memo unavailable (Redis): asking the database")
        return None


def remembered(user_pk: int, look_up: Callable[[], Answer]) -> Answer:
    """`look_up()`'s answer for the user, from this process's memo while no policy change
    has happened since it was looked up."""
    generation = _generation()
    if generation is None:
        return look_up()
    now = time.monotonic()
    with _lock:
        entry = _memo.get(user_pk)
        if entry is not None and entry[0] == generation and now - entry[1] < MEMO_SECONDS:
            _memo.move_to_end(user_pk)
            return entry[2]
    # Looked up after the generation was read: a change committed in between retires it.
    answer = look_up()
    with _lock:
        _memo[user_pk] = (generation, now, answer)
        _memo.move_to_end(user_pk)
        while len(_memo) > MEMO_USERS:
            _memo.popitem(last=False)
    return answer


def forget() -> None:
    """Empty this process's memo (tests)."""
    with _lock:
        _memo.clear()


def _retire() -> None:
    try:
        _client(settings.REDIS_URL).set(GENERATION_KEY, secrets.token_hex(8))
    except redis.RedisError:
        logger.error("Upload policy memo unavailable (Redis): a policy change applies within "
                     "%d s", MEMO_SECONDS)


def _changed(**kwargs) -> None:
    if settings.REDIS_URL:
        # After the commit: a lookup that read the old generation and then the old rows
        # stores them under the old generation, which this retires.
        transaction.on_commit(_retire)


post_save.connect(_changed, sender=UploadPolicy, dispatch_uid="uploads.policy_memo.saved")
post_delete.connect(_changed, sender=UploadPolicy, dispatch_uid="uploads.policy_memo.deleted")
m2m_changed.connect(_changed, sender=UploadPolicy.groups.through,
                    dispatch_uid="uploads.policy_memo.policy_groups")
m2m_changed.connect(_changed, sender=get_user_model().groups.through,
                    dispatch_uid="uploads.policy_memo.user_groups")
# Deleting a group deletes its memberships without an m2m_changed signal.
post_delete.connect(_changed, sender=Group, dispatch_uid="uploads.policy_memo.group_deleted")
