"""Writing the append-only audit trail, as a hash chain.

Each sealed row carries `sequence` and `hash = HMAC-SHA256(AUDIT_KEY, previous hash +
canonical row + its mac)`, so an edit, deletion, insertion or reordering made behind the
application's back breaks the chain. Writers do not chain: `record` inserts the row
unsealed, with only `mac`, an HMAC of the row itself; `audit_sealer` chains rows in order
shortly after (under the chain's lock), and refuses any whose mac does not hold. Callers
pass only non-secret facts in `data`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from datetime import timezone as dt_timezone
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from . import audit_sealer
from .middleware import client_ip
from .models import AuditEvent, AuditOutcome

GENESIS_HASH = "0" * 64

# Every action name the application writes (the admin filters by these).
ACTIONS = (
    "video.credential.issued", "video.credential.refreshed", "video.credential.failed",
    "image.credential.issued", "image.credential.failed",
    "attached_media.credential.issued", "attached_media.credential.failed",
    "admin.refresh", "admin.export",
    "upload.synced", "upload.cancelled", "upload.deleted", "upload.discarded",
    "upload.access.refused", "upload.action.refused", "upload.rejected", "policy.changed",
    "vod.event.received", "vod.event.rejected", "vod.event.pruned",
    "auth.login", "auth.login.failed", "auth.locked_out",
    "auth.token.created", "auth.token.deleted", "auth.user.created", "auth.oidc.user_created",
)
# What a row's mac signs starts with this, so it can never stand for a chain hash.
_MAC_DOMAIN = "vodportal audit row|"
_CLIENT_IP = AuditEvent._meta.get_field("client_ip")

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
    """HMAC-SHA256 of the previous hash followed by this row's canonical form and its mac
    (`values["mac"]`). Rows written before macs existed have none: their message, and so
    every older chain, is what it always was."""
    message = (previous_hash + canonical(values) + (values.get("mac") or "")).encode()
    return hmac.new(key or audit_key(), message, hashlib.sha256).hexdigest()


def values_of(row: Any) -> dict[str, Any]:
    """The fields `canonical` covers, read from a model instance or a `values()` dict."""
    if isinstance(row, dict):
        return {name: row.get(name) for name in CHAINED_FIELDS}
    return {name: getattr(row, name) for name in CHAINED_FIELDS}


def row_mac(values: dict[str, Any], nonce: str | None = None, key: bytes | None = None) -> str:
    """`nonce:HMAC` over a row as written, before it has a place in the chain.

    The writer computes it without any lock; the sealer checks it before chaining the row,
    so a row inserted or edited behind the application's back (no AUDIT_KEY) is never
    sealed. The random nonce makes every mac unique (a unique index holds it), so a copy of
    a genuine row, mac included, cannot be sealed twice."""
    nonce = nonce or secrets.token_hex(16)
    message = (_MAC_DOMAIN + nonce + "|" + canonical({**values, "sequence": None})).encode()
    return f"{nonce}:{hmac.new(key or audit_key(), message, hashlib.sha256).hexdigest()}"


def mac_matches(values: dict[str, Any], mac: str | None, key: bytes | None = None) -> bool:
    """Whether `mac` is the one `row_mac` gives for these values (constant-time)."""
    nonce, _, digest = (mac or "").partition(":")
    if len(nonce) != 32 or not digest:
        return False
    return hmac.compare_digest(mac, row_mac(values, nonce, key))


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
    """Write one event, unsealed: `audit_sealer` gives it its place in the chain shortly
    after it commits (or right away, in the same transaction, with AUDIT_SEAL_INLINE).
    Joins the caller's transaction if there is one: the event and the caller's changes
    commit or roll back together.

    `target` may be an upload row; its kind, VOD id and primary key are copied.
    """
    context = context or RequestContext.system()
    actor = context.actor if getattr(context.actor, "is_authenticated", False) else None
    if target is not None:
        target_kind = target_kind or target.kind
        target_vod_id = target_vod_id or (target.vod_id or "")
    values = {
        "created_at": timezone.now(),
        "actor_ref": actor.pk if actor else None,
        "actor_label": actor.get_username() if actor else context.actor_label,
        "action": action,
        "outcome": str(outcome),
        "target_kind": target_kind,
        "target_vod_id": target_vod_id,
        "target_pk": str(target.pk) if target is not None else "",
        "request_id": context.request_id[:64],
        "vod_request_id": vod_request_id[:64],
        # As the database will store it (IPv6 compressed, lower case): the mac is checked
        # against the stored row.
        "client_ip": _CLIENT_IP.get_prep_value(context.client_ip),
        "user_agent": context.user_agent[:256],
        "data": data or {},
    }
    values["mac"] = row_mac(values)
    if settings.AUDIT_SEAL_INLINE:
        # The row and its sealing in one transaction (the caller's if there is one; no
        # savepoint of its own: an append that fails must undo what it records anyway).
        with transaction.atomic(savepoint=False):
            event = AuditEvent.objects.create(actor_id=values["actor_ref"], **values)
            audit_sealer.seal_pending(watch=event)
        return event
    # No lock, no read: one INSERT (in autocommit, its own transaction). The sealer is woken
    # once the row is visible to it.
    event = AuditEvent.objects.create(actor_id=values["actor_ref"], **values)
    transaction.on_commit(audit_sealer.wake)
    return event


def hash_at(sequence: int) -> str | None:
    """The stored hash of one event, or None if there is no such sequence number."""
    return AuditEvent.objects.filter(sequence=sequence).values_list("hash", flat=True).first()


@dataclass(frozen=True)
class ChainReport:
    """What `verify_chain` found: ok, or where the trail breaks: the first bad sequence
    number, or for an event not sealed yet, its id."""

    ok: bool
    checked: int
    head_sequence: int
    head_hash: str
    first_bad_sequence: int | None = None
    reason: str = ""
    first_bad_id: int | None = None
    unsealed: int = 0
    # The trail was not written with this key: nothing verifies, which is no sign of
    # tampering (a deployment's AUDIT_KEY differs from the one that signed the rows).
    wrong_key: bool = False


def verify_chain(key: bytes | None = None, *, batch_size: int = 5000) -> ChainReport:
    """Walk the whole chain in sequence order, recomputing every hash; then check the
    events not sealed yet.

    Detects an edited field (hash mismatch), a deleted or inserted row (a gap or a duplicate
    in the sequence, or the next row's hash no longer matching), a reordering, a copy of a
    genuine row (two rows with one mac), and a wrong key. An unsealed row is bad when its
    mac does not hold (inserted or edited behind the application's back) or when it has
    waited longer than AUDIT_SEAL_MAX_LAG_SECONDS (no sealer is running). A deletion of the
    newest rows, sealed or not, leaves a valid shorter trail: compare the reported head with
    one recorded elsewhere (checkpoints, `audit_verify --expect-head`).
    """
    key = key or audit_key()
    report = _verify_sealed(key, batch_size)
    if report.ok:
        report = _verify_macs_unique(report)
    if report.ok:
        report = _verify_unsealed(report, key, batch_size)
    return report


def _verify_sealed(key: bytes, batch_size: int) -> ChainReport:
    previous_hash, expected_sequence, checked = GENESIS_HASH, 1, 0
    columns = ("actor_id", "hash", "mac", *CHAINED_FIELDS)
    rows = (AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence")
            .values(*columns).iterator(chunk_size=batch_size))
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
        if not hmac.compare_digest(row["hash"] or "", chain_hash(previous_hash, row, key)):
            if checked == 0 and _signed_with_another_key(key):
                return ChainReport(False, 0, 0, GENESIS_HASH, sequence, wrong_key=True,
                                   reason="no event's mac verifies with this AUDIT_KEY: the "
                                          "trail was written with another key (check "
                                          "AUDIT_KEY), or every event was rewritten")
            return ChainReport(False, checked, sequence - 1, previous_hash, sequence,
                               reason="hash does not match the row and its predecessor")
        previous_hash, expected_sequence, checked = row["hash"], sequence + 1, checked + 1
    return ChainReport(True, checked, expected_sequence - 1, previous_hash)


def _signed_with_another_key(key: bytes, sample: int = 20) -> bool:
    """Whether none of the oldest events' macs verify with `key`: tampering changes some
    rows, a wrong key fails every one."""
    columns = ("mac", *CHAINED_FIELDS)
    rows = list(AuditEvent.objects.filter(sequence__isnull=False).order_by("sequence")
                .values(*columns)[:sample])
    return bool(rows) and not any(mac_matches(row, row["mac"], key) for row in rows)


def _verify_macs_unique(report: ChainReport) -> ChainReport:
    """A unique index keeps macs unique; this catches a copy made with the index dropped.
    The chain covers each sealed row's mac, so a sealed original cannot be altered to hide
    its copy."""
    copies = (AuditEvent.objects.filter(mac__isnull=False).values("mac")
              .annotate(copies=models.Count("id")).filter(copies__gt=1)
              .order_by("mac").values_list("mac", flat=True)[:1])
    copied = next(iter(copies), None)
    if copied is None:
        return report
    # The copy is the later of the two: the greater sequence, or an unsealed one.
    rows = AuditEvent.objects.filter(mac=copied).order_by("id").values_list("id", "sequence")
    copy_id, copy_sequence = max(rows, key=lambda row: (row[1] is None, row[1] or 0, row[0]))
    return _broken(report, "a copy of another event (the same mac): inserted behind the "
                           "application's back", sequence=copy_sequence, event_id=copy_id)


def _verify_unsealed(report: ChainReport, key: bytes, batch_size: int) -> ChainReport:
    max_lag = settings.AUDIT_SEAL_MAX_LAG_SECONDS
    oldest_allowed = timezone.now() - timedelta(seconds=max_lag)
    pending = 0
    rows = (AuditEvent.objects.filter(sequence__isnull=True).order_by("id")
            .values("id", "actor_id", "mac", *CHAINED_FIELDS).iterator(chunk_size=batch_size))
    for row in rows:
        pending += 1
        if row["actor_id"] is not None and row["actor_id"] != row["actor_ref"]:
            return _broken(report, "not sealed, and its actor was changed", event_id=row["id"])
        if not mac_matches(row, row["mac"], key):
            return _broken(report, "not sealed, and its mac does not match the row: inserted "
                                   "or edited behind the application's back",
                           event_id=row["id"])
        if row["created_at"] < oldest_allowed:
            age = (timezone.now() - row["created_at"]).total_seconds()
            return _broken(report, f"not sealed {age:.0f} s after it was written (limit "
                                   f"AUDIT_SEAL_MAX_LAG_SECONDS={max_lag}): is a sealer "
                                   f"running?", event_id=row["id"])
    return replace(report, unsealed=pending)


def _broken(report: ChainReport, reason: str, *, sequence: int | None = None,
            event_id: int | None = None) -> ChainReport:
    return replace(report, ok=False, first_bad_sequence=sequence, first_bad_id=event_id,
                   reason=reason)
