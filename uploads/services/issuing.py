"""Issue and refresh upload credentials.

Every issuance follows one pattern: commit a `requesting` row, call VOD outside any
transaction, then complete the row and append its audit event in one transaction. A crash
between the steps leaves a `requesting` row that `vod_sync` resolves; a failure is recorded
on the row and in the audit trail before the caller sees it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import partial
from typing import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.db.models import F

from .. import audit, metrics, vod
from ..audit import RequestContext
from ..dependencies import DependencyUnavailable, forget_broken_connections
from ..models import (
    AttachedMediaUpload,
    AuditOutcome,
    ImageUpload,
    MediaUpload,
    UploadStatus,
    VideoUpload,
)
from ..validation import build_user_data
from . import policies
from .access import on_behalf

# States in which a video may be given a fresh credential for its upload.
REFRESHABLE_STATUSES = (UploadStatus.UPLOADING, UploadStatus.EXPIRED, UploadStatus.FAILED)


class InvalidState(Exception):
    """The upload is in a state where the operation makes no sense."""

    def __init__(self, message: str, *, status: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Issued:
    """A completed row with the credential VOD gave for it (the credential is never stored)."""

    upload: MediaUpload
    credential: vod.IssuedUpload


@dataclass
class Attempt:
    """What one issuance has learnt so far: whether VOD may hold a media for the row.

    Once it may, the row is never ended as failed by this request: only VOD's own answer
    to a lookup (vod_sync, or a retry with the same Idempotency-Key) settles it.
    """

    vod_may_have_acted: bool = False


def _user_data(extend: dict | None) -> str:
    return build_user_data(callback_url=settings.VOD_CALLBACK_URL, extend=extend)


def _vod_settings(policy, **request) -> dict:
    """The VOD settings of a new upload: the deployment's (VOD_APP_ID, ...), what the
    request chose where a client may choose, and over both what the owner's policy decides."""
    defaults = {"app_id": settings.VOD_APP_ID, "storage_location": settings.VOD_STORAGE_LOCATION,
                **request}
    return policies.vod_settings(policy, defaults)


def _record_policy_refusal(kind: str, error: policies.PolicyRefused, *,
                           context: RequestContext) -> None:
    """Audit a request the owner's policy refused (nothing written, nothing sent)."""
    audit.record(f"{kind}.credential.failed", outcome=AuditOutcome.REJECTED, context=context,
                 target_kind=kind,
                 data={"code": error.code, "message": error.detail[:512], "limit": error.limit,
                       "resets_at": error.resets_at.isoformat() if error.resets_at else None,
                       "vod_may_have_acted": False})


def _policy_checked(owner, kind: str, context: RequestContext, **request):
    """The owner's policy if it allows the request; refused ones are audited and raised."""
    try:
        return policies.check_request(owner, kind, **request)
    except policies.PolicyRefused as error:
        _durably(partial(_record_policy_refusal, kind, error, context=context))
        raise


def nothing_created(error: Exception) -> bool:
    """Whether VOD provably created nothing for a create that failed with `error`.

    True when the request never reached VOD (connection refused, our limiter's refusal or
    its store down) or VOD refused it outright (bad input, throttling, our configuration).
    A timeout, a 5xx, a dropped connection after sending, an unreadable answer, and a
    duplicate ReferenceId (proof that a video exists) leave it open.
    """
    if isinstance(error, DependencyUnavailable):
        return True
    if isinstance(error, vod.VodDuplicateReference):
        return False
    if isinstance(error, (vod.VodTimeout, vod.VodBadResponse)):
        return False
    if isinstance(error, vod.VodUnavailable):
        return error.connect_failed
    return isinstance(error, vod.VodError)


def _failure_facts(error: Exception) -> dict:
    """Code, message, status, request id and operation of a failure, for the row and audit."""
    if isinstance(error, DependencyUnavailable):
        return {"code": error.code, "message": str(error), "http_status": None,
                "request_id": "", "operation": ""}
    return {"code": error.code, "message": error.message, "http_status": error.http_status,
            "request_id": error.request_id, "operation": error.operation}


def _record_failure(row: MediaUpload, error: Exception, *, action: str,
                    context: RequestContext, end_row: bool) -> None:
    """Store the failure on the row (ending it when nothing was created) and audit it."""
    facts = _failure_facts(error)
    with transaction.atomic():
        row.error_code = facts["code"][:128]
        row.error_message = facts["message"][:512]
        row.last_vod_request_id = facts["request_id"][:64]
        fields = ["error_code", "error_message", "last_vod_request_id", "updated_at"]
        if end_row:
            row.status = UploadStatus.FAILED
            fields.append("status")
        row.save(update_fields=fields)
        audit.record(action, outcome=AuditOutcome.FAILURE, context=context, target=row,
                     vod_request_id=facts["request_id"],
                     data={"operation": facts["operation"], "code": facts["code"],
                           "http_status": facts["http_status"],
                           "message": facts["message"][:512],
                           "vod_may_have_acted": not end_row})


