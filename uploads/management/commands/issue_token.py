"""Issue an API token for a user; print it once. Audited as `auth.token.created`."""

from django.core.management.base import BaseCommand, CommandError

from uploads.audit import RequestContext
from uploads.services import accounts


class Command(BaseCommand):
    help = ("Create an API token for an active user and print it once, alone on standard "
            "output (TOKEN=$(manage.py issue_token NAME)); its token id and expiry go to "
            "standard error. Audited as auth.token.created.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--expiry-hours", type=int, default=None,
                            help="Lifetime in hours; by default, and at most, REST_KNOX's "
                                 "TOKEN_TTL (API_TOKEN_TTL_DAYS). 0 (never expires) only "
                                 "when TOKEN_TTL is unset.")

    def handle(self, *args, username, expiry_hours, **options):
        try:
            user = accounts.user_named(username)
            expiry = accounts.token_expiry(expiry_hours)
            row, token = accounts.token_issue(
                user=user, expiry=expiry, context=RequestContext.system("manage.py issue_token"))
        except accounts.AccountError as exc:
            raise CommandError(f"issue_token: {exc}") from exc
        # The token alone on stdout, so a script can capture it; the rest for the human.
        self.stdout.write(token)
        until = f"{row.expiry:%Y-%m-%d %H:%M:%S} UTC" if row.expiry else "never"
        # Plain text: stderr's default style is the red of an error, and this is none.
        self.stderr.write(f"issue_token: token {accounts.token_id(row)} for "
                          f"{user.get_username()}, expires {until}. It is shown only now.",
                          style_func=str)
