"""Seal what is pending, verify the audit trail's hash chain and that it still holds every
signed checkpoint of its head; write a new checkpoint. Exit non-zero naming the first bad
sequence number (or, for an event not sealed yet, its id)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from uploads import audit, audit_checkpoints, audit_sealer
from uploads.models import AuditEvent


class Command(BaseCommand):
    help = ("Walk the audit chain and recompute every HMAC with AUDIT_KEY; check that it still "
            "contains every checkpoint kept in AUDIT_CHECKPOINT_DIR (so deleting its newest "
            "events, emptying it or rewriting it shows); then record the head as a new "
            "checkpoint. Seals pending events first. Exits 1 at the first edited, deleted, "
            "inserted or reordered event, or when events waited longer than "
            "AUDIT_SEAL_MAX_LAG_SECONDS to be sealed.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--expect-head", metavar="SEQUENCE:HASH",
            help="A head recorded elsewhere (printed by a previous run): the chain must still "
                 "contain it too.")
        parser.add_argument("--no-checkpoint", action="store_true",
                            help="Check only; write no checkpoint.")
        parser.add_argument("--no-seal", action="store_true",
                            help="Seal nothing (a role that may only read): events not sealed "
                                 "yet are checked by their mac and their age.")

    def handle(self, *args, expect_head=None, no_checkpoint=False, no_seal=False, **options):
        waited = None if no_seal else self._seal()
        report = audit.verify_chain()
        if report.wrong_key:
            raise CommandError(f"audit chain cannot be verified: {report.reason}",
                               returncode=1)
        if not report.ok:
            where = (f"sequence {report.first_bad_sequence}" if report.first_bad_sequence
                     else f"event id {report.first_bad_id}")
            raise CommandError(f"audit chain broken at {where}: "
                               f"{report.reason} ({report.checked} events verified before it)",
                               returncode=1)
        checkpoints, problems = audit_checkpoints.load()
        if problems:
            raise CommandError("audit checkpoints tampered with: " + "; ".join(problems),
                               returncode=1)
        for checkpoint in checkpoints:
            self._check_anchor(checkpoint.sequence, checkpoint.hash, report,
                               f"checkpoint {checkpoint.name}")
        if expect_head:
            self._check_anchor(*self._parse(expect_head), report, "the expected head")
        self.stdout.write(f"audit chain OK: {report.checked} events; "
                          f"head {report.head_sequence}:{report.head_hash}")
        if checkpoints:
            self.stdout.write(f"{len(checkpoints)} checkpoints hold, the newest at sequence "
                              f"{checkpoints[-1].sequence}")
        newest = checkpoints[-1].sequence if checkpoints else None
        if report.unsealed:
            self.stdout.write(f"{report.unsealed} events written since are not sealed yet")
        if not no_checkpoint and newest != report.head_sequence:
            written = audit_checkpoints.write(report.head_sequence, report.head_hash)
            self.stdout.write(f"checkpoint written: {audit_checkpoints.directory()}/"
                              f"{written.name}")
        limit = settings.AUDIT_SEAL_MAX_LAG_SECONDS
        if waited is not None and waited > limit:
            # Sealed and verified now, but for that long they could have been deleted unseen.
            raise CommandError(f"audit events waited up to {waited:.0f} s to be sealed (limit "
                               f"AUDIT_SEAL_MAX_LAG_SECONDS={limit}): is a sealer running?",
                               returncode=1)

    @staticmethod
    def _seal() -> float | None:
        """Seal every pending event, waiting for the chain's lock; how long the oldest had
        waited (None if none was pending)."""
        oldest = (AuditEvent.objects.filter(sequence__isnull=True).order_by("id")
                  .values_list("created_at", flat=True).first())
        audit_sealer.seal_pending()
        return (timezone.now() - oldest).total_seconds() if oldest else None

    @staticmethod
    def _parse(expect_head: str) -> tuple[int, str]:
        sequence_text, _, expected_hash = expect_head.partition(":")
        try:
            return int(sequence_text), expected_hash
        except ValueError as exc:
            raise CommandError("--expect-head takes SEQUENCE:HASH", returncode=2) from exc

    @staticmethod
    def _check_anchor(sequence: int, expected_hash: str, report: audit.ChainReport,
                      source: str) -> None:
        if sequence > report.head_sequence:
            raise CommandError(f"audit chain broken at sequence {report.head_sequence + 1}: "
                               f"events up to {sequence} were recorded ({source}), the chain "
                               f"ends at {report.head_sequence}", returncode=1)
        if sequence and audit.hash_at(sequence) != expected_hash:
            raise CommandError(f"audit chain broken at sequence {sequence}: its hash differs "
                               f"from the one recorded ({source})", returncode=1)
