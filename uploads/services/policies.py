"""Upload policies: what each user may upload, decided by the server (issue 18).

A request is checked against its owner's policy before anything is sent (kind, extension,
declared size); the upload row is then written in one transaction with the quota check,
under a lock on the owner's user row, so concurrent requests cannot overshoot a quota
(`reserve`). Once VOD reports the real size, the upload is settled (`settle`): a file larger
than declared (beyond a small tolerance) or than the policy allows is deleted in VOD and the
row ends `rejected`. Uploads that end without their bytes (failed, cancelled, expired,
rejected) stop counting: their reservation is released.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import BigIntegerField, Count, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import audit, vod
from ..audit import RequestContext
from ..models import (
    IN_FLIGHT_STATUSES,
    UPLOAD_MODELS,
    AuditOutcome,
    MediaUpload,
    UploadPolicy,
    UploadStatus,
)
from ..validation import extension_of
from . import policy_memo
from .lifecycle import media_delete

# Statuses whose reservation is released: the bytes never came, or were thrown away.
RELEASED = (UploadStatus.FAILED, UploadStatus.CANCELLED, UploadStatus.EXPIRED,
            UploadStatus.REJECTED)
# How much larger than declared an uploaded file may be before it is rejected: clients
# declare what the file system says; nothing legitimate grows more than this.
SIZE_TOLERANCE = 0.01


class PolicyRefused(Exception):
    """The owner's policy refuses the request: `code` (file_too_large, quota_exceeded,
    kind_not_allowed, extension_not_allowed, file_size_required), the HTTP status, the
    field it concerns and the figures a client needs (limit, resets_at)."""

    def __init__(self, code: str, detail: str, *, status: int, field_name: str = "",
                 limit: int | None = None, resets_at: datetime | None = None):
        super().__init__(detail)
        self.code, self.detail, self.status, self.field_name = code, detail, status, field_name
        self.limit, self.resets_at = limit, resets_at


def policy_for(user) -> UploadPolicy | None:
    """The policy governing `user`: their groups' first by priority, else the default (one
    query, remembered per process until a policy changes: it is on every issuance's path)."""
    return policy_memo.remembered(user.pk, lambda: (
        UploadPolicy.objects.filter(Q(groups__user=user) | Q(is_default=True))
        .annotate(of_a_group=Count("groups", filter=Q(groups__user=user)))
        .order_by("-of_a_group", "priority", "name").first()))


def _max_bytes(policy: UploadPolicy, kind: str) -> int | None:
    return getattr(policy, f"max_{kind}_bytes")


def check_request(user, kind: str, *, file_name: str = "", declared_size: int | None = None
                  ) -> UploadPolicy | None:
    """The owner's policy if it allows this request (before anything is written or sent);
    PolicyRefused otherwise. None: no policy governs the user."""
    policy = policy_for(user)
    if policy is None:
        return None
    if not getattr(policy, f"allow_{kind}"):
        raise PolicyRefused("kind_not_allowed", f"Your uploads may not include {kind} files.",
                            status=403)
    allowed = {ext.strip().lower().lstrip(".") for ext in policy.allowed_extensions.split(",")
               if ext.strip()}
    extension = extension_of(file_name) if file_name else ""
    if allowed and extension and extension not in allowed:
        raise PolicyRefused("extension_not_allowed",
                            f"Files ending .{extension} are not allowed; allowed: "
                            f"{', '.join(sorted(allowed))}.", status=400, field_name="file_name")
    limit = _max_bytes(policy, kind)
    if limit is not None and kind != "image":  # VOD takes no declared size for an image
        if declared_size is None:
            raise PolicyRefused("file_size_required",
                                f"Declare file_size: files are limited to {limit} bytes.",
                                status=400, field_name="file_size", limit=limit)
        if declared_size > limit:
            raise PolicyRefused("file_too_large",
                                f"The file is {declared_size} bytes; the limit is {limit}.",
                                status=400, field_name="file_size", limit=limit)
    return policy


@dataclass(frozen=True)
class Usage:
    """A user's uploads counted against their quotas, now."""

    day_count: int = 0
    day_bytes: int = 0
    month_count: int = 0
    month_bytes: int = 0
    in_flight: int = 0
    day_resets_at: datetime | None = None
    month_resets_at: datetime | None = None
    by_kind: dict = field(default_factory=dict)


def _windows(now: datetime) -> tuple[datetime, datetime, datetime, datetime]:
    local = timezone.localtime(now)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return day, day + timedelta(days=1), month, next_month


