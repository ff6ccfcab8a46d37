"""Chain the audit events written but not sealed yet (uploads/audit_sealer.py)."""

import logging
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DatabaseError, close_old_connections, connection

from uploads import audit_sealer

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = ("Give every audit event not sealed yet its place in the chain, in order, under "
            "the chain's lock; print how many. The portal's processes do this themselves, "
            "shortly after each write; --loop runs it as a service of its own.")

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true",
                            help="Keep sealing, every AUDIT_SEAL_INTERVAL_SECONDS, until stopped.")

    def handle(self, *args, loop=False, **options):
        if not loop:
            self.stdout.write(f"{audit_sealer.seal_pending()} audit events sealed")
            return
        while True:
            try:
                sealed = audit_sealer.seal_pending()
            except DatabaseError:
                # A service outlives a database restart: the next round reconnects.
                logger.exception("audit_seal: database error; trying again")
                connection.close()
            else:
                if sealed:
                    self.stdout.write(f"{sealed} audit events sealed")
                close_old_connections()
            time.sleep(settings.AUDIT_SEAL_INTERVAL_SECONDS)
