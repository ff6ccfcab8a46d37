"""Verify the audit trail's hash chain; exit non-zero naming the first bad sequence number."""

from django.core.management.base import BaseCommand, CommandError

from uploads import audit


class Command(BaseCommand):
    help = ("Walk the audit chain and recompute every HMAC with AUDIT_KEY. Exits 1 at the "
            "first edited, deleted, inserted or reordered event.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--expect-head", metavar="SEQUENCE:HASH",
            help="A head recorded earlier (printed by a previous run): the chain must still "
                 "contain it, which also detects deletion of the newest events.")

    def handle(self, *args, expect_head=None, **options):
        report = audit.verify_chain()
        if not report.ok:
            raise CommandError(f"audit chain broken at sequence {report.first_bad_sequence}: "
                               f"{report.reason} ({report.checked} events verified before it)",
                               returncode=1)
        if expect_head:
            self._check_anchor(expect_head, report)
        self.stdout.write(f"audit chain OK: {report.checked} events; "
                          f"head {report.head_sequence}:{report.head_hash}")

    def _check_anchor(self, expect_head: str, report: audit.ChainReport) -> None:
        sequence_text, _, expected_hash = expect_head.partition(":")
        try:
            sequence = int(sequence_text)
        except ValueError as exc:
            raise CommandError("--expect-head takes SEQUENCE:HASH", returncode=2) from exc
        if sequence > report.head_sequence:
            raise CommandError(f"audit chain broken at sequence {report.head_sequence + 1}: "
                               f"events up to {sequence} were recorded, the chain ends at "
                               f"{report.head_sequence}", returncode=1)
        if audit.hash_at(sequence) != expected_hash:
            raise CommandError(f"audit chain broken at sequence {sequence}: its hash differs "
                               "from the recorded head", returncode=1)
