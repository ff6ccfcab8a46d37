"""List API tokens: user, token id, created, expires, last used. Never the token."""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from uploads.services import accounts

COLUMNS = ("user", "token_id", "created", "expires", "last used")


def _when(moment, empty: str) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else empty


class Command(BaseCommand):
    help = ("List API tokens (all, or one user's), newest first: user, token id (the start of "
            "the token's digest, for revoke_tokens --token-id), created, expires, last used.")

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?", default=None)

    def handle(self, *args, username, **options):
        if username is not None:
            try:
                accounts.user_named(username)
            except accounts.AccountError as exc:
                raise CommandError(f"list_tokens: {exc}") from exc
        now = timezone.now()
        table = [COLUMNS]
        for row in accounts.token_rows(accounts.tokens(username=username)):
            expires = _when(row.expiry, "never")
            if row.expiry and row.expiry <= now:
                expires += " (expired)"
            table.append((row.username, row.token_id, _when(row.created, "-"), expires,
                          _when(row.last_used, "never")))
        widths = [max(len(line[column]) for line in table) for column in range(len(COLUMNS))]
        for line in table:
            self.stdout.write("  ".join(cell.ljust(width)
                                        for cell, width in zip(line, widths, strict=True)).rstrip())
        # Plain text: stderr's default style is the red of an error, and this is a count.
        self.stderr.write(f"list_tokens: {len(table) - 1} tokens", style_func=str)
