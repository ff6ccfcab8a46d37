"""The staff service dashboard's figures: a handful of aggregate queries, nothing per row.

Every query is bounded by time on an indexed column (`created_at` of the upload tables,
`received_at` of VOD's events) or reads a small partial index (in-flight uploads), and
groups in the database: Python only reshapes the few dozen groups that come back, so the
cost follows the size of the window, not of the table (bench/admin_scale.py times it at
1M uploads). PostgreSQL serves the windows from the covering and partial indexes of
migration 0011; on SQLite (local runs, tests) the same SQL runs on the plain tables.

Definitions (the page states them too):

- *Credentials issued*: upload rows created in the bucket that VOD gave a credential
  (`credentials_issued > 0`); a later refresh of the same video is not counted again.
- *Funnel*: rows created in the last FUNNEL_DAYS days, each counted at the furthest step
  its current status proves: issued (it got a credential), uploaded (its file reached VOD:
  uploaded, processing, ready, blocked, deleted or rejected) and ready. A failed row counts as issued
  only: VOD's failure does not say whether the file had arrived.
- *Stuck in flight*: rows still `uploading` whose credential has expired, whenever made.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Q, Value
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from ..models import (
    UPLOAD_MODELS,
    UploadStatus,
    VodEvent,
    VodEventStatus,
)

HOURS = 48
DAYS = 30
FUNNEL_DAYS = 30
FAILURE_DAYS = 7
REJECTED_DAYS = 7
TOP_UPLOADERS = 10
TOP_REASONS = 10
KIND_LABELS = {"video": "Video and audio", "image": "Images", "attached_media": "Attached media"}
# Statuses that prove the file reached VOD (see the module's definitions).
# `rejected`: the file arrived and broke its upload policy.
UPLOADED_STATUSES = (UploadStatus.UPLOADED, UploadStatus.PROCESSING, UploadStatus.READY,
                     UploadStatus.BLOCKED, UploadStatus.DELETED, UploadStatus.REJECTED)


@dataclass(frozen=True)
class Series:
    """Counts per time bucket, one list per kind, aligned with `labels`."""

    labels: list[str]
    by_kind: dict[str, list[int]]

    @property
    def total(self) -> int:
        """All kinds, all buckets."""
        return sum(sum(counts) for counts in self.by_kind.values())


@dataclass(frozen=True)
class FunnelStep:
    """One step of the funnel and what was lost since the step before."""

    name: str
    count: int
    lost: int
    lost_percent: float | None  # None for the first step, or when the step before is 0


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard page shows, computed at `now`."""

    now: datetime
    per_hour: Series
    per_day: Series
    created_in_funnel_window: int
    funnel: list[FunnelStep]
    failures: list[tuple[str, int]]  # (VOD error code, rows), most first
    stuck: dict[str, int]  # kind -> rows uploading past their credential's expiry
    rejected_per_day: Series
    rejected_reasons: list[tuple[str, int]]
    top_uploaders: list[dict] = field(default_factory=list)

    @property
    def stuck_total(self) -> int:
        """Stuck rows of every kind."""
        return sum(self.stuck.values())


def _buckets(start: datetime, step: timedelta, count: int) -> list[datetime]:
    return [start + step * index for index in range(count)]


def _series(rows, buckets: list[datetime], fmt: str, kinds) -> Series:
    """Spread (kind, bucket, n) groups over every bucket, zeros where nothing happened."""
    place = {bucket: index for index, bucket in enumerate(buckets)}
    by_kind = {kind: [0] * len(buckets) for kind in kinds}
    for kind, bucket, count in rows:
        index = place.get(bucket)
        if index is not None:  # a row stamped in the future (clock skew) is left out
            by_kind[kind][index] += count
    return Series(labels=[bucket.strftime(fmt) for bucket in buckets], by_kind=by_kind)


def _grouped_union(build) -> list:
    """One UNION ALL query over the three upload tables: `build(model)` gives each part
    (a values() queryset with the same columns); one round trip instead of three."""
    parts = [build(model).annotate(kind=Value(kind)) for kind, model in UPLOAD_MODELS.items()]
    return list(parts[0].union(*parts[1:], all=True))


def _issued_per_hour(now: datetime) -> Series:
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)
    rows = _grouped_union(lambda model: model.objects.order_by()
                          .filter(created_at__gte=start, credentials_issued__gt=0)
                          .annotate(bucket=TruncHour("created_at")).values("bucket")
                          .annotate(n=Count("*")).values_list("bucket", "n"))
    return _series([(kind, bucket, n) for bucket, n, kind in rows],
                   _buckets(start, timedelta(hours=1), HOURS), "%d %b %H:00", UPLOAD_MODELS)


def _per_day_and_status(start: datetime) -> list:
    """(day, status, rows, rows issued a credential, kind) over the day window: the daily
    chart and the funnel come from this one scan."""
    return _grouped_union(lambda model: model.objects.order_by()
                          .filter(created_at__gte=start)
                          .annotate(bucket=TruncDay("created_at")).values("bucket", "status")
                          .annotate(n=Count("*"), issued=Count("credentials_issued", filter=Q(
                              credentials_issued__gt=0)))
                          .values_list("bucket", "status", "n", "issued"))


