"""Issue and refresh upload credentials.

Every issuance follows one pattern: commit a `requesting` row, call VOD outside any
transaction, then complete the row and append its audit event in one transaction. A crash
between the steps leaves a `requesting` row that `vod_sync` resolves; a failure is recorded
on the row and in the audit trail before the caller sees it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F

from .. import audit, statements, vod
from ..audit import RequestContext
from ..models import (
    AttachedMediaUpload,
    AuditOutcome,
    ImageUpload,
    MediaUpload,
    UploadStatus,
    VideoUpload,
)
from ..validation import build_user_data

# Failures after which VOD may still have created the media: the row stays `requesting`
# (to be resolved by vod_sync) instead of being marked failed.
_INDETERMINATE = (vod.VodTimeout, vod.VodBadResponse)

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


def _user_data(extend: dict | None) -> str:
    return build_user_data(callback_url=settings.VOD_CALLBACK_URL, extend=extend)


def _common_defaults() -> dict:
    return {"app_id": settings.VOD_APP_ID, "storage_location": settings.VOD_STORAGE_LOCATION}


def _is_indeterminate(error: vod.VodError) -> bool:
    if isinstance(error, _INDETERMINATE):
        return True
    # A 5xx or a dropped connection after the request was sent: VOD may have acted.
    return isinstance(error, vod.VodUnavailable) and not error.connect_failed


def _record_failure(row: MediaUpload, error: vod.VodError, *, action: str,
                    context: RequestContext, end_row: bool) -> None:
    """Store VOD's code on the row (ending it when nothing was created) and audit it."""
    with transaction.atomic():
        row.error_code = error.code[:128]
        row.error_message = error.message[:512]
        row.last_vod_request_id = error.request_id[:64]
        fields = ["error_code", "error_message", "last_vod_request_id", "updated_at"]
        if end_row:
            row.status = UploadStatus.FAILED
            fields.append("status")
        row.save(update_fields=fields)
        audit.record(action, outcome=AuditOutcome.FAILURE, context=context, target=row,
                     vod_request_id=error.request_id,
                     data={"operation": error.operation, "code": error.code,
                           "http_status": error.http_status, "message": error.message[:512]})


# What _complete writes onto a row (besides the kind's own fields).
_COMPLETED_FIELDS = ("vod_id", "status", "upload_endpoint", "upload_bucket", "upload_object_key",
                     "credential_expires_at", "credentials_issued", "last_vod_request_id",
                     "error_code", "error_message")


def _complete(row: MediaUpload, credential: vod.IssuedUpload, *, action: str,
              context: RequestContext, extra_fields: dict) -> None:
    """Write what VOD answered onto the row and audit the issuance, atomically (in two
    round trips on PostgreSQL: `statements.atomic`)."""
    with statements.atomic():
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
        statements.update(row, [*_COMPLETED_FIELDS, *extra_fields, "updated_at"])
        audit.record(action, context=context, target=row, vod_request_id=credential.request_id,
                     data={"expires_at": credential.expires_at.isoformat(),
                           "bucket": credential.address.bucket,
                           "object_key": credential.address.object_key,
                           "reference_id": row.reference_id})


def _issue(row: MediaUpload, send: Callable[[MediaUpload], vod.IssuedUpload],
           context: RequestContext, extra_fields: Callable[[vod.IssuedUpload], dict]) -> Issued:
    statements.insert(row)  # committed: a trace exists before VOD is called
    return _send_and_complete(row, send, context, extra_fields)


