"""Verify the audit trail's hash chain and that it still holds every signed checkpoint of its
head; write a new checkpoint. Exit non-zero naming the first bad sequence number."""

from django.core.management.base import BaseCommand, CommandError

from uploads import audit, audit_checkpoints


class Command(BaseCommand):
    help = ("Walk the audit chain and recompute every HMAC with AUDIT_KEY; check that it still "
            "contains every checkpoint kept in AUDIT_CHECKPOINT_DIR (so deleting its newest "
            "events, emptying it or rewriting it shows); then record the head as a new "
            "checkpoint. Exits 1 at the first edited, deleted, inserted or reordered event.")

    def add_arguments(self, parser):
        parser.add_argument(
            "--expect-head", metavar="SEQUENCE:HASH",
            help="A head recorded elsewhere (printed by a previous run): the chain must still "
                 "contain it too.")
        parser.add_argument("--no-checkpoint", action="store_true",
                            help="Check only; write no checkpoint.")

    def handle(self, *args, expect_head=None, no_checkpoint=False, **options):
        report = audit.verify_chain()
        if not report.ok:
            raise CommandError(f"audit chain broken at sequence {report.first_bad_sequence}: "
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
        if not no_checkpoint and newest != report.head_sequence:
            written = audit_checkpoints.write(report.head_sequence, report.head_hash)
            self.stdout.write(f"checkpoint written: {audit_checkpoints.directory()}/"
                              f"{written.name}")

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
