"""Writing the append-only audit trail, as a hash chain.

Each row carries `hash = HMAC-SHA256(AUDIT_KEY, previous hash + canonical row)`, so an edit,
deletion, insertion or reordering made behind the application's back breaks the chain.
Rows are appended under a lock so parallel writers never fork the chain or reuse a sequence
number. Callers pass only non-secret facts in `data`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from . import statements
from .middleware import client_ip
from .models import AuditEvent, AuditOutcome

GENESIS_HASH = "0" * 64

# Every action name the application writes (the admin filters by these).
ACTIONS = (
    "video.credential.issued", "video.credential.refreshed", "video.credential.failed",
    "image.credential.issued", "image.credential.failed",
    "attached_media.credential.issued", "attached_media.credential.failed",
    "admin.refresh", "upload.synced", "upload.cancelled", "upload.discarded",
    "upload.access.refused", "upload.action.refused",
    "vod.event.received", "vod.event.rejected", "vod.event.pruned",
    "auth.login", "auth.login.failed", "auth.locked_out",
    "auth.token.created", "auth.token.deleted",
)
# Any constant: the key of the PostgreSQL advisory lock that serializes chain appends.
_CHAIN_LOCK_ID = 0x766F645F61756474  # "vod_audt"

# The fields the hash covers, in this order. Changing it invalidates every existing chain.
CHAINED_FIELDS = (
    "sequence", "created_at", "actor_ref", "actor_label", "action", "outcome", "target_kind",
    "target_vod_id", "target_pk", "request_id", "vod_request_id", "client_ip", "user_agent",
    "data",
)


@dataclass(frozen=True)
class RequestContext:
    """Who asked and from where: what an audit event records about the request."""

    actor: Any = None
    # Who acted when there is no user: "system", "vod_sync", "vod callback", ...
    actor_label: str = ""
    request_id: str = ""
    client_ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request) -> RequestContext:
        """Who is asking and from where, from a Django or DRF request."""
        return cls(actor=request.user, request_id=getattr(request, "request_id", ""),
                   client_ip=client_ip(request),
                   user_agent=request.headers.get("User-Agent", "")[:256])

    @classmethod
    def system(cls, label: str = "system") -> RequestContext:
        """Context for work with no request behind it (commands, callbacks)."""
        return cls(actor=None, actor_label=label)


def audit_key() -> bytes:
    """The HMAC key. Outside the database; the settings refuse to start without one when
    DEBUG is off, so the fallback signs only local development chains."""
    key = settings.AUDIT_KEY or f"dev-only:{settings.SECRET_KEY}"
    return key.encode()


def canonical(values: dict[str, Any]) -> str:
    """The exact text the hash covers, stable across databases and Python versions."""
    normalized = {}
    for name in CHAINED_FIELDS:
        value = values.get(name)
        if name == "created_at" and value is not None:
            value = value.astimezone(dt_timezone.utc).isoformat(timespec="microseconds")
        normalized[name] = value
    return json.dumps(normalized, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def chain_hash(previous_hash: str, values: dict[str, Any], key: bytes | None = None) -> str:
    """HMAC-SHA256 of the previous hash followed by this row's canonical form."""
    message = (previous_hash + canonical(values)).encode()
    return hmac.new(key or audit_key(), message, hashlib.sha256).hexdigest()


