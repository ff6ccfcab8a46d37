"""VOD event notifications (HTTP callbacks): store raw, verify, dispatch by EventType.

VOD signs a callback with X-VOD-TIMESTAMP and
X-VOD-SIGNATURE = md5hex("<CallbackURL>|<timestamp>|<AuthKey>"); the body is not signed.
We store every delivery first, then check the signature against every configured key
(rotation) in constant time within a time window, then act on it through services: the
body only names the media, whose state is confirmed with VOD, so a captured signature
with a forged body moves nothing. (Binding a signature to the first body it came with is
no defence here: the signature covers only the URL and the timestamp, so every event VOD
sends in the same second carries the same one.) VOD retries until it gets a 200 within 5 s
and may deliver twice: a duplicate changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from . import audit, metrics, ratelimit
from .audit import RequestContext
from .models import UPLOAD_MODELS, AuditOutcome, VodEvent, VodEventStatus
from .services import DependencyUnavailable, VodError, events


@dataclass(frozen=True)
class CallbackAnswer:
    """What the view answers VOD: HTTP status and a short machine code."""

    status: int
    code: str
    detail: str = ""
    retry_after: int | None = None


def signature_for(callback_url: str, timestamp: str, auth_key: str) -> str:
    """VOD's callback signature (also what tests and the sandbox sign with)."""
    return hashlib.md5(f"{callback_url}|{timestamp}|{auth_key}".encode()).hexdigest()


def _verify(timestamp: str, signature: str) -> str:
    """'' when authentic, else why not."""
    keys = [key for key in settings.VOD_CALLBACK_AUTH_KEYS if key]
    if not keys or not settings.VOD_CALLBACK_URL:
        return "callback authentication is not configured"
    if not timestamp or not signature:
        return "missing X-VOD-TIMESTAMP or X-VOD-SIGNATURE"
    if not signature.isascii():  # compare_digest refuses such text; no signature has it
        return "signature does not match"
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return "X-VOD-TIMESTAMP is not a Unix time"
    if age > settings.VOD_CALLBACK_MAX_AGE:
        return "X-VOD-TIMESTAMP is outside the accepted window"
    matches = [hmac.compare_digest(signature.lower(),
                                   signature_for(settings.VOD_CALLBACK_URL, timestamp, key))
               for key in keys]  # every key is compared: no early exit to time
    return "" if any(matches) else "signature does not match"


@dataclass(frozen=True)
class EventRule:
    """What vodportal does with one EventType: look at the upload of `kind` it names again
    (VOD confirms the state), or acknowledge it deliberately unapplied, for `ignored`."""

    kind: str = ""
    ignored: str = ""


# Every event type VOD documents (the admin filters by these), each applied or deliberately
# ignored. Fields per VOD's event pages (docs/reliability.md, "Events").
EVENT_RULES = {
    "FileUploadComplete": EventRule("video"),
    "StreamTranscodeComplete": EventRule("video"),
    "TranscodeComplete": EventRule("video"),
    "ImageUploadComplete": EventRule("image"),
    "AttachedMediaUploadComplete": EventRule("attached_media"),
    # Only DeleteVideo sends it (MediaType `video`, the id in MediaId); VOD's lookup says
    # whether the whole media went (DeleteType `all`) or only its source or streams.
    "DeleteMediaComplete": EventRule("video"),
    # A manual review's verdict: GetVideoInfo says Normal or Blocked.
    "CreateAuditComplete": EventRule("video"),
    "VideoAnalysisComplete": EventRule(
        ignored="the source's metadata is not kept; a source VOD cannot read fails its "
                "transcoding, which TranscodeComplete reports"),
    "SnapshotComplete": EventRule(ignored="covers and snapshots are not kept"),
}
EVENT_TYPES = tuple(EVENT_RULES)
# The kind a DeleteMediaComplete names, by its MediaType.
_DELETED_MEDIA_KINDS = {"video": "video", "image": "image", "attached": "attached_media"}
# Events that report a failure with ErrorCode / ErrorMessage (top level, or per stream).
_FAILURE_EVENTS = {"StreamTranscodeComplete", "TranscodeComplete"}


def _text(value, limit: int) -> str:
    """A payload field as text we can store: no NUL (PostgreSQL refuses it), bounded."""
    return str(value).replace("\x00", "\ufffd")[:limit]


def _media_id(payload: dict) -> str:
    for field in ("VideoId", "ImageId", "AttachedMediaId", "MediaId"):
        if payload.get(field):
            return _text(payload[field], 64)
    return ""


def _reported_failure(event_type: str, payload: dict) -> events.ReportedFailure | None:
    """The ErrorCode / ErrorMessage a failed transcoding event carries: its own, else the
    first failed stream's (TranscodeComplete's StreamInfos)."""
    if event_type not in _FAILURE_EVENTS or payload.get("Status") != "fail":
        return None
    streams = payload.get("StreamInfos")
    candidates = [payload, *(stream for stream in streams if isinstance(stream, dict))] \
        if isinstance(streams, list) else [payload]
    for candidate in candidates:
        if candidate.get("ErrorCode") or candidate.get("ErrorMessage"):
            return events.ReportedFailure(code=_text(candidate.get("ErrorCode") or "", 128),
                                          message=_text(candidate.get("ErrorMessage") or "",
                                                        512))
    return None


