"""What the database knows, read when /metrics is scraped, in the process serving the scrape.

Gauges of stored state (uploads in flight, the oldest one's age, the audit chain's head)
would be wrong as values each worker keeps: any worker's view is as good as another's, and
they are facts of the database, not of a process. So they are read at scrape time, by the
one process serving it, with a few indexed queries (about a millisecond each):

- per kind, one GROUP BY status over the in-flight statuses, served by the
  `<kind>_status_created` index (status, created_at, id): a count and the oldest created_at;
- the chain's head: the highest `sequence` (its unique index) and its created_at;
- events not sealed yet: the partial index that holds only them.

A database that cannot answer does not fail the scrape: `vodportal_scrape_database_up` says 0
and the rest is left out (an alert sees the gap rather than stale numbers).
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from ..models import IN_FLIGHT_STATUSES, UPLOAD_MODELS, AuditEvent

logger = logging.getLogger("uploads.metrics")



class DatabaseCollector:
    """A prometheus_client collector of uploads in flight and the audit chain's head."""

    def describe(self):
        """Nothing: describing would make registering it run the queries."""
        return []

    def collect(self):
        """Query the database now; yield the gauges (only `..._database_up` if it fails)."""
        up = GaugeMetricFamily("vodportal_scrape_database_up",
                               "1 when this scrape could read the database, else 0.")
        try:
            families = list(self._families())
        except DatabaseError:
            logger.warning("metrics: the database could not be read for a scrape", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self):
        now = timezone.now()
        in_flight = GaugeMetricFamily(
            "vodportal_uploads_in_flight",
            "Uploads in a status something may still move (requesting, uploading, uploaded, "
            "processing), by kind and status.", labels=["kind", "status"])
        oldest = GaugeMetricFamily(
            "vodportal_uploads_oldest_in_flight_age_seconds",
            "Seconds since the oldest upload now in that status was created, by kind and "
            "status (0 when none is).", labels=["kind", "status"])
        for kind, model in UPLOAD_MODELS.items():
            # order_by(): the model's default ordering would join the GROUP BY.
            rows = {row["status"]: row for row in model.objects.filter(status__in=IN_FLIGHT_STATUSES)
                    .values("status").annotate(count=Count("pk"), oldest=Min("created_at"))
                    .order_by()}
            for status in IN_FLIGHT_STATUSES:
                row = rows.get(status)
                in_flight.add_metric([kind, status], row["count"] if row else 0)
                age = (now - row["oldest"]).total_seconds() if row and row["oldest"] else 0.0
                oldest.add_metric([kind, status], max(0.0, age))
        yield in_flight
        yield oldest
        head = (AuditEvent.objects.filter(sequence__isnull=False).order_by("-sequence")
                .values_list("sequence", "created_at").first())
        sequence = GaugeMetricFamily(
            "vodportal_audit_chain_head_sequence",
            "Sequence number of the newest sealed (chained) audit event; 0 for an empty chain.")
        sequence.add_metric([], head[0] if head else 0)
        yield sequence
        if head is not None:
            age = GaugeMetricFamily(
                "vodportal_audit_chain_head_age_seconds",
                "Seconds since the newest sealed (chained) audit event was written.")
            age.add_metric([], max(0.0, (now - head[1]).total_seconds()))
            yield age
        unsealed = GaugeMetricFamily(
            "vodportal_audit_unsealed_events",
            "Audit events written and not sealed into the chain yet (a sealer keeps this near 0).")
        unsealed.add_metric([], AuditEvent.objects.filter(sequence__isnull=True).count())
        yield unsealed