def _locked_chain_head() -> tuple[int, str]:
    """Take the chain's lock (held until this transaction ends), then read the newest
    event's sequence number and hash (the genesis hash for an empty chain).

    SQLite: the settings open every transaction IMMEDIATE, which already holds the single
    write lock. PostgreSQL: a transaction-scoped advisory lock, taken and followed by the
    head's read in one round trip (migration 0005). Plain SQL either way: this runs on
    every credential's path, inside the span that other writers queue behind."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT head_sequence, head_hash FROM "
                           "uploads_audit_chain_head_locked(%s)", [_CHAIN_LOCK_ID])
        else:
            table = connection.ops.quote_name(AuditEvent._meta.db_table)
            cursor.execute(f"SELECT sequence, hash FROM {table} ORDER BY sequence DESC LIMIT 1")
        row = cursor.fetchone()
    return (row[0], row[1]) if row else (0, GENESIS_HASH)


def record(
    action: str,
    *,
    outcome: str = AuditOutcome.SUCCESS,
    context: RequestContext | None = None,
    target: Any = None,
    target_kind: str = "",
    target_vod_id: str = "",
    vod_request_id: str = "",
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain. Joins the caller's transaction if there is one.

    `target` may be an upload row; its kind, VOD id and primary key are copied. In a
    pipelined transaction (`statements.atomic`) the event's primary key is set once the
    transaction has committed.
    """
    context = context or RequestContext.system()
    actor = context.actor if getattr(context.actor, "is_authenticated", False) else None
    if target is not None:
        target_kind = target_kind or target.kind
        target_vod_id = target_vod_id or (target.vod_id or "")
    values = {
        "created_at": timezone.now(),
        "actor_id": actor.pk if actor else None,
        "actor_ref": actor.pk if actor else None,
        "actor_label": actor.get_username() if actor else context.actor_label,
        "action": action,
        "outcome": str(outcome),
        "target_kind": target_kind,
        "target_vod_id": target_vod_id,
        "target_pk": str(target.pk) if target is not None else "",
        "request_id": context.request_id[:64],
        "vod_request_id": vod_request_id[:64],
        "client_ip": context.client_ip,
        "user_agent": context.user_agent[:256],
        "data": data or {},
    }
    # Inside a caller's transaction no savepoint of its own (two round trips saved): an
    # append that fails must undo what it records anyway.
    with statements.atomic(savepoint=False):
        previous_sequence, previous_hash = _locked_chain_head()
        values["sequence"] = previous_sequence + 1
        values["hash"] = chain_hash(previous_hash, values)
        return statements.insert(AuditEvent(**values))


def hash_at(sequence: int) -> str | None:
    """The stored hash of one event, or None if there is no such sequence number."""
    return AuditEvent.objects.filter(sequence=sequence).values_list("hash", flat=True).first()


@dataclass(frozen=True)
class ChainReport:
    """What `verify_chain` found: ok, or the first sequence number where the chain breaks."""

    ok: bool
    checked: int
    head_sequence: int
    head_hash: str
    first_bad_sequence: int | None = None
    reason: str = ""


def verify_chain(key: bytes | None = None, *, batch_size: int = 5000) -> ChainReport:
    """Walk the whole chain in sequence order, recomputing every hash.

    Detects an edited field (hash mismatch), a deleted or inserted row (a gap or a duplicate
    in the sequence, or the next row's hash no longer matching), a reordering, and a wrong
    key. A deletion of the newest rows leaves a valid shorter chain: compare the reported
    head with one recorded elsewhere (`audit_verify --expect-head`).
    """
    key = key or audit_key()
    previous_hash, expected_sequence, checked = GENESIS_HASH, 1, 0
    columns = ("actor_id", "hash", *CHAINED_FIELDS)
    rows = AuditEvent.objects.order_by("sequence").values(*columns).iterator(chunk_size=batch_size)
    for row in rows:
        sequence = row["sequence"]
        if sequence != expected_sequence:
            missing = sequence > expected_sequence
            what = "missing" if missing else "repeated or out of order"
            return ChainReport(False, checked, expected_sequence - 1, previous_hash,
                               first_bad_sequence=expected_sequence if missing else sequence,
                               reason=f"sequence {expected_sequence} is {what} (found {sequence})")
        if row["actor_id"] is not None and row["actor_id"] != row["actor_ref"]:
            return ChainReport(False, checked, sequence - 1, previous_hash, sequence,
                               reason="actor was changed")
        if not hmac.compare_digest(row["hash"], chain_hash(previous_hash, row, key)):
            return ChainReport(False, checked, sequence - 1, previous_hash, sequence,
                               reason="hash does not match the row and its predecessor")
        previous_hash, expected_sequence, checked = row["hash"], sequence + 1, checked + 1
    return ChainReport(True, checked, expected_sequence - 1, previous_hash)
