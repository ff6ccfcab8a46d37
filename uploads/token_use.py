"""When each API token was last used, to the minute (`ApiTokenUse`).

A write per request would put a database write on every API call: each process writes a
token's use at most once a minute, and a failure to write never fails the request."""

from __future__ import annotations

import logging
import threading
import time

from django.db import DatabaseError
from django.utils import timezone
from knox.models import AuthToken

from .models import ApiTokenUse

logger = logging.getLogger("uploads.auth")

INTERVAL_SECONDS = 60.0
# Tokens written lately in this process; cleared when it grows past this many.
_MAX_REMEMBERED = 10_000
_written: dict[str, float] = {}
_lock = threading.Lock()


def touch(token: AuthToken) -> None:
    """Note that `token` was just used, unless this process did within the last minute."""
    now = time.monotonic()
    with _lock:
        if now - _written.get(token.digest, -INTERVAL_SECONDS) < INTERVAL_SECONDS:
            return
        if len(_written) >= _MAX_REMEMBERED:
            _written.clear()
        _written[token.digest] = now
    now_at = timezone.now()
    try:
        # One UPDATE once the row exists; the first use also inserts it (a concurrent first
        # use in another process inserted it already: nothing to do then).
        if not ApiTokenUse.objects.filter(token_id=token.digest).update(last_used_at=now_at):
            ApiTokenUse.objects.bulk_create([ApiTokenUse(token_id=token.digest,
                                                         last_used_at=now_at)],
                                            ignore_conflicts=True)
    except DatabaseError:
        # Bookkeeping only: the request goes on (and fails later if the database is gone).
        logger.warning("could not record an API token's use", exc_info=True)


def forget() -> None:
    """Forget which tokens this process wrote lately (tests)."""
    with _lock:
        _written.clear()
