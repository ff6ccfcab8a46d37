"""Moving uploads along their lifecycle from what VOD reports (Get*Info calls)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Iterable, Iterator

from django.db import transaction

from .. import audit, vod
from ..audit import RequestContext
from ..models import (
    AuditOutcome,
    ImageUpload,
    MediaUpload,
    UploadStatus,
    VideoUpload,
)

BATCH = 20  # ids per Get*Infos call: VOD's limit

# VOD's media status -> our lifecycle status.
VIDEO_STATUSES = {
    "Uploading": UploadStatus.UPLOADING,
    "UploadFail": UploadStatus.FAILED,
    "UploadSucc": UploadStatus.UPLOADED,
    "Transcoding": UploadStatus.PROCESSING,
    "Checking": UploadStatus.PROCESSING,
    "TranscodeFail": UploadStatus.FAILED,
    "Blocked": UploadStatus.BLOCKED,
    "Normal": UploadStatus.READY,
}
ASSET_STATUSES = {
    "Uploading": UploadStatus.UPLOADING,
    "UploadFail": UploadStatus.FAILED,
    "Normal": UploadStatus.READY,
}

NOT_IN_VOD = "NotFoundInVod"


@dataclass(frozen=True)
class SyncResult:
    """What syncing one upload did, for the admin's per-row report and for vod_sync."""

    upload: MediaUpload
    ok: bool
    changed: bool = False
    old_status: str = ""
    new_status: str = ""
    vod_status: str = ""
    error: str = ""