def _send_and_complete(row: MediaUpload, send: Callable[[MediaUpload], vod.IssuedUpload],
                       context: RequestContext,
                       extra_fields: Callable[[vod.IssuedUpload], dict]) -> Issued:
    kind = row.kind
    try:
        credential = send(row)
    except vod.VodError as error:
        _record_failure(row, error, action=f"{kind}.credential.failed", context=context,
                        end_row=not _is_indeterminate(error))
        raise
    _complete(row, credential, action=f"{kind}.credential.issued", context=context,
              extra_fields=extra_fields(credential))
    return Issued(upload=row, credential=credential)


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
    row = existing or VideoUpload(
        id=upload_id or uuid.uuid4(), owner=owner, title=title, file_name=file_name,
        file_size=file_size, description=description, tags=tags, cate_id=cate_id,
        cover_url=cover_url, extend=extend, template_group_id=settings.VOD_TEMPLATE_GROUP_ID,
        workflow_id=settings.VOD_WORKFLOW_ID, **_common_defaults())

    def send(video: VideoUpload) -> vod.VideoCredential:
        try:
            return vod.create_upload_video(
                title=title, file_name=file_name, reference_id=video.reference_id,
                file_size=file_size, description=description, cover_url=cover_url,
                cate_id=cate_id, tags=tags, template_group_id=video.template_group_id,
                workflow_id=video.workflow_id, storage_location=video.storage_location,
                app_id=video.app_id, user_data=user_data)
        except vod.VodDuplicateReference:
            # An earlier attempt created the video but its answer was lost: find it again.
            return vod.refresh_upload_video(reference_id=video.reference_id)

    if existing is None:
        return _issue(row, send, context, lambda credential: {})
    if existing.status != UploadStatus.REQUESTING:
        # vod_sync found the video meanwhile: the retry gets a fresh credential for it.
        return video_refresh(video=existing, context=context)
    # Same ReferenceId: VOD refuses a second video, and `send` finds the first one again.
    return _send_and_complete(existing, send, context, lambda credential: {})


def video_refresh(*, video: VideoUpload, context: RequestContext,
                  audit_action: str = "video.credential.refreshed") -> Issued:
    """RefreshUploadVideo: a new credential for the same upload address.

    `audit_action` names the event: `admin.refresh` when staff asked from the admin.
    """
    if not video.vod_id or video.status not in REFRESHABLE_STATUSES:
        raise InvalidState(f"A video that is {video.get_status_display().lower()} cannot be "
                           "given a new upload credential.", status=video.status)
    try:
        credential = vod.refresh_upload_video(video_id=video.vod_id)
    except vod.VodError as error:
        _record_failure(video, error, action="video.credential.failed", context=context,
                        end_row=False)
        raise
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
                           "credentials_issued": video.credentials_issued})
    return Issued(upload=video, credential=credential)


def image_issue(*, owner, image_type: str, image_ext: str, context: RequestContext,
                title: str = "", original_file_name: str = "", description: str = "",
                tags: str = "", cate_id: int | None = None,
                extend: dict | None = None) -> Issued:
    """CreateUploadImage for `owner`, recorded as an ImageUpload."""
    user_data = _user_data(extend)
    row = ImageUpload(owner=owner, image_type=image_type, image_ext=image_ext, title=title,
                      file_name=original_file_name, description=description, tags=tags,
                      cate_id=cate_id, extend=extend, **_common_defaults())

    def send(image: ImageUpload) -> vod.ImageCredential:
        return vod.create_upload_image(
            image_type=image_type, image_ext=image_ext, title=title,
            original_file_name=original_file_name, description=description, cate_id=cate_id,
            tags=tags, storage_location=image.storage_location, app_id=image.app_id,
            user_data=user_data)

    return _issue(row, send, context,
                  lambda credential: {"image_url": credential.image_url,
                                      "file_url": credential.file_url})


def attached_media_issue(*, owner, business_type: str, media_ext: str,
                         context: RequestContext, title: str = "", file_name: str = "",
                         file_size: int | None = None, description: str = "", tags: str = "",
                         cate_ids: str = "", extend: dict | None = None) -> Issued:
    """CreateUploadAttachedMedia for `owner`, recorded as an AttachedMediaUpload."""
    user_data = _user_data(extend)
    row = AttachedMediaUpload(owner=owner, business_type=business_type, media_ext=media_ext,
                              title=title, file_name=file_name, file_size=file_size,
                              description=description, tags=tags, cate_ids=cate_ids,
                              extend=extend, **_common_defaults())

    def send(media: AttachedMediaUpload) -> vod.AttachedMediaCredential:
        return vod.create_upload_attached_media(
            business_type=business_type, media_ext=media_ext, title=title, file_name=file_name,
            file_size=file_size, description=description, cate_ids=cate_ids, tags=tags,
            storage_location=media.storage_location, app_id=media.app_id,
            user_data=user_data)

    return _issue(row, send, context,
                  lambda credential: {"media_url": credential.media_url,
                                      "file_url": credential.file_url})