# What _complete writes onto a row (besides the kind's own fields).
_COMPLETED_FIELDS = ("vod_id", "status", "upload_endpoint", "upload_bucket", "upload_object_key",
                     "credential_expires_at", "credentials_issued", "last_vod_request_id",
                     "error_code", "error_message")


def _complete(row: MediaUpload, credential: vod.IssuedUpload, *, action: str,
              context: RequestContext, extra_fields: dict) -> None:
    """Write what VOD answered onto the row and audit the issuance, atomically."""
    with transaction.atomic():
        row.vod_id = credential.media_id
        row.status = UploadStatus.UPLOADING
        row.upload_endpoint = credential.address.endpoint
        row.upload_bucket = credential.address.bucket
        row.upload_object_key = credential.address.object_key
        row.credential_expires_at = credential.expires_at
        row.credentials_issued = 1
        row.last_vod_request_id = credential.request_id
        row.error_code = row.error_message = ""
        for name, value in extra_fields.items():
            setattr(row, name, value)
        row.save(update_fields=[*_COMPLETED_FIELDS, *extra_fields, "updated_at"])
        audit.record(action, context=context, target=row, vod_request_id=credential.request_id,
                     data={"expires_at": credential.expires_at.isoformat(),
                           "bucket": credential.address.bucket,
                           "object_key": credential.address.object_key,
                           "reference_id": row.reference_id})


def _durably(write: Callable[[], None], *, written: Callable[[], bool] | None = None) -> None:
    """Run a write that records what VOD already did; on a lost database connection, once
    more on a fresh one (VOD's answer is worth a reconnect), unless `written` shows that the
    first try committed after all (the connection died after COMMIT, before its answer).
    Inside a caller's transaction there is nothing to reconnect: the error goes up."""
    try:
        write()
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        forget_broken_connections()
        if written is None or not written():
            write()


def _record_refusal(kind: str, error: Exception, *, context: RequestContext) -> None:
    """Audit a request refused before anything was written or sent (no row to point at)."""
    facts = _failure_facts(error)
    audit.record(f"{kind}.credential.failed", outcome=AuditOutcome.REJECTED, context=context,
                 target_kind=kind,
                 data={"operation": facts["operation"], "code": facts["code"],
                       "http_status": facts["http_status"], "message": facts["message"][:512],
                       "vod_may_have_acted": False})


def _hand_back_connection() -> None:
    """Before waiting on VOD, return this thread's database connection to the pool.

    VOD answers in tens to hundreds of milliseconds; holding a connection meanwhile would
    make a worker need one per thread. Only between transactions, and only with a pool
    (closing an unpooled connection would mean reconnecting after VOD answers)."""
    if getattr(connection, "pool", None) is not None and not connection.in_atomic_block:
        connection.close()


def _issue(row: MediaUpload, operation: str,
           send: Callable[[MediaUpload, Attempt], vod.IssuedUpload],
           context: RequestContext, extra_fields: Callable[[vod.IssuedUpload], dict],
           policy=None) -> Issued:
    """Book the VOD call, commit the `requesting` row (its declared size reserved against
    the owner's quotas, atomically), call VOD and complete the row.

    The booking comes first: a request our limiter refuses is audited and leaves no row (a
    burst would otherwise fill the table with failed rows that never reached VOD)."""
    try:
        booking = vod.book_call(operation)
    except (vod.VodThrottled, DependencyUnavailable) as error:
        metrics.credential_refused(row.kind, error)
        _durably(partial(_record_refusal, row.kind, error, context=context))
        raise
    with booking:
        try:
            policies.reserve(row, policy)  # committed: a trace exists before VOD is called
        except policies.PolicyRefused as error:
            _durably(partial(_record_policy_refusal, row.kind, error, context=context))
            raise
        return _send_and_complete(row, send, context, extra_fields, Attempt())


def _send_and_complete(row: MediaUpload, send: Callable[[MediaUpload, Attempt], vod.IssuedUpload],
                       context: RequestContext,
                       extra_fields: Callable[[vod.IssuedUpload], dict],
                       attempt: Attempt) -> Issued:
    kind = row.kind
    _hand_back_connection()
    try:
        credential = send(row, attempt)
    except (vod.VodError, DependencyUnavailable) as error:
        metrics.credential_refused(kind, error)
        settled = not attempt.vod_may_have_acted and nothing_created(error)
        _durably(partial(_record_failure, row, error, action=f"{kind}.credential.failed",
                         context=context, end_row=settled))
        raise
    # VOD has acted: from here on a failure must not lose its answer (the row stays
    # `requesting` for vod_sync or a retry if even a fresh connection fails).
    _durably(lambda: _complete(row, credential, action=f"{kind}.credential.issued",
                               context=context, extra_fields=extra_fields(credential)),
             written=lambda: type(row).objects.filter(pk=row.pk,
                                                      vod_id=credential.media_id).exists())
    metrics.credential_issued(kind, "create")
    return Issued(upload=row, credential=credential)


