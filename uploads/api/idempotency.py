"""Idempotency-Key on the create endpoints (the IETF draft, as Stripe does it).

- The same key with the same body answers the first answer again (`Idempotent-Replayed:
  true`) without calling VOD again.
- The same key with another body is refused: 422.
- Two requests with one key at once make one VOD call: the second waits for the first's
  answer (up to IDEMPOTENCY_WAIT_SECONDS), else gets 409 with Retry-After.
- A key is remembered for IDEMPOTENCY_KEY_TTL_HOURS (24 h), per user and endpoint.

What is remembered: successful answers. A key is freed only when VOD provably created
nothing for it (invalid input, throttled, refused by VOD, never sent): the client can fix
the request or retry with the same key. After any other failure (a timeout, a 5xx, a lost
database, a killed worker) the key stays bound to its row as *interrupted*, and a retry
with it goes on from there (`services.upload_id_for_retry`): a video is looked up by its
ReferenceId and handed a fresh credential, so VOD never makes a second one; an image or
attached media, which VOD cannot re-issue a credential for, gets a new row, and the first
one's media, if VOD made it, is discarded (by the retry, or by vod_sync once it is found).
A key whose request died without saying so (`running` past IDEMPOTENCY_LEASE_SECONDS) is
taken over the same way. The stored answer carries the upload credential, so it is
encrypted with a key derived from SECRET_KEY (kept outside the database), never stored in
the clear.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
import uuid
from datetime import timedelta
from typing import Callable

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from .. import services
from ..audit import RequestContext
from ..models import IdempotencyRecord, MediaUpload, UploadStatus
from .errors import error_response

HEADER = "Idempotency-Key"
_ACCEPTABLE_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces
_POLL_SECONDS = 0.05


def _fernet() -> Fernet:
    secret = hashlib.sha256(b"vodportal idempotency|" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(secret))


def _fingerprint(request) -> str:
    body = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{request.method} {request.path}\n{body}".encode()).hexdigest()


def _error(request, http_status: int, code: str, detail: str, **headers: str) -> Response:
    return error_response(getattr(request, "request_id", ""), http_status, code, detail,
                          headers=headers or None)


def _replay(request, record: IdempotencyRecord) -> Response:
    try:
        body = json.loads(_fernet().decrypt(record.response_body.encode()))
    except (InvalidToken, ValueError):
        # SECRET_KEY changed since: the answer cannot be read back, so say so plainly.
        return _error(request, status.HTTP_409_CONFLICT, "idempotency_key_unreadable",
                      "The answer stored for this Idempotency-Key can no longer be read; use a "
                      "new key.")
    return Response(body, status=record.response_status,
                    headers={"Idempotent-Replayed": "true", "Cache-Control": "no-store"})


def _claim(request, scope: str, key: str, fingerprint: str) -> IdempotencyRecord | None:
    """Insert our record for the key; None when another request holds it already."""
    now = timezone.now()
    IdempotencyRecord.objects.filter(user=request.user, expires_at__lt=now).delete()
    try:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(
                user=request.user, scope=scope, key=key, fingerprint=fingerprint,
                upload_id=uuid.uuid4(),
                expires_at=now + timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS))
    except IntegrityError:
        return None


def _take_over(record: IdempotencyRecord) -> bool:
    """Claim an abandoned record (IdempotencyRecord.abandoned) for a retry; False if it is
    not abandoned or another retry got it first."""
    return bool(IdempotencyRecord.objects.filter(IdempotencyRecord.abandoned(), pk=record.pk)
                .update(state=IdempotencyRecord.RUNNING, claimed_at=timezone.now()))


def _existing(request, scope: str, key: str,
              fingerprint: str) -> Response | IdempotencyRecord | None:
    """For a key already used: its answer, or the interrupted record we may resume, or
    None if it was freed meanwhile."""
    deadline = time.monotonic() + settings.IDEMPOTENCY_WAIT_SECONDS
    while True:
        record = IdempotencyRecord.objects.filter(user=request.user, scope=scope,
                                                  key=key).first()
        if record is None:
            return None  # the first request failed and freed the key
        if record.fingerprint != fingerprint:
            return _error(request, status.HTTP_422_UNPROCESSABLE_ENTITY, "idempotency_key_reused",
                          f"This {HEADER} was used with a different request body; use a new "
                          "key for a new request.")
        if record.state == IdempotencyRecord.COMPLETED:
            return _replay(request, record)
        if _take_over(record):
            return record
        if time.monotonic() >= deadline:
            return _error(request, status.HTTP_409_CONFLICT, "idempotency_key_in_use",
                          f"A request with this {HEADER} is still being processed; retry "
                          "shortly.", **{"Retry-After": "1"})
        time.sleep(_POLL_SECONDS)


def _nothing_created(model: type[MediaUpload], record: IdempotencyRecord) -> bool:
    """Whether the failed attempt provably left nothing in VOD: its row was never written
    (VOD was not called) or was ended as failed (only done on VOD's own refusal)."""
    status = model.objects.filter(pk=record.upload_id).values_list("status", flat=True).first()
    return status in (None, UploadStatus.FAILED)


def _resume(request, model: type[MediaUpload], record: IdempotencyRecord) -> None:
    """Point a taken-over record at the row its retry works on (see upload_id_for_retry)."""
    try:
        record.upload_id = services.upload_id_for_retry(
            model=model, upload_id=record.upload_id,
            context=RequestContext.from_request(request))
    except BaseException:
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            state=IdempotencyRecord.INTERRUPTED)
        raise
    record.save(update_fields=["upload_id"])


def idempotent(request, scope: str, model: type[MediaUpload],
               execute: Callable[[uuid.UUID | None], Response]) -> Response:
    """Run `execute` at most once per (user, scope, Idempotency-Key); replay its answer.

    `execute` gets the id the upload row must have (None without a key), so a retry after an
    interrupted attempt goes on with the same row where VOD allows it.
    """
    key = request.headers.get(HEADER)
    if key is None:
        return execute(None)
    if not _ACCEPTABLE_KEY.match(key):
        raise ValidationError({HEADER: ["1 to 255 printable ASCII characters, no spaces."]})
    fingerprint = _fingerprint(request)
    for _ in range(3):  # a freed key can be claimed again
        record = _claim(request, scope, key, fingerprint)
        if record is None:
            existing = _existing(request, scope, key, fingerprint)
            if isinstance(existing, Response):
                return existing
            if existing is None:
                continue
            record = existing  # an interrupted attempt: go on from where it stopped
            _resume(request, model, record)
        try:
            response = execute(record.upload_id)
        except BaseException:
            if _nothing_created(model, record):
                record.delete()  # VOD holds nothing for it: the key is free again
            else:
                record.state = IdempotencyRecord.INTERRUPTED
                record.save(update_fields=["state"])
            raise
        if response.status_code >= 400:
            record.delete()
            return response
        record.state = IdempotencyRecord.COMPLETED
        record.response_status = response.status_code
        record.response_body = _fernet().encrypt(
            json.dumps(response.data, default=str).encode()).decode()
        record.save(update_fields=["state", "response_status", "response_body"])
        return response
    return _error(request, status.HTTP_409_CONFLICT, "idempotency_key_in_use",
                  f"A request with this {HEADER} is being retried; retry shortly.",
                  **{"Retry-After": "1"})
