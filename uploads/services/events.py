"""What VOD's event notifications do to uploads: forward-only, idempotent transitions to
the state VOD confirms (the event only names the media).

A `failed` video may move on to `processing` or `ready`, but only on VOD's own word
(GetVideoInfo says Transcoding or Normal): VOD transcodes a video again after its source is
uploaded anew (RefreshUploadVideo hands out a credential that overwrites it) or a new
transcoding job is submitted. A late or replayed success event cannot do it: the status is
read from VOD, not from the event (docs/reliability.md, "Events")."""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from .. import audit
from ..audit import RequestContext
from ..models import (
    MediaUpload,
    UploadStatus,
    VodEvent,
    VodEventStatus,
)
from . import policies
from .lifecycle import failure_details, media_lookup, our_status, vanished

# Progress order: an event never moves an upload backwards (VOD may deliver late or twice).
_PROGRESS = {
    UploadStatus.REQUESTING: 0,
    UploadStatus.UPLOADING: 1,
    UploadStatus.EXPIRED: 1,
    UploadStatus.UPLOADED: 2,
    UploadStatus.PROCESSING: 3,
    UploadStatus.READY: 4,
}
_ENDED = {UploadStatus.CANCELLED, UploadStatus.DELETED, UploadStatus.REJECTED}


@dataclass(frozen=True)
class ReportedFailure:
    """The ErrorCode and ErrorMessage a failure event reported (its body is unsigned: kept
    only when VOD itself confirms the failure, and only as text for people to read)."""

    code: str
    message: str


@dataclass(frozen=True)
class EventEffect:
    """What an event did: which upload, from which status to which (equal: nothing)."""

    upload: MediaUpload | None
    old_status: str = ""
    new_status: str = ""

    @property
    def changed(self) -> bool:
        """Whether the upload moved."""
        return self.old_status != self.new_status


def _may_move(current: str, target: str) -> bool:
    if current in _ENDED or current == target:
        return False
    if target in (UploadStatus.DELETED, UploadStatus.BLOCKED):
        return True
    if current == UploadStatus.BLOCKED:
        return target == UploadStatus.READY  # a later review passed it (CreateAudit Normal)
    if target == UploadStatus.FAILED:
        return current != UploadStatus.READY
    if current == UploadStatus.FAILED:
        # A late success (VOD retried transcoding) still counts.
        return target in (UploadStatus.PROCESSING, UploadStatus.READY)
    return _PROGRESS.get(target, -1) > _PROGRESS.get(current, -1)


def upload_event_apply(*, model: type[MediaUpload], vod_id: str, event_type: str,
                       context: RequestContext,
                       failure: ReportedFailure | None = None) -> EventEffect:
    """Move the upload VOD's event names to where VOD itself says it is, if that is forward,
    atomically with its audit event.

    The event's body is signed by nobody (VOD signs the URL and a timestamp), so it only
    says which media to look at: the status and size come from VOD (Get*Info through the
    gateway and its limiter), and a media VOD says it no longer holds ends `deleted` (or
    `failed` if its file never arrived). A `failure` the event reported is recorded on the
    row only when VOD confirms the upload failed. Returns an effect with `upload=None` when
    the id is not one of ours (VOD is not asked). Raises VodError when VOD cannot be asked;
    nothing changes.
    """
    if not model.objects.filter(vod_id=vod_id).exists():
        return EventEffect(upload=None)
    batch = media_lookup(model, [vod_id])
    info = batch.found.get(vod_id)
    with transaction.atomic():
        upload = model.objects.select_for_update().get(vod_id=vod_id)
        old_status = upload.status
        changes: dict = {}
        if info:
            target = our_status(upload, info.status, None,
                                template_group_id=info.template_group_id)
            if info.status and upload.vod_status != info.status:
                changes["vod_status"] = info.status
            if info.size and not upload.file_size:
                changes["file_size"] = info.size
            if info.size and upload.uploaded_size is None:
                changes["uploaded_size"] = info.size
        elif vod_id in batch.missing:
            target, vod_status, error_code = vanished(upload)
            changes.update({name: value for name, value in
                            (("vod_status", vod_status), ("error_code", error_code)) if value})
        else:
            target = ""
        if target and _may_move(upload.status, target):
            changes["status"] = target
            if target == UploadStatus.FAILED and info is not None:
                code, message = (failure.code, failure.message) if failure is not None \
                    else failure_details(info.status)
                if code or message:
                    changes["error_code"] = code[:128]
                    changes["error_message"] = message[:512]
        if "status" not in changes:
            changes.pop("error_code", None)
        for name, value in changes.items():
            setattr(upload, name, value)
        if changes:
            upload.save(update_fields=[*changes, "updated_at"])
        audit.record("vod.event.received", context=context, target=upload,
                     vod_request_id=batch.request_id,
                     data={"event_type": event_type, "from": old_status, "to": upload.status,
                           "changed": old_status != upload.status,
                           "vod_status": info.status if info else None,
                           **({"code": failure.code} if failure else {})})
    # The real size is known: a file larger than its limit is deleted (outside the
    # transaction: VOD is called).
    upload = policies.settle(upload, context=context)
    return EventEffect(upload=upload, old_status=old_status, new_status=upload.status)


def refused_events_prune(*, before, context: RequestContext, batch: int = 5000) -> int:
    """Delete refused deliveries received before `before`, in batches; audited once with
    the count. Returns how many went."""
    deleted = 0
    while True:
        ids = list(VodEvent.objects.filter(status=VodEventStatus.REJECTED,
                                           received_at__lt=before)
                   .values_list("pk", flat=True)[:batch])
        if not ids:
            break
        deleted += VodEvent.objects.filter(pk__in=ids).delete()[0]
    audit.record("vod.event.pruned", context=context,
                 data={"deleted": deleted, "received_before": before.isoformat()})
    return deleted