def usage(user) -> Usage:
    """Count `user`'s uploads in today's and this month's windows (the server's time zone),
    and those in flight: one query per kind."""
    day, next_day, month, next_month = _windows(timezone.now())
    size = Coalesce("uploaded_size", "file_size", Value(0), output_field=BigIntegerField())
    today = Q(created_at__gte=day)
    totals = {"day_count": 0, "day_bytes": 0, "month_count": 0, "month_bytes": 0,
              "in_flight": 0}
    for model in UPLOAD_MODELS.values():
        row = (model.objects.filter(owner=user)
               .filter(Q(created_at__gte=month) | Q(status__in=IN_FLIGHT_STATUSES))
               .exclude(status__in=RELEASED)
               .aggregate(month_count=Count("id", filter=Q(created_at__gte=month)),
                          month_bytes=Sum(size, filter=Q(created_at__gte=month)),
                          day_count=Count("id", filter=today),
                          day_bytes=Sum(size, filter=today),
                          in_flight=Count("id", filter=Q(status__in=IN_FLIGHT_STATUSES))))
        for name in totals:
            totals[name] += row[name] or 0
    return Usage(**totals, day_resets_at=next_day, month_resets_at=next_month)


def _quota_check(policy: UploadPolicy, current: Usage, size: int) -> None:
    checks = (
        ("max_in_flight", current.in_flight + 1, None, "uploads in flight at once"),
        ("daily_count", current.day_count + 1, current.day_resets_at, "uploads a day"),
        ("daily_bytes", current.day_bytes + size, current.day_resets_at, "bytes a day"),
        ("monthly_count", current.month_count + 1, current.month_resets_at, "uploads a month"),
        ("monthly_bytes", current.month_bytes + size, current.month_resets_at,
         "bytes a month"),
    )
    for name, wanted, resets_at, what in checks:
        limit = getattr(policy, name)
        if limit is not None and wanted > limit:
            when = f"; it resets at {resets_at.isoformat()}" if resets_at else ""
            raise PolicyRefused("quota_exceeded", f"Your quota of {limit} {what} is used up"
                                                  f"{when}.", status=403, limit=limit,
                                resets_at=resets_at)


def reserve(row: MediaUpload, policy: UploadPolicy | None) -> None:
    """Write the new row, with its declared size reserved against the owner's quotas, in
    one transaction under a lock on the owner: concurrent requests are counted one after
    another. PolicyRefused (nothing written) when it does not fit."""
    if policy is None:
        row.save(force_insert=True)
        return
    row.policy = policy
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=row.owner_id).first()
        _quota_check(policy, usage(row.owner), row.file_size or 0)
        row.save(force_insert=True)


def vod_settings(policy: UploadPolicy | None, defaults: dict) -> dict:
    """`defaults` (the deployment's VOD_* settings) with what the policy decides instead."""
    if policy is None:
        return dict(defaults)
    chosen = {name: getattr(policy, name) for name in defaults
              if getattr(policy, name, None) not in (None, "")}
    return {**defaults, **chosen}


def oversize(upload: MediaUpload, real_size: int) -> int | None:
    """The limit `real_size` breaks (the declared size with its tolerance, or the policy's
    maximum for the kind), or None when it keeps to both."""
    limits = []
    if upload.file_size:
        limits.append(int(upload.file_size * (1 + SIZE_TOLERANCE)))
    if upload.policy is not None and _max_bytes(upload.policy, upload.kind) is not None:
        limits.append(_max_bytes(upload.policy, upload.kind))
    broken = [limit for limit in limits if real_size > limit]
    return min(broken) if broken else None


def settle(upload: MediaUpload, *, context: RequestContext) -> MediaUpload:
    """Once VOD reported the file's real size (`uploaded_size`): reject the upload if the
    file broke its limit; otherwise the size simply counts from now on."""
    if not upload.uploaded_size or upload.status in (*RELEASED, UploadStatus.DELETED):
        return upload
    limit = oversize(upload, upload.uploaded_size)
    if limit is None:
        return upload
    return reject_oversize(upload, upload.uploaded_size, limit, context=context)


def reject_oversize(upload: MediaUpload, real_size: int, limit: int, *,
                    context: RequestContext) -> MediaUpload:
    """Delete the media of an upload whose file broke its limit and end the row `rejected`
    (audited with both sizes). A VOD failure leaves the row for the next event or sync."""
    try:
        request_id = media_delete(type(upload), upload.vod_id)
    except vod.VodNotFound as error:
        request_id = error.request_id
    except vod.VodError as error:
        audit.record("upload.rejected", outcome=AuditOutcome.FAILURE, context=context,
                     target=upload, vod_request_id=error.request_id,
                     data={"declared_size": upload.file_size, "uploaded_size": real_size,
                           "limit": limit, "code": error.code})
        return upload
    with transaction.atomic():
        locked = type(upload).objects.select_for_update().get(pk=upload.pk)
        previous = locked.status
        locked.status = UploadStatus.REJECTED
        locked.uploaded_size = real_size
        locked.error_code = "FileTooLarge"
        locked.error_message = (f"The uploaded file is {real_size} bytes; this upload was "
                                f"limited to {limit} bytes. It was deleted.")
        locked.save(update_fields=["status", "uploaded_size", "error_code", "error_message",
                                   "updated_at"])
        audit.record("upload.rejected", context=context, target=locked,
                     vod_request_id=request_id,
                     data={"from": previous, "declared_size": upload.file_size,
                           "uploaded_size": real_size, "limit": limit})
    return locked