def _video_by_reference(video: VideoUpload) -> vod.VideoCredential | None:
    """The video VOD holds for this row's ReferenceId with a fresh credential, or None when
    VOD answers that it holds none."""
    try:
        return vod.refresh_upload_video(reference_id=video.reference_id)
    except vod.VodNotFound:
        return None


def _create_video_once(video: VideoUpload, attempt: Attempt, create: Callable[[], vod.VideoCredential]
                       ) -> vod.VideoCredential:
    """CreateUploadVideo for the row, making at most one video whatever fails.

    After any failure VOD may have acted on, the ReferenceId is looked up before anything is
    sent again; whatever a repeated create answers (VOD does not document a duplicate's
    error), the next lookup decides. Gives up after VOD_MAX_ATTEMPTS, leaving the row open.
    """
    attempts = max(1, settings.VOD_MAX_ATTEMPTS)
    for number in range(1, attempts + 1):
        if attempt.vod_may_have_acted:
            found = _video_by_reference(video)
            if found is not None:
                return found
        try:
            return create()
        except vod.VodError as error:
            if not attempt.vod_may_have_acted and nothing_created(error):
                raise
            attempt.vod_may_have_acted = True
            if number == attempts:
                raise
            vod.backoff(number)
    raise AssertionError("unreachable")  # pragma: no cover


def video_issue(*, owner, title: str, file_name: str, context: RequestContext,
                file_size: int | None = None, description: str = "", tags: str = "",
                cate_id: int | None = None, cover_url: str = "",
                extend: dict | None = None, upload_id: uuid.UUID | None = None) -> Issued:
    """CreateUploadVideo for `owner`, recorded as a VideoUpload.

    `upload_id` fixes the row's id (so its ReferenceId): a retry of an interrupted request
    (same Idempotency-Key) passes the same id and resumes that row instead of making another.
    """
    user_data = _user_data(extend)
    existing = (VideoUpload.objects.filter(pk=upload_id, owner=owner).first()
                if upload_id else None)
    policy = None if existing else _policy_checked(owner, "video", context, file_name=file_name,
                                                    declared_size=file_size)
    row = existing or VideoUpload(
        id=upload_id or uuid.uuid4(), owner=owner, title=title, file_name=file_name,
        file_size=file_size, description=description, tags=tags, cover_url=cover_url,
        extend=extend, **_vod_settings(policy, cate_id=cate_id,
                                       template_group_id=settings.VOD_TEMPLATE_GROUP_ID,
                                       workflow_id=settings.VOD_WORKFLOW_ID))

    def send(video: VideoUpload, attempt: Attempt) -> vod.VideoCredential:
        return _create_video_once(video, attempt, lambda: vod.create_upload_video(
            title=title, file_name=file_name, reference_id=video.reference_id,
            file_size=file_size, description=description, cover_url=cover_url,
            cate_id=video.cate_id, tags=tags, template_group_id=video.template_group_id,
            workflow_id=video.workflow_id, storage_location=video.storage_location,
            app_id=video.app_id, user_data=user_data))

    if existing is None:
        return _issue(row, "CreateUploadVideo", send, context, lambda credential: {}, policy)
    if existing.status != UploadStatus.REQUESTING:
        # Created, but its credential never reached the client: a fresh one for it.
        return video_refresh(video=existing, context=context)
    # The earlier attempt may have created the video: look its ReferenceId up first.
    return _send_and_complete(existing, send, context, lambda credential: {},
                              Attempt(vod_may_have_acted=True))


def video_refresh(*, video: VideoUpload, context: RequestContext,
                  audit_action: str = "video.credential.refreshed") -> Issued:
    """RefreshUploadVideo: a new credential for the same upload address.

    `audit_action` names the event: `admin.refresh` when staff asked from the admin.
    """
    if not video.vod_id or video.status not in REFRESHABLE_STATUSES:
        audit.record("upload.action.refused", outcome=AuditOutcome.REJECTED, context=context,
                     target=video, data={"action": audit_action, "status": video.status,
                                         **on_behalf(video, context)})
        raise InvalidState(f"A video that is {video.get_status_display().lower()} cannot be "
                           "given a new upload credential.", status=video.status)
    _hand_back_connection()
    try:
        credential = vod.refresh_upload_video(video_id=video.vod_id)
    except (vod.VodError, DependencyUnavailable) as error:
        metrics.credential_refused("video", error)
        _durably(partial(_record_failure, video, error, action="video.credential.failed",
                         context=context, end_row=False))
        raise
    _durably(lambda: _record_refresh(video, credential, context=context,
                                     audit_action=audit_action))
    metrics.credential_issued("video", "refresh")
    return Issued(upload=video, credential=credential)