def _funnel(groups, since: datetime) -> tuple[int, list[FunnelStep]]:
    created = issued = uploaded = ready = 0
    for bucket, status, count, with_credential, _kind in groups:
        if bucket < since:
            continue
        created += count
        issued += with_credential
        if status in UPLOADED_STATUSES:
            uploaded += count
        if status == UploadStatus.READY:
            ready += count
    steps, before = [], None
    for name, count in (("Credential issued", issued), ("Uploaded", uploaded),
                        ("Ready", ready)):
        lost = 0 if before is None else before - count
        percent = None if not before else round(100 * lost / before, 1)
        steps.append(FunnelStep(name=name, count=count, lost=lost, lost_percent=percent))
        before = count
    return created, steps


def _failures(now: datetime) -> list[tuple[str, int]]:
    since = now - timedelta(days=FAILURE_DAYS)
    rows = _grouped_union(lambda model: model.objects.order_by()
                          .filter(status=UploadStatus.FAILED, created_at__gte=since)
                          .values("error_code").annotate(n=Count("*"))
                          .values_list("error_code", "n"))
    merged: dict[str, int] = {}
    for code, count, _kind in rows:  # a few codes per kind: merging them here is free
        merged[code or "(no code)"] = merged.get(code or "(no code)", 0) + count
    return sorted(merged.items(), key=lambda item: (-item[1], item[0]))


def _stuck(now: datetime) -> dict[str, int]:
    """Per kind: rows `uploading` past their credential's expiry (the partial index
    `*_in_flight_expiry` holds only uploading rows)."""
    rows = _grouped_union(lambda model: model.objects.order_by()
                          .filter(status=UploadStatus.UPLOADING, credential_expires_at__lt=now)
                          .values("status").annotate(n=Count("*")).values_list("n"))
    stuck = dict.fromkeys(UPLOAD_MODELS, 0)
    for count, kind in rows:
        stuck[kind] = count
    return stuck


def stuck_filter(now: datetime) -> dict[str, str]:
    """The changelist query that lists exactly the rows `_stuck` counts."""
    return {"status__exact": UploadStatus.UPLOADING,
            "credential_expires_at__lt": now.isoformat(timespec="seconds")}


def _rejected(now: datetime) -> tuple[Series, list[tuple[str, int]]]:
    """Refused callbacks per day and by reason (a handful of fixed texts), in one query."""
    start = (now - timedelta(days=REJECTED_DAYS - 1)).replace(hour=0, minute=0, second=0,
                                                              microsecond=0)
    rows = list(VodEvent.objects.order_by()
                .filter(status=VodEventStatus.REJECTED, received_at__gte=start)
                .annotate(bucket=TruncDay("received_at")).values("bucket", "reason")
                .annotate(n=Count("*")).values_list("bucket", "reason", "n"))
    per_day = _series([("rejected", bucket, n) for bucket, _reason, n in rows],
                      _buckets(start, timedelta(days=1), REJECTED_DAYS), "%d %b", ["rejected"])
    reasons: dict[str, int] = {}
    for _bucket, reason, count in rows:
        reasons[reason or "(none)"] = reasons.get(reason or "(none)", 0) + count
    ranked = sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    return per_day, ranked[:TOP_REASONS]


def _top_uploaders(since: datetime) -> list[dict]:
    """The TOP_UPLOADERS owners with most rows created since `since`, all kinds together.

    Raw SQL: the ORM cannot aggregate over a UNION, and ranking in the database returns 10
    rows rather than every active owner."""
    quote = connection.ops.quote_name
    parts = " UNION ALL ".join(
        f"SELECT {quote('owner_id')} AS owner_id, %s AS kind FROM {quote(model._meta.db_table)}"
        f" WHERE {quote('created_at')} >= %s" for model in UPLOAD_MODELS.values())
    per_kind = ", ".join("SUM(CASE WHEN kind = %s THEN 1 ELSE 0 END)" for _ in UPLOAD_MODELS)
    sql = (f"SELECT owner_id, COUNT(*) AS total, {per_kind} FROM ({parts}) AS rows_in_window"
           f" GROUP BY owner_id ORDER BY total DESC, owner_id LIMIT {TOP_UPLOADERS}")
    params = [*UPLOAD_MODELS, *[value for kind in UPLOAD_MODELS for value in (kind, since)]]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ranked = cursor.fetchall()
    users = get_user_model().objects.in_bulk([row[0] for row in ranked])
    return [{"user": users.get(owner_id), "owner_id": owner_id, "total": total,
             "by_kind": dict(zip(UPLOAD_MODELS, counts, strict=True))}
            for owner_id, total, *counts in ranked]


def dashboard(*, now: datetime | None = None) -> Dashboard:
    """Compute every figure of the dashboard: seven queries, whatever the table sizes."""
    now = now or timezone.now()
    day_start = (now - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0,
                                                         microsecond=0)
    days = _buckets(day_start, timedelta(days=1), DAYS)
    groups = _per_day_and_status(day_start)
    per_day = _series([(kind, bucket, issued) for bucket, _status, _n, issued, kind in groups],
                      days, "%d %b", UPLOAD_MODELS)
    # The funnel's window is whole days too, so that it is read off the same groups.
    created, funnel = _funnel(groups, days[DAYS - FUNNEL_DAYS])
    rejected_per_day, reasons = _rejected(now)
    return Dashboard(now=now, per_hour=_issued_per_hour(now), per_day=per_day,
                     created_in_funnel_window=created, funnel=funnel,
                     failures=_failures(now), stuck=_stuck(now),
                     rejected_per_day=rejected_per_day, rejected_reasons=reasons,
                     top_uploaders=_top_uploaders(day_start))
