"""Delete refused VOD event deliveries older than the retention period. Safe to run from cron."""

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from uploads import services
from uploads.audit import RequestContext


class Command(BaseCommand):
    help = ("Delete refused event deliveries (bad signature, not JSON) received more than "
            "--days days ago (VOD_EVENTS_REFUSED_KEEP_DAYS, 30 by default); accepted and "
            "duplicate deliveries are kept. Audited as vod.event.pruned.")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None,
                            help="Keep refused deliveries this many days.")

    def handle(self, *args, days=None, **options):
        days = settings.VOD_EVENTS_REFUSED_KEEP_DAYS if days is None else days
        cutoff = timezone.now() - timedelta(days=days)
        deleted = services.refused_events_prune(before=cutoff,
                                                context=RequestContext.system("vod_events_prune"))
        self.stdout.write(f"vod_events_prune: {deleted} refused deliveries older than "
                          f"{days} days deleted")
