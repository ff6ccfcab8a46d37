"""Moving uploads VOD knows along their lifecycle from what VOD reports (Get*Info calls),
and cancelling them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Iterator

from django.db import transaction

from .. import audit, vod
from ..audit import RequestContext
from .access import on_behalf
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


def chunks(items: list, size: int) -> Iterator[list]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def apply_vod_state(upload: MediaUpload, *, context: RequestContext, audit_unchanged: bool,
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


def unchanged(upload: MediaUpload) -> SyncResult:
    """A row left as it is (VOD said nothing that settles it yet)."""
    return SyncResult(upload=upload, ok=True, old_status=upload.status, new_status=upload.status)


def sync_failed(upload: MediaUpload, error: vod.VodError, context: RequestContext) -> SyncResult:
    audit.record("upload.synced", outcome=AuditOutcome.FAILURE, context=context, target=upload,
                 vod_request_id=error.request_id,
                 data={"operation": error.operation, "code": error.code})
    return SyncResult(upload=upload, ok=False, old_status=upload.status,
                      new_status=upload.status, error=f"{error.code}: {error.message}")


def media_lookup(model: type[MediaUpload], ids: list[str]) -> vod.MediaInfoBatch:
    if model is VideoUpload:
        return vod.get_video_infos(video_ids=ids)
    if model is ImageUpload:
        return vod.get_image_infos(ids)
    return vod.get_attached_media_info(ids)


def our_status(upload: MediaUpload, vod_status: str, expire_before: datetime | None) -> str:
    """Our lifecycle status for VOD's, `expired` when VOD still waits on a dead credential."""
    statuses = VIDEO_STATUSES if isinstance(upload, VideoUpload) else ASSET_STATUSES
    status = statuses.get(vod_status, "")
    if (status == UploadStatus.UPLOADING and expire_before is not None
            and upload.credential_expires_at and upload.credential_expires_at < expire_before):
        return UploadStatus.EXPIRED
    return status


def sync_known(model, uploads: list[MediaUpload], context, audit_unchanged,
                expire_before: datetime | None = None) -> list[SyncResult]:
    results = []
    for chunk in chunks(uploads, BATCH):
        try:
            batch = media_lookup(model, [upload.vod_id for upload in chunk])
        except vod.VodError as error:
            results.extend(sync_failed(upload, error, context) for upload in chunk)
            continue
        for upload in chunk:
            info = batch.found.get(upload.vod_id)
            if info is None:
                # A verdict only on VOD's word: the id is in its list of ids it does not hold.
                results.append(
                    apply_vod_state(upload, context=context, audit_unchanged=audit_unchanged,
                                    new_status=UploadStatus.FAILED, error_code=NOT_IN_VOD,
                                    request_id=batch.request_id)
                    if upload.vod_id in batch.missing else unchanged(upload))
                continue
            results.append(apply_vod_state(
                upload, context=context, audit_unchanged=audit_unchanged,
                vod_status=info.status, new_status=our_status(upload, info.status, expire_before),
                size=info.size, request_id=batch.request_id))
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
                     vod_request_id=request_id,
                     data={"from": previous, **on_behalf(locked, context)})
    return locked


def _delete_in_vod(upload: MediaUpload) -> str:
    """Delete one media in VOD; '' when there is nothing VOD could know."""
    if isinstance(upload, VideoUpload) and not upload.vod_id:
        return vod.delete_videos(reference_ids=[upload.reference_id])
    if not upload.vod_id:
        return ""  # never issued: VOD holds nothing for it
    return media_delete(type(upload), upload.vod_id)


def media_delete(model: type[MediaUpload], media_id: str) -> str:
    """Delete one media of `model`'s kind in VOD; returns VOD's RequestId."""
    if model is VideoUpload:
        return vod.delete_videos([media_id])
    if model is ImageUpload:
        return vod.delete_images([media_id])
    return vod.delete_attached_media([media_id])
