"""Idempotency-Key on the create endpoints (the IETF draft, as Stripe does it).

- The same key with the same body answers the first answer again (`Idempotent-Replayed:
  true`) without calling VOD again.
- The same key with another body is refused: 422.
- Two requests with one key at once make one VOD call: the second waits for the first's
  answer (up to IDEMPOTENCY_WAIT_SECONDS), else gets 409 with Retry-After.
- A key is remembered for IDEMPOTENCY_KEY_TTL_HOURS (24 h), per user and endpoint.

What is remembered: successful answers. A request that fails cleanly (invalid input,
throttled, refused by VOD) frees its key, so the client can fix it or retry with the same
key. A video whose request failed after VOD may have acted (a timeout, a 5xx) keeps its
key bound to its `requesting` row: a retry with the key resumes that row with the same
ReferenceId, so VOD never makes a second video for it. The stored answer carries the
upload credential, so it is encrypted with a key derived from SECRET_KEY (kept outside the
database), never stored in the clear.
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

from ..models import IdempotencyRecord, UploadStatus, VideoUpload
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
    """Claim an interrupted record for a retry; False if another retry got it first."""
    return bool(IdempotencyRecord.objects.filter(
        pk=record.pk, state=IdempotencyRecord.INTERRUPTED).update(
        state=IdempotencyRecord.RUNNING))


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
        if record.state == IdempotencyRecord.INTERRUPTED and _take_over(record):
            return record
        if time.monotonic() >= deadline:
            return _error(request, status.HTTP_409_CONFLICT, "idempotency_key_in_use",
                          f"A request with this {HEADER} is still being processed; retry "
                          "shortly.", **{"Retry-After": "1"})
        time.sleep(_POLL_SECONDS)


def _interrupted_video(record: IdempotencyRecord) -> bool:
    """Whether the failed attempt left a video VOD may have created (still `requesting`)."""
    return VideoUpload.objects.filter(pk=record.upload_id,
                                      status=UploadStatus.REQUESTING).exists()


def idempotent(request, scope: str, execute: Callable[[uuid.UUID | None], Response]) -> Response:
    """Run `execute` at most once per (user, scope, Idempotency-Key); replay its answer.

    `execute` gets the id the upload row must have (None without a key), so a retry after an
    interrupted attempt resumes the same row.
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
            record = existing  # an interrupted attempt: resume its upload
        try:
            response = execute(record.upload_id)
        except BaseException:
            if _interrupted_video(record):
                record.state = IdempotencyRecord.INTERRUPTED
                record.save(update_fields=["state"])
            else:
                record.delete()  # nothing settled: the key is free again
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
