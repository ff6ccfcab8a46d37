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
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from .models import AuditEvent, AuditOutcome

GENESIS_HASH = "0" * 64
# Any constant: the key of the PostgreSQL advisory lock that serializes chain appends.
_CHAIN_LOCK_ID = 0x766F645F61756474  # "vod_audt"

# The fields the hash covers, in this order. Changing it invalidates every existing chain.
CHAINED_FIELDS = (
    "sequence", "created_at", "actor_id", "actor_label", "action", "outcome", "target_kind",
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
    def system(cls, label: str = "system") -> RequestContext:
        """Context for work with no request behind it (commands, callbacks)."""
        return cls(actor=None, actor_label=label)


def audit_key() -> bytes:
    """The HMAC key. Outside the database; checks.py refuses an empty one in production."""
    key = settings.AUDIT_KEY or f"dev-only:{settings.SECRET_KEY}"
    return key.encode()


def canonical(values: dict[str, Any]) -> str:
    """The exact text the hash covers, stable across databases and Python versions."""
    normalized = {}
    for name in CHAINED_FIELDS:
        value = values.get(name)
        if name == "created_at" and value is not None:
            value = value.astimezone(timezone.utc).isoformat(timespec="microseconds")
        normalized[name] = value
    return json.dumps(normalized, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def chain_hash(previous_hash: str, values: dict[str, Any], key: bytes | None = None) -> str:
    """HMAC-SHA256 of the previous hash followed by this row's canonical form."""
    message = (previous_hash + canonical(values)).encode()
    return hmac.new(key or audit_key(), message, hashlib.sha256).hexdigest()


def _lock_chain() -> None:
    # SQLite: the settings open every transaction IMMEDIATE, which already holds the single
    # write lock. PostgreSQL: an advisory lock held until this transaction ends.
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK_ID])


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

    `target` may be an upload row; its kind, VOD id and primary key are copied.
    """
    context = context or RequestContext.system()
    actor = context.actor if getattr(context.actor, "is_authenticated", False) else None
    if target is not None:
        target_kind = target_kind or target.kind
        target_vod_id = target_vod_id or (target.vod_id or "")
    values = {
        "created_at": timezone.now(),
        "actor_id": actor.pk if actor else None,
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
    with transaction.atomic():
        _lock_chain()
        last = AuditEvent.objects.order_by("-sequence").values_list("sequence", "hash").first()
        previous_sequence, previous_hash = last or (0, GENESIS_HASH)
        values["sequence"] = previous_sequence + 1
        values["hash"] = chain_hash(previous_hash, values)
        return AuditEvent.objects.create(**values)
