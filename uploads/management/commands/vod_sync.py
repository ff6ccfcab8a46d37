"""Resolve uploads that are still in flight by asking VOD. Safe to run from cron."""

from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from uploads import services
from uploads.audit import RequestContext
from uploads.models import IN_FLIGHT_STATUSES, UPLOAD_MODELS, UploadStatus

# Any constant: the PostgreSQL advisory lock that keeps two runs from overlapping.
_SYNC_LOCK_ID = 0x766F645F73796E63  # "vod_sync"


class Command(BaseCommand):
    help = ("Ask VOD about uploads still requesting, uploading or processing past their "
            "credential expiry (or older than --older-than) and update them.")

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, default=None, metavar="MINUTES",
                            help="Also take in-flight rows created more than this long ago.")
        parser.add_argument("--grace", type=int, default=10, metavar="MINUTES",
                            help="A `requesting` row is looked up in VOD (and deleted there "
                                 "or ended) once it is this old (default 10); a younger "
                                 "one may still be in its request's hands. 0 only when no "
                                 "request is running.")
        parser.add_argument("--limit", type=int, default=5000,
                            help="At most this many rows per kind in one run.")
        parser.add_argument("--recheck-failed", type=int, default=None, metavar="DAYS",
                            help="Also look in VOD for rows created in the last DAYS days "
                                 "that failed before VOD gave them an id, and delete what "
                                 "is found (versions before 2026-12 could end such a row "
                                 "while VOD had made its media). Run once after upgrading.")

    def handle(self, *args, older_than=None, grace=10, limit=5000, recheck_failed=None,
               **options):
        if not self._lock(True):
            self.stdout.write("another vod_sync is running; nothing done")
            return
        try:
            self._sync(older_than, grace, limit, recheck_failed)
        finally:
            self._lock(False)

    def _sync(self, older_than, grace, limit, recheck_failed):
        now = timezone.now()
        due = Q(credential_expires_at__lt=now) | Q(credential_expires_at__isnull=True,
                                                   created_at__lt=now - timedelta(minutes=grace))
        if older_than is not None:
            due |= Q(created_at__lt=now - timedelta(minutes=older_than))
        context = RequestContext.system("vod_sync")
        totals = {"checked": 0, "changed": 0, "failed": 0}
        wanted = Q(due, status__in=IN_FLIGHT_STATUSES)
        if recheck_failed is not None:
            wanted |= Q(status=UploadStatus.FAILED, vod_id__isnull=True,
                        created_at__gte=now - timedelta(days=recheck_failed))
        for model in UPLOAD_MODELS.values():
            rows = list(model.objects.filter(wanted).order_by("created_at")[:limit])
            results = services.uploads_sync(uploads=rows, context=context,
                                            end_unknown_before=now - timedelta(minutes=grace),
                                            expire_before=now)
            for result in results:
                totals["checked"] += 1
                totals["changed"] += result.changed
                totals["failed"] += not result.ok
                if result.changed or not result.ok:
                    self.stdout.write(self._describe(result))
        self.stdout.write("vod_sync: {checked} checked, {changed} changed, {failed} failed"
                          .format(**totals))

    @staticmethod
    def _describe(result) -> str:
        label = f"{result.upload.kind} {result.upload.vod_id or result.upload.pk}"
        if not result.ok:
            return f"{label}: failed to sync ({result.error})"
        return f"{label}: {result.old_status} -> {result.new_status}"

    @staticmethod
    def _lock(take: bool) -> bool:
        """Take (or release) the run lock; False when another run holds it."""
        if connection.vendor != "postgresql":
            return True  # SQLite serves one local process; there is nothing to race
        function = "pg_try_advisory_lock" if take else "pg_advisory_unlock"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s)", [_SYNC_LOCK_ID])
            return cursor.fetchone()[0]