def _record_refresh(video: VideoUpload, credential: vod.VideoCredential, *,
                    context: RequestContext, audit_action: str) -> None:
    with transaction.atomic():
        VideoUpload.objects.filter(pk=video.pk).update(
            status=UploadStatus.UPLOADING,
            upload_endpoint=credential.address.endpoint,
            upload_bucket=credential.address.bucket,
            upload_object_key=credential.address.object_key,
            credential_expires_at=credential.expires_at,
            credentials_issued=F("credentials_issued") + 1,
            last_vod_request_id=credential.request_id,
            error_code="", error_message="")
        video.refresh_from_db()
        audit.record(audit_action, context=context, target=video,
                     vod_request_id=credential.request_id,
                     data={"expires_at": credential.expires_at.isoformat(),
                           "credentials_issued": video.credentials_issued,
                           **on_behalf(video, context)})


def _with_marker(tags: str, row: MediaUpload) -> str:
    """The user's tags (comma-separated) plus the row's marker, as VOD's Tags."""
    return ",".join(filter(None, [tags, row.marker_tag]))


def image_issue(*, owner, image_type: str, image_ext: str, context: RequestContext,
                title: str = "", original_file_name: str = "", description: str = "",
                tags: str = "", cate_id: int | None = None,
                extend: dict | None = None, upload_id: uuid.UUID | None = None) -> Issued:
    """CreateUploadImage for `owner`, recorded as an ImageUpload (its id `upload_id` when
    given). The image carries the row's marker tag, so a lost answer can be found again."""
    user_data = _user_data(extend)
    policy = _policy_checked(owner, "image", context,
                             file_name=original_file_name or f"image.{image_ext}")
    row = ImageUpload(id=upload_id or uuid.uuid4(), owner=owner, image_type=image_type,
                      image_ext=image_ext, title=title,
                      file_name=original_file_name, description=description, tags=tags,
                      extend=extend, **_vod_settings(policy, cate_id=cate_id))

    def send(image: ImageUpload, attempt: Attempt) -> vod.ImageCredential:
        return vod.create_upload_image(
            image_type=image_type, image_ext=image_ext, title=title,
            original_file_name=original_file_name, description=description,
            cate_id=image.cate_id,
            tags=_with_marker(tags, image), storage_location=image.storage_location,
            app_id=image.app_id,
            user_data=user_data)

    return _issue(row, "CreateUploadImage", send, context,
                  lambda credential: {"image_url": credential.image_url,
                                      "file_url": credential.file_url}, policy)


def attached_media_issue(*, owner, business_type: str, media_ext: str,
                         context: RequestContext, title: str = "", file_name: str = "",
                         file_size: int | None = None, description: str = "", tags: str = "",
                         cate_ids: str = "", extend: dict | None = None,
                         upload_id: uuid.UUID | None = None) -> Issued:
    """CreateUploadAttachedMedia for `owner`, recorded as an AttachedMediaUpload (its id
    `upload_id` when given), marked like an image."""
    user_data = _user_data(extend)
    policy = _policy_checked(owner, "attached_media", context,
                             file_name=file_name or f"media.{media_ext}",
                             declared_size=file_size)
    chosen = _vod_settings(policy, cate_id=None)
    if chosen.pop("cate_id") is not None:
        cate_ids = str(policy.cate_id)  # the policy's category, as CreateUploadAttachedMedia's
    row = AttachedMediaUpload(id=upload_id or uuid.uuid4(), owner=owner,
                              business_type=business_type, media_ext=media_ext,
                              title=title, file_name=file_name, file_size=file_size,
                              description=description, tags=tags, cate_ids=cate_ids,
                              extend=extend, **chosen)

    def send(media: AttachedMediaUpload, attempt: Attempt) -> vod.AttachedMediaCredential:
        return vod.create_upload_attached_media(
            business_type=business_type, media_ext=media_ext, title=title, file_name=file_name,
            file_size=file_size, description=description, cate_ids=cate_ids,
            tags=_with_marker(tags, media),
            storage_location=media.storage_location, app_id=media.app_id,
            user_data=user_data)

    return _issue(row, "CreateUploadAttachedMedia", send, context,
                  lambda credential: {"media_url": credential.media_url,
                                      "file_url": credential.file_url}, policy)
