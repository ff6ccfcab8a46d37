"""Reconciliation: every media VOD created ends on exactly one row, with VOD's word for it.

A row stays `requesting` while VOD may hold a media for it that we never heard of (the
create's answer was lost: a timeout, a dropped connection, a killed worker, a database that
went away after VOD answered). Such a media's credential never reached anyone, so once found
it is deleted in VOD ("discarded") and its id recorded on the row; a retry with the same
Idempotency-Key may instead be handed a video (RefreshUploadVideo gives a new credential).
How it is found: videos by ReferenceId (our row's id), images and attached media by the
marker tag they carry (`MediaUpload.marker_tag`) with SearchMedia, whose index trails
creation by up to VOD_SEARCH_LAG_SECONDS; before that, "not found" proves nothing.
A row ends as "not in VOD" only when VOD was asked and said so.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Iterable, Iterator

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .. import audit, vod
from ..audit import RequestContext
from ..models import (
    AttachedMediaUpload,
    IdempotencyRecord,
    ImageUpload,
    MediaUpload,
    UploadStatus,
    VideoUpload,
)
from . import policies
from .lifecycle import (
    BATCH,
    NOT_IN_VOD,
    SyncResult,
    apply_vod_state,
    chunks,
    media_delete,
    sync_failed,
    sync_known,
    unchanged,
)

NEVER_DELIVERED = "CredentialNeverDelivered"
# SearchMedia's SearchType for the kinds found by their marker tag.
_SEARCH_TYPES = {ImageUpload: "image", AttachedMediaUpload: "attached"}


def uploads_sync(*, uploads: Iterable[MediaUpload], context: RequestContext,
                 audit_unchanged: bool = False,
                 end_unknown_before: datetime | None = None,
                 expire_before: datetime | None = None) -> list[SyncResult]:
    """Ask VOD for the status of each upload (batched by 20) and update the rows.

    Rows VOD says it does not hold end as failed (`NotFoundInVod`), except cancelled ones.
    Rows with no VOD id (`requesting`, or `failed` before VOD answered) created before
    `end_unknown_before` (None: none) are looked for in VOD (videos by ReferenceId, images
    and attached media by their marker tag): a media found is discarded (its credential
    never reached anyone); a `requesting` row VOD says it holds nothing for is ended. With
    `expire_before`, an upload VOD still waits for whose credential ran out before then
    becomes `expired` (a video can be revived with a refresh).
    """
    by_model: dict[type, list[MediaUpload]] = {}
    for upload in uploads:
        by_model.setdefault(type(upload), []).append(upload)
    results: list[SyncResult] = []
    for model, rows in by_model.items():
        known = sync_known(model, [row for row in rows if row.vod_id], context,
                           audit_unchanged, expire_before)
        results += [_settled(result, context) for result in known]
        # A younger row may still be in the hands of the request that made it: VOD's
        # answer may yet arrive, so neither a find nor a miss may settle it now.
        unknown = [row for row in rows if not row.vod_id]
        results += [unchanged(row) for row in unknown if not _settleable(row, end_unknown_before)]
        unknown = [row for row in unknown if _settleable(row, end_unknown_before)]
        find = _find_videos if model is VideoUpload else _find_marked
        for chunk in chunks(unknown, BATCH):
            results += find(model, chunk, context=context, audit_unchanged=audit_unchanged)
    return results


def _settleable(row: MediaUpload, before: datetime | None) -> bool:
    return before is not None and row.created_at < before


def _find_videos(model, uploads: list[VideoUpload], *, context,
                 audit_unchanged) -> list[SyncResult]:
    try:
        batch = vod.get_video_infos(reference_ids=[upload.reference_id for upload in uploads])
    except vod.VodError as error:
        return [sync_failed(upload, error, context) for upload in uploads]
    results = []
    for upload in uploads:
        info = batch.found_by_reference.get(upload.reference_id)
        if info is not None:
            results.append(_discard_found(upload, info.media_id, context, batch.request_id))
        elif upload.reference_id in batch.missing_references and _open(upload):
            results.append(_end_not_found(upload, context, audit_unchanged, batch.request_id))
        else:
            results.append(unchanged(upload))
    return results


def _find_marked(model, uploads: list[MediaUpload], *, context,
                 audit_unchanged) -> list[SyncResult]:
    try:
        batch = vod.search_media_by_tags(search_type=_SEARCH_TYPES[model],
                                         tags=[upload.marker_tag for upload in uploads])
    except vod.VodError as error:
        return [sync_failed(upload, error, context) for upload in uploads]
    by_marker = {tag: info for info in batch.found.values() for tag in info.tags}
    # The index trails creation: only rows older than its lag are proven absent by a miss.
    searchable_before = timezone.now() - timedelta(seconds=settings.VOD_SEARCH_LAG_SECONDS)
    results = []
    for upload in uploads:
        info = by_marker.get(upload.marker_tag)
        if info is not None:
            results.append(_discard_found(upload, info.media_id, context, batch.request_id))
        elif upload.created_at < searchable_before and _open(upload):
            results.append(_end_not_found(upload, context, audit_unchanged, batch.request_id))
        else:
            results.append(unchanged(upload))
    return results


def _settled(result: SyncResult, context: RequestContext) -> SyncResult:
    """A file whose real size VOD just reported may break its limit: deleted if so."""
    if not result.ok:
        return result
    upload = policies.settle(result.upload, context=context)
    if upload.status == result.new_status:
        return result
    return replace(result, upload=upload, new_status=upload.status, changed=True)


def _open(upload: MediaUpload) -> bool:
    """Whether a row VOD holds nothing for may be ended now (a failed one is ended already)."""
    return upload.status == UploadStatus.REQUESTING


def _end_not_found(upload, context, audit_unchanged, request_id):
    """VOD said it holds nothing for the row: it ends, with that answer's request id."""
    return apply_vod_state(upload, context=context, audit_unchanged=audit_unchanged,
                           new_status=UploadStatus.FAILED, error_code=NOT_IN_VOD,
                           request_id=request_id)


