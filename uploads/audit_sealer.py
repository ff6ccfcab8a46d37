"""Sealing the audit chain: each event gets its place, in order, off the request path.

`audit.record` inserts events unsealed (`sequence` and `hash` NULL) with a `mac` of their
own, taking no lock. `seal_pending` takes the chain's lock, reads the head, and chains the
unsealed rows in id order: for each, it checks the mac, then sets `sequence = head + 1` and
`hash = chain_hash(previous hash, row)`. A row whose mac does not hold was inserted or
edited without AUDIT_KEY, behind the application's back: it is never sealed, and
`audit.verify_chain` reports it.

Where it runs: one daemon thread per process, started by the process's first `record()`
and woken after each commit that wrote an event, and every AUDIT_SEAL_INTERVAL_SECONDS to
seal what other processes wrote (on PostgreSQL one process seals at a time; the others find
the lock taken and leave the work to it). Also `manage.py audit_seal`, and `audit_verify`
before it verifies. With AUDIT_SEAL_INLINE, `record()` calls `seal_pending` itself, inside
its own transaction.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection, transaction

from . import audit
from .models import AuditEvent

logger = logging.getLogger(__name__)

# Rows per transaction: large enough that the lock, the head and the commit are paid rarely,
# small enough that a batch's UPDATE and its row locks stay short.
BATCH = 500
# Any constant: the key of the PostgreSQL advisory lock that serializes sealing.
CHAIN_LOCK_ID = 0x766F645F61756474  # "vod_audt"
# A sealer that found the lock taken looks again this soon: the holder's batch may have been
# read before this process's newest rows committed.
_BUSY_RETRY_SECONDS = 0.05
# Woken by a commit, the sealer lets this long pass first: the events that commit meanwhile
# are sealed in the same pass. A pass per event would cost the lock, the head, the commit
# and a connection from the pool for each one (~1 ms of CPU).
_GATHER_SECONDS = 0.1
# Ids whose refusal this process has logged already: an unsealable row stays unsealed and is
# met again by every sweep, but one error line each is enough (verify_chain reports it).
_refused: set[int] = set()


def seal_pending(limit: int = BATCH, *, wait: bool = True,
                 watch: AuditEvent | None = None) -> int:
    """Chain every unsealed event visible now, lowest id first, `limit` rows per
    transaction; the number sealed.

    `wait=False`: if another process holds the chain's lock (PostgreSQL), return 0 at once,
    it is sealing. Inside a caller's transaction (AUDIT_SEAL_INLINE) all of it happens in
    that transaction, which holds the lock until it ends. `watch`: an event whose sequence
    and hash are set on the instance if this call seals it.
    """
    return _seal(limit, wait=wait, watch=watch) or 0


def _seal(limit: int, *, wait: bool, watch: AuditEvent | None = None) -> int | None:
    """`seal_pending`, telling apart "nothing to seal" (0) and "the lock is taken" (None)."""
    key = audit.audit_key()
    total, after_id = 0, 0
    while True:
        # Outside a transaction, each batch is one and the lock is released at its COMMIT.
        with transaction.atomic(savepoint=False):
            if not _lock_chain(wait):
                return total or None
            sealed, after_id, more = _seal_batch(limit, after_id, key, watch)
        total += sealed
        if not more:
            return total


def _lock_chain(wait: bool) -> bool:
    """Take the chain's lock until the transaction ends; False if `wait` is off and another
    transaction holds it. SQLite: the settings open every transaction IMMEDIATE, which holds
    the single write lock already. PostgreSQL: a transaction-scoped advisory lock; the head
    is read by the next statement, whose snapshot includes every seal committed before."""
    if connection.vendor != "postgresql":
        return True
    function = "pg_advisory_xact_lock" if wait else "pg_try_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [CHAIN_LOCK_ID])
        row = cursor.fetchone()
    return wait or bool(row[0])


def _seal_batch(limit: int, after_id: int, key: bytes,
                watch: AuditEvent | None) -> tuple[int, int, bool]:
    """Seal up to `limit` unsealed rows with ids above `after_id`, under the lock: (how many
    were sealed, the last id read, whether there may be more)."""
    head = _fetch(f"SELECT sequence, hash FROM {_table()} WHERE sequence IS NOT NULL "
                  f"ORDER BY sequence DESC LIMIT 1")
    sequence, previous = head[0] if head else (0, audit.GENESIS_HASH)
    # The ORM here: the fields come back as the writer had them (JSON, times, addresses).
    rows = list(AuditEvent.objects.filter(sequence__isnull=True, id__gt=after_id)
                .order_by("id")[:limit])
    copied = _sealed_macs([row.mac for row in rows if row.mac])
    ready = []
    for row in rows:
        values = audit.values_of(row)
        refusal = _refusal(row, values, key, copied)
        if refusal:
            _report(row.pk, refusal)
            continue
        copied.add(row.mac)  # a second copy in this batch is refused too
        sequence += 1
        row.sequence = values["sequence"] = sequence
        row.hash = previous = audit.chain_hash(previous, {**values, "mac": row.mac}, key)
        ready.append(row)
        if watch is not None and row.pk == watch.pk:
            watch.sequence, watch.hash = row.sequence, row.hash
    if ready:
        _write_seals(ready)
    return len(ready), rows[-1].pk if rows else after_id, len(rows) == limit


# The sealer's other statements are plain SQL over plain columns: building each through the
# ORM cost more CPU (0.7 to 0.9 ms) than running it, once per pass, and per event with
# AUDIT_SEAL_INLINE (bench/README.md, "Audit appends").

def _table() -> str:
    return connection.ops.quote_name(AuditEvent._meta.db_table)


def _fetch(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def _anything_pending() -> bool:
    return bool(_fetch(f"SELECT 1 FROM {_table()} WHERE sequence IS NULL LIMIT 1"))


def _sealed_macs(macs: list[str]) -> set[str]:
    """Those of `macs` that a sealed row has already: copies, which the unique index refuses
    unless it was dropped. Probed through that index, not joined (a join's plan depends on
    statistics)."""
    if not macs:
        return set()
    marks = ", ".join(["%s"] * len(macs))
    return {mac for mac, in _fetch(f"SELECT mac FROM {_table()} WHERE sequence IS NOT NULL "
                                   f"AND mac IN ({marks})", macs)}


def _write_seals(rows: list[AuditEvent]) -> None:
    """One UPDATE of `sequence` and `hash` per row, sent as one batch (psycopg pipelines an
    executemany: one round trip). Measured against the ORM's ways of doing it
    (bench/README.md, "Audit appends"): bulk_update's CASE WHEN expressions cost about 0.9 ms
    of CPU per row to build, save(update_fields=...) 0.6 ms and a round trip per row."""
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE {_table()} SET sequence = %s, hash = %s WHERE id = %s",
                           [(row.sequence, row.hash, row.pk) for row in rows])


def _refusal(row: AuditEvent, values: dict, key: bytes, copied: set[str]) -> str:
    """Why a row must not be sealed, or "" if it may."""
    if row.actor_id is not None and row.actor_id != row.actor_ref:
        return "its actor was changed"
    if not audit.mac_matches(values, row.mac, key):
        return ("its mac does not match the row: inserted or edited behind the application's "
                "back, or written with another AUDIT_KEY")
    if row.mac in copied:
        return "it is a copy of another event (the same mac)"
    return ""


def _report(event_id: int, refusal: str) -> None:
    if event_id in _refused:
        return
    if len(_refused) > 10_000:
        _refused.clear()
    _refused.add(event_id)
    logger.error("audit event id %s left unsealed: %s", event_id, refusal)


class _Sealer(threading.Thread):
    """This process's background sealer."""

    def __init__(self) -> None:
        super().__init__(name="audit-sealer", daemon=True)
        self.pid = os.getpid()
        self.wakeup = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        delay = 0.0
        try:
            while True:
                if self.wakeup.wait(delay):
                    self.stopping.wait(_GATHER_SECONDS)
                self.wakeup.clear()
                stopping = self.stopping.is_set()
                # The last pass waits for the lock: no other sealer may be left to do it.
                delay = self._pass(final=stopping)
                if stopping:
                    return
        finally:
            connection.close()

    def _pass(self, *, final: bool = False) -> float:
        """Seal what is pending; how long to wait before the next pass unless woken."""
        interval = settings.AUDIT_SEAL_INTERVAL_SECONDS
        try:
            sealed = 0
            if _anything_pending():
                sealed = _seal(BATCH, wait=final)
        except DatabaseError as exc:
            # The database restarting, the pool exhausted by requests: the next pass retries.
            logger.warning("the audit sealer could not seal (%s: %s); it tries again in %s s",
                           type(exc).__name__, exc, interval)
            connection.close()
            return interval
        except Exception:  # noqa: BLE001 - a sealer that died would leave every later event unsealed
            logger.exception("the audit sealer failed; it tries again in %s s", interval)
            connection.close()
            return interval
        # Hand the connection back as a request thread does: to the pool after every pass,
        # or once it is older than CONN_MAX_AGE.
        close_old_connections()
        return _BUSY_RETRY_SECONDS if sealed is None else interval


_sealer: _Sealer | None = None
_start_lock = threading.Lock()


def wake() -> None:
    """Wake this process's sealer, starting it if this process has none (its first event,
    or a child forked from a process that had one: threads do not survive fork)."""
    sealer = _sealer
    if sealer is None or sealer.pid != os.getpid() or not sealer.is_alive():
        sealer = _start()
    sealer.wakeup.set()


def _start() -> _Sealer:
    global _sealer
    with _start_lock:
        if _sealer is None or _sealer.pid != os.getpid() or not _sealer.is_alive():
            _sealer = _Sealer()
            _sealer.start()
        return _sealer


def stop(timeout: float = 10.0) -> None:
    """Stop this process's sealer after one last pass (at exit, and between tests)."""
    global _sealer
    with _start_lock:
        sealer, _sealer = _sealer, None
    if sealer is not None and sealer.pid == os.getpid() and sealer.is_alive():
        sealer.stopping.set()
        sealer.wakeup.set()
        sealer.join(timeout)


def _forget_after_fork() -> None:
    global _sealer, _start_lock
    _sealer, _start_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
# At a clean exit (a command, a gunicorn worker stopping), what this process wrote is sealed
# rather than left to the next sweep of another process.
atexit.register(stop, 5.0)
