"""Moving uploads VOD knows along their lifecycle from what VOD reports (Get*Info calls),
and cancelling them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Iterator

from django.conf import settings
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
# VOD has no status for a media it deleted (its id comes back among the non-existent ones):
# what the row's VOD status says once we know VOD deleted it.
VOD_DELETED = "Deleted"
# VOD statuses that mean the media's file had reached VOD: a media that later disappears
# from VOD was deleted there, not lost on the way.
_FILE_ARRIVED = {"UploadSucc", "Transcoding", "TranscodeFail", "Checking", "Blocked", "Normal"}
# What a failed VOD status tells a user when no event said more (VOD's ErrorCode and
# ErrorMessage come only in the failure events; VOD's console shows the job's error).
_FAILURE_TEXT = {
    "TranscodeFail": "VOD could not transcode the file; it may not be a media file VOD reads.",
    "UploadFail": "VOD reports that the upload failed.",
}
# Ended by a decision of ours or of VOD's owner: VOD's later word does not undo them.
_ENDED_FOR_GOOD = {UploadStatus.CANCELLED, UploadStatus.DELETED, UploadStatus.REJECTED}


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
    if upload.status in _ENDED_FOR_GOOD:
        new_status = upload.status  # a decision made; VOD's word does not undo it
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
    if size and upload.uploaded_size is None:
        changes["uploaded_size"] = size
    error_message = ""
    if new_status == UploadStatus.FAILED and not error_code and not upload.error_code:
        error_code, error_message = failure_details(vod_status)
    if error_code and upload.error_code != error_code:
        changes["error_code"] = error_code
        if error_message:
            changes["error_message"] = error_message
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


def never_transcoded(upload: MediaUpload, template_group_id: str = "") -> bool:
    """Whether VOD processes this video with a template group that does not transcode.

    VOD's own report of the group (GetVideoInfo's TemplateGroupId) wins over the one the
    row asked for: an upload that named none gets the account's default group."""
    if not isinstance(upload, VideoUpload):
        return False
    group = template_group_id or upload.template_group_id
    return bool(group) and group in settings.VOD_NO_TRANSCODE_TEMPLATE_GROUP_IDS


def our_status(upload: MediaUpload, vod_status: str, expire_before: datetime | None, *,
               template_group_id: str = "") -> str:
    """Our lifecycle status for VOD's: `ready` for an uploaded video no template will
    transcode (VOD sends no TranscodeComplete for it), `expired` when VOD still waits on a
    dead credential."""
    statuses = VIDEO_STATUSES if isinstance(upload, VideoUpload) else ASSET_STATUSES
    status = statuses.get(vod_status, "")
    if status == UploadStatus.UPLOADED and never_transcoded(upload, template_group_id):
        return UploadStatus.READY
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
                    gone_from_vod(upload, context=context, audit_unchanged=audit_unchanged,
                                  request_id=batch.request_id)
                    if upload.vod_id in batch.missing else unchanged(upload))
                continue
            results.append(apply_vod_state(
                upload, context=context, audit_unchanged=audit_unchanged,
                vod_status=info.status,
                new_status=our_status(upload, info.status, expire_before,
                                      template_group_id=info.template_group_id),
                size=info.size, request_id=batch.request_id))
    return results


def failure_details(vod_status: str) -> tuple[str, str]:
    """(error code, message) for a failed VOD status when nothing more specific is known:
    VOD's status itself and what it means ('', '' for other statuses)."""
    text = _FAILURE_TEXT.get(vod_status)
    return (vod_status, text) if text else ("", "")


def vanished(upload: MediaUpload) -> tuple[str, str, str]:
    """(status, VOD status, error code) for an upload whose media VOD says it does not hold:
    `deleted` when its file had reached VOD (someone deleted it there), else `failed`
    (`NotFoundInVod`)."""
    if upload.vod_status in _FILE_ARRIVED or upload.status == UploadStatus.DELETED:
        return UploadStatus.DELETED, VOD_DELETED, ""
    return UploadStatus.FAILED, "", NOT_IN_VOD


def gone_from_vod(upload: MediaUpload, *, context: RequestContext, audit_unchanged: bool,
                  request_id: str) -> SyncResult:
    """Apply VOD's answer that it does not hold this upload's media (`vanished`)."""
    status, vod_status, error_code = vanished(upload)
    return apply_vod_state(upload, context=context, audit_unchanged=audit_unchanged,
                           vod_status=vod_status, new_status=status, error_code=error_code,
                           request_id=request_id)


def upload_remove(*, upload: MediaUpload, context: RequestContext) -> MediaUpload:
    """Delete the media in VOD and end the row (the row itself is kept): `deleted` when its
    file had reached VOD, `cancelled` while it was still to come.

    Idempotent: removing an upload already cancelled or deleted changes nothing and calls
    nobody. A media VOD no longer knows counts as deleted. Any other VOD failure leaves the
    row as it was.
    """
    if upload.status in _ENDED_FOR_GOOD:
        return upload
    deleting = upload.vod_status in _FILE_ARRIVED
    action = "upload.deleted" if deleting else "upload.cancelled"
    request_id = ""
    try:
        request_id = _delete_in_vod(upload)
    except vod.VodNotFound as error:
        request_id = error.request_id
    except vod.VodError as error:
        audit.record(action, outcome=AuditOutcome.FAILURE, context=context,
                     target=upload, vod_request_id=error.request_id,
                     data={"operation": error.operation, "code": error.code})
        raise
    with transaction.atomic():
        locked = type(upload).objects.select_for_update().get(pk=upload.pk)
        if locked.status in _ENDED_FOR_GOOD:
            return locked  # a concurrent removal (or a DeleteMediaComplete) ended it first
        previous = locked.status
        locked.status = UploadStatus.DELETED if deleting else UploadStatus.CANCELLED
        fields = ["status", "updated_at"]
        if deleting:
            locked.vod_status = VOD_DELETED
            fields.append("vod_status")
        locked.save(update_fields=fields)
        audit.record(action, context=context, target=locked, vod_request_id=request_id,
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