def _discard_found(upload: MediaUpload, media_id: str, context: RequestContext,
                   lookup_request_id: str) -> SyncResult:
    with _retry_excluded(upload) as free:
        if not free:
            return unchanged(upload)  # a retry with its Idempotency-Key is working on it
        try:
            return upload_discard(upload=upload, media_id=media_id, context=context,
                                  lookup_request_id=lookup_request_id,
                                  from_statuses=(upload.status,))
        except vod.VodError as error:
            return sync_failed(upload, error, context)


def upload_discard(*, upload: MediaUpload, media_id: str, context: RequestContext,
                   lookup_request_id: str = "",
                   from_statuses: tuple[str, ...] = (UploadStatus.REQUESTING,)) -> SyncResult:
    """Delete in VOD a media whose credential never reached anyone, and end its row as
    failed (`CredentialNeverDelivered`) with the media's id on it, audited
    (`upload.discarded`). Raises VodError when VOD could not delete it (nothing changes).
    """
    try:
        delete_request_id = media_delete(type(upload), media_id)
    except vod.VodNotFound as error:
        delete_request_id = error.request_id  # gone already
    with transaction.atomic():
        locked = type(upload).objects.select_for_update().get(pk=upload.pk)
        old_status = locked.status
        if old_status not in from_statuses:
            return unchanged(locked)  # settled meanwhile by someone else
        locked.vod_id = media_id
        locked.status = UploadStatus.FAILED
        locked.vod_status = ""
        locked.error_code = NEVER_DELIVERED
        locked.error_message = "VOD created this media but its credential never reached " \
                               "the client; it was deleted in VOD."
        locked.save(update_fields=["vod_id", "status", "vod_status", "error_code",
                                   "error_message", "updated_at"])
        audit.record("upload.discarded", context=context, target=locked,
                     vod_request_id=delete_request_id,
                     data={"from": old_status, "to": locked.status, "code": NEVER_DELIVERED,
                           "lookup_request_id": lookup_request_id})
    return SyncResult(upload=locked, ok=True, changed=True, old_status=old_status,
                      new_status=locked.status)


@contextmanager
def _retry_excluded(upload: MediaUpload) -> Iterator[bool]:
    """Hold off retries with the row's Idempotency-Key while vod_sync settles the row.

    Yields False when a retry holds the key right now (the row is left for the next run).
    """
    record = (IdempotencyRecord.objects.filter(upload_id=upload.pk)
              .exclude(state=IdempotencyRecord.COMPLETED).first())
    if record is None:
        yield True
        return
    taken = IdempotencyRecord.objects.filter(IdempotencyRecord.abandoned(), pk=record.pk
                                             ).update(state=IdempotencyRecord.RUNNING,
                                                      claimed_at=timezone.now())
    if not taken:
        yield False
        return
    try:
        yield True
    finally:
        IdempotencyRecord.objects.filter(pk=record.pk).update(
            state=IdempotencyRecord.INTERRUPTED)


def upload_id_for_retry(*, model: type[MediaUpload], upload_id: uuid.UUID,
                        context: RequestContext) -> uuid.UUID:
    """The row a retry with an interrupted Idempotency-Key works on.

    The same row when VOD can give its media a credential again (a video: found by
    ReferenceId, or refreshed); else a new one. An image or attached media that was created
    but whose credential was never delivered is discarded first (raises VodError if VOD
    cannot delete it now); one that may exist but is not found yet is left to vod_sync.
    """
    row = model.objects.filter(pk=upload_id).first()
    if row is None:
        return upload_id  # the earlier attempt never wrote its row
    resumable = (UploadStatus.REQUESTING, UploadStatus.UPLOADING, UploadStatus.EXPIRED)
    if model is VideoUpload and row.status in resumable:
        return upload_id
    if row.status == UploadStatus.UPLOADING and row.vod_id:
        upload_discard(upload=row, media_id=row.vod_id, context=context,
                       from_statuses=(UploadStatus.UPLOADING,))
    return uuid.uuid4()