def _dispatch(payload: dict, context: RequestContext) -> str:
    """Act on an authentic event; returns a note for the stored row."""
    event_type = _text(payload.get("EventType", ""), 64)
    rule = EVENT_RULES.get(event_type)
    if rule is None or rule.ignored:
        audit.record("vod.event.received", context=context, target_vod_id=_media_id(payload),
                     data={"event_type": event_type, "handled": False})
        return f"ignored: {rule.ignored}" if rule else "event type not handled; acknowledged"
    kind = rule.kind
    if event_type == "DeleteMediaComplete":
        kind = _DELETED_MEDIA_KINDS.get(str(payload.get("MediaType", "video")), kind)
    vod_id = _media_id(payload)
    if not vod_id:
        audit.record("vod.event.received", context=context, target_kind=kind,
                     data={"event_type": event_type, "changed": False})
        return "nothing to change"
    try:
        effect = events.upload_event_apply(model=UPLOAD_MODELS[kind], vod_id=vod_id,
                                           event_type=event_type, context=context,
                                           failure=_reported_failure(event_type, payload))
    except (VodError, DependencyUnavailable) as error:
        # Acknowledged (VOD would only send it again), not applied: vod_sync settles it.
        audit.record("vod.event.received", outcome=AuditOutcome.FAILURE, context=context,
                     target_kind=kind, target_vod_id=vod_id,
                     vod_request_id=getattr(error, "request_id", ""),
                     data={"event_type": event_type, "confirmed": False, "code": error.code})
        return f"not confirmed by VOD ({error.code}); left for vod_sync"
    if effect.upload is None:
        audit.record("vod.event.received", context=context, target_kind=kind,
                     target_vod_id=vod_id, data={"event_type": event_type, "unknown_media": True})
        return "media is not one of ours; acknowledged"
    return f"{effect.old_status} -> {effect.new_status} (confirmed by VOD)"


# The verdict /metrics counts for an authentic first delivery, by the start of _dispatch's note.
_VERDICTS = (("ignored", "ignored"), ("event type not handled", "ignored"),
             ("not confirmed", "unconfirmed"), ("media is not one of ours", "unknown_media"))


def _verdict(note: str) -> str:
    return next((verdict for start, verdict in _VERDICTS if note.startswith(start)), "accepted")


def receive(*, body: bytes, timestamp: str, signature: str, client_ip: str | None,
            request_id: str) -> CallbackAnswer:
    """Handle one delivery end to end. Never raises for bad input: it answers (Redis down
    while counting a refused delivery raises DependencyUnavailable, a 503)."""
    problem = _verify(timestamp, signature)
    if problem:
        # Refused deliveries are kept for staff to see, up to a rate per address: beyond it
        # a flood is answered without a trace in the database.
        wait = ratelimit.hit(settings.VOD_CALLBACK_REFUSED_RATE, "vodportal-refused-callback",
                             client_ip or "unknown")
        if wait:
            metrics.callback("", "throttled")
            return CallbackAnswer(status=429, code="too_many_refused_callbacks",
                                  detail=problem, retry_after=wait)
    # Kept as text for staff to read: undecodable bytes and NULs as U+FFFD (the fingerprint
    # is of the bytes as they came).
    text = body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    fingerprint = hashlib.sha256(body).hexdigest()
    stored = VodEvent.objects.create(body=text, fingerprint=fingerprint,
                                     vod_timestamp=timestamp[:32], client_ip=client_ip,
                                     request_id=request_id)
    context = RequestContext(actor=None, actor_label="vod callback", request_id=request_id,
                             client_ip=client_ip, user_agent="")
    payload = None
    if not problem:
        try:
            payload = json.loads(text)
        except ValueError:
            problem = "body is not JSON"
        if payload is not None and not isinstance(payload, dict):
            problem = "body is not a JSON object"
    if problem:
        return _reject(stored, problem, context)
    return _accept(stored, payload, context)


def _reject(stored: VodEvent, problem: str, context: RequestContext) -> CallbackAnswer:
    with transaction.atomic():
        stored.status = VodEventStatus.REJECTED
        stored.reason = problem
        stored.save(update_fields=["status", "reason"])
        audit.record("vod.event.rejected", outcome=AuditOutcome.REJECTED, context=context,
                     data={"reason": problem, "event": stored.pk})
    metrics.callback("", "rejected")
    status = 400 if problem.startswith("body") else 403
    return CallbackAnswer(status=status, code="callback_rejected", detail=problem)


def _accept(stored: VodEvent, payload: dict, context: RequestContext) -> CallbackAnswer:
    stored.event_type = _text(payload.get("EventType", ""), 64)
    stored.media_id = _media_id(payload)
    stored.event_time = _text(payload.get("EventTime", ""), 32)
    described = ["status", "reason", "event_type", "media_id", "event_time"]
    with transaction.atomic():
        try:
            # The partial unique constraint lets one delivery of a body become `accepted`;
            # a racing one waits for it (PostgreSQL) and is refused here once it commits.
            with transaction.atomic():
                stored.status = VodEventStatus.ACCEPTED
                stored.save(update_fields=described)
        except IntegrityError:
            stored.status, stored.reason = VodEventStatus.DUPLICATE, "already processed"
            stored.save(update_fields=described)
            metrics.callback(stored.event_type, "duplicate", known=EVENT_RULES)
            return CallbackAnswer(status=200, code=stored.status)
        stored.reason = _dispatch(payload, context)[:200]
        stored.save(update_fields=["reason"])
    metrics.callback(stored.event_type, _verdict(stored.reason), known=EVENT_RULES)
    return CallbackAnswer(status=200, code=stored.status)