def _chunks(items: list, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _apply(upload: MediaUpload, *, context: RequestContext, audit_unchanged: bool,
           vod_status: str = "", new_status: str = "", vod_id: str = "", size: int | None = None,
           error_code: str = "", request_id: str = "") -> SyncResult:
    """Write what VOD said onto one row (atomically with its audit event).

    The row is re-read under a lock so a concurrent refresh, callback or sync is not undone.
    """
    with transaction.atomic():
        upload = type(upload).objects.select_for_update().get(pk=upload.pk)
        return _apply_locked(upload, context=context, audit_unchanged=audit_unchanged,
                             vod_status=vod_status, new_status=new_status, vod_id=vod_id,
                             size=size, error_code=error_code, request_id=request_id)


def _apply_locked(upload: MediaUpload, *, context, audit_unchanged, vod_status, new_status,
                  vod_id, size, error_code, request_id) -> SyncResult:
    old_status = upload.status
    if upload.status == UploadStatus.CANCELLED:
        new_status = UploadStatus.CANCELLED  # our decision; VOD's word does not undo it
    new_status = new_status or upload.status
    changes = {}
    if vod_id and upload.vod_id != vod_id:
        changes["vod_id"] = vod_id
    if vod_status and upload.vod_status != vod_status:
        changes["vod_status"] = vod_status
    if new_status != upload.status:
        changes["status"] = new_status
    if size and not upload.file_size:
        changes["file_size"] = size
    if error_code and upload.error_code != error_code:
        changes["error_code"] = error_code
    changed = bool(changes)
    if changed:
        for name, value in changes.items():
            setattr(upload, name, value)
        upload.save(update_fields=[*changes, "updated_at"])
    if changed or audit_unchanged:
        audit.record("upload.synced", context=context, target=upload,
                     vod_request_id=request_id,
                     data={"from": old_status, "to": upload.status,
                           "vod_status": vod_status or None, "changed": changed,
                           **({"code": error_code} if error_code else {})})
    return SyncResult(upload=upload, ok=True, changed=changed, old_status=old_status,
                      new_status=upload.status, vod_status=vod_status)


def _failed(upload: MediaUpload, error: vod.VodError, context: RequestContext) -> SyncResult:
    audit.record("upload.synced", outcome=AuditOutcome.FAILURE, context=context, target=upload,
                 vod_request_id=error.request_id,
                 data={"operation": error.operation, "code": error.code})
    return SyncResult(upload=upload, ok=False, old_status=upload.status,
                      new_status=upload.status, error=f"{error.code}: {error.message}")


def _lookup(model: type[MediaUpload], ids: list[str]) -> vod.MediaInfoBatch:
    if model is VideoUpload:
        return vod.get_video_infos(video_ids=ids)
    if model is ImageUpload:
        return vod.get_image_infos(ids)
    return vod.get_attached_media_info(ids)


def _our_status(upload: MediaUpload, vod_status: str, expire_before: datetime | None) -> str:
    """Our lifecycle status for VOD's, `expired` when VOD still waits on a dead credential."""
    statuses = VIDEO_STATUSES if isinstance(upload, VideoUpload) else ASSET_STATUSES
    status = statuses.get(vod_status, "")
    if (status == UploadStatus.UPLOADING and expire_before is not None
            and upload.credential_expires_at and upload.credential_expires_at < expire_before):
        return UploadStatus.EXPIRED
    return status


def _sync_known(model, uploads: list[MediaUpload], context, audit_unchanged,
                expire_before: datetime | None = None) -> list[SyncResult]:
    results = []
    for chunk in _chunks(uploads, BATCH):
        try:
            batch = _lookup(model, [upload.vod_id for upload in chunk])
        except vod.VodError as error:
            results.extend(_failed(upload, error, context) for upload in chunk)
            continue
        for upload in chunk:
            info = batch.found.get(upload.vod_id)
            if info is None:
                results.append(_apply(upload, context=context, audit_unchanged=audit_unchanged,
                                      new_status=UploadStatus.FAILED, error_code=NOT_IN_VOD,
                                      request_id=batch.request_id))
                continue
            results.append(_apply(upload, context=context, audit_unchanged=audit_unchanged,
                                  vod_status=info.status,
                                  new_status=_our_status(upload, info.status, expire_before),
                                  size=info.size, request_id=batch.request_id))
    return results


def _sync_requesting_videos(uploads: list[VideoUpload], context, audit_unchanged,
                            end_unknown_before: datetime | None) -> list[SyncResult]:
    """Videos whose create answer was lost: found again by ReferenceId, no new credential."""
    results = []
    for chunk in _chunks(uploads, BATCH):
        try:
            batch = vod.get_video_infos(reference_ids=[upload.reference_id for upload in chunk])
        except vod.VodError as error:
            results.extend(_failed(upload, error, context) for upload in chunk)
            continue
        for upload in chunk:
            info = batch.found_by_reference.get(upload.reference_id)
            if info is not None:
                results.append(_apply(upload, context=context, audit_unchanged=audit_unchanged,
                                      vod_id=info.media_id, vod_status=info.status,
                                      new_status=VIDEO_STATUSES.get(info.status, ""),
                                      size=info.size, request_id=batch.request_id))
            else:
                results.append(_end_if_stale(upload, context, audit_unchanged,
                                             end_unknown_before, batch.request_id))
    return results


def _end_if_stale(upload, context, audit_unchanged, end_unknown_before, request_id=""):
    """A row VOD never saw: ended as failed once it is older than the caller's cut-off."""
    if end_unknown_before is not None and upload.created_at < end_unknown_before:
        return _apply(upload, context=context, audit_unchanged=audit_unchanged,
                      new_status=UploadStatus.FAILED, error_code=NOT_IN_VOD,
                      request_id=request_id)
    return SyncResult(upload=upload, ok=True, old_status=upload.status,
                      new_status=upload.status)


def uploads_sync(*, uploads: Iterable[MediaUpload], context: RequestContext,
                 audit_unchanged: bool = False,
                 end_unknown_before: datetime | None = None,
                 expire_before: datetime | None = None) -> list[SyncResult]:
    """Ask VOD for the status of each upload (batched by 20) and update the rows.

    Rows VOD does not know end as failed (`NotFoundInVod`), except cancelled ones. Videos
    still `requesting` are looked up by ReferenceId; images and attached media still
    `requesting` have no such handle and are ended once older than `end_unknown_before`.
    With `expire_before`, an upload VOD still waits for whose credential ran out before
    then becomes `expired` (a video can be revived with a refresh).
    """
    by_model: dict[type, list[MediaUpload]] = {}
    for upload in uploads:
        by_model.setdefault(type(upload), []).append(upload)
    results: list[SyncResult] = []
    for model, rows in by_model.items():
        known = [row for row in rows if row.vod_id]
        unknown = [row for row in rows if not row.vod_id]
        results += _sync_known(model, known, context, audit_unchanged, expire_before)
        if model is VideoUpload:
            results += _sync_requesting_videos(unknown, context, audit_unchanged,
                                               end_unknown_before)
        else:
            results += [_end_if_stale(row, context, audit_unchanged, end_unknown_before)
                        for row in unknown]
    return results


def upload_cancel(*, upload: MediaUpload, context: RequestContext) -> MediaUpload:
    """Delete the media in VOD and mark the row cancelled (the row itself is kept).

    Idempotent: cancelling a cancelled upload changes nothing and calls nobody. A media VOD
    no longer knows counts as deleted. Any other VOD failure leaves the row as it was.
    """
    if upload.status == UploadStatus.CANCELLED:
        return upload
    request_id = ""
    try:
        request_id = _delete_in_vod(upload)
    except vod.VodNotFound as error:
        request_id = error.request_id
    except vod.VodError as error:
        audit.record("upload.cancelled", outcome=AuditOutcome.FAILURE, context=context,
                     target=upload, vod_request_id=error.request_id,
                     data={"operation": error.operation, "code": error.code})
        raise
    with transaction.atomic():
        locked = type(upload).objects.select_for_update().get(pk=upload.pk)
        previous = locked.status
        locked.status = UploadStatus.CANCELLED
        locked.save(update_fields=["status", "updated_at"])
        audit.record("upload.cancelled", context=context, target=locked,
                     vod_request_id=request_id, data={"from": previous})
    return locked


def _delete_in_vod(upload: MediaUpload) -> str:
    """Delete one media in VOD; '' when there is nothing VOD could know."""
    if isinstance(upload, VideoUpload):
        if upload.vod_id:
            return vod.delete_videos([upload.vod_id])
        return vod.delete_videos(reference_ids=[upload.reference_id])
    if not upload.vod_id:
        return ""  # never issued: VOD holds nothing for it
    if isinstance(upload, ImageUpload):
        return vod.delete_images([upload.vod_id])
    return vod.delete_attached_media([upload.vod_id])
