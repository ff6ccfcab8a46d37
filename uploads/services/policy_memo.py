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
import threading
import time
from collections import OrderedDict
from typing import Callable, TypeVar

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save

from ..generations import Generation
from ..models import UploadPolicy

logger = logging.getLogger("uploads.policies")

# Longest an answer is trusted without a signalled change (see the module's docstring).
MEMO_SECONDS = 60.0
# Users remembered per process, least recently used forgotten first.
MEMO_USERS = 10_000
GENERATION = Generation("vodportal:upload-policy:generation", logger=logger,
                        when_down="Upload policy memo unavailable (Redis): a policy change "
                                  f"applies within {MEMO_SECONDS:.0f} s")

Answer = TypeVar("Answer")

_lock = threading.Lock()
_memo: OrderedDict[int, tuple[bytes, float, object]] = OrderedDict()


def _generation() -> bytes | None:
    """The current generation; None when the memo is off or Redis cannot be read."""
    if not settings.REDIS_URL:
        return None
    try:
        return GENERATION.read()
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


def _changed(**kwargs) -> None:
    if settings.REDIS_URL:
        GENERATION.retire_after_commit()


post_save.connect(_changed, sender=UploadPolicy, dispatch_uid="uploads.policy_memo.saved")
post_delete.connect(_changed, sender=UploadPolicy, dispatch_uid="uploads.policy_memo.deleted")
m2m_changed.connect(_changed, sender=UploadPolicy.groups.through,
                    dispatch_uid="uploads.policy_memo.policy_groups")
m2m_changed.connect(_changed, sender=get_user_model().groups.through,
                    dispatch_uid="uploads.policy_memo.user_groups")
# Deleting a group deletes its memberships without an m2m_changed signal.
post_delete.connect(_changed, sender=Group, dispatch_uid="uploads.policy_memo.group_deleted")
