"""Revoke API tokens (delete them through the ORM: each deletion is audited)."""

from django.core.management.base import BaseCommand, CommandError

from uploads.audit import RequestContext
from uploads.services import accounts


class Command(BaseCommand):
    help = ("Revoke one user's tokens (--user), one token (--token-id, as list_tokens shows "
            "it) or every token (--all --yes). Each is audited as auth.token.deleted.")

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--user", metavar="USERNAME", help="Every token of this user.")
        which.add_argument("--token-id", metavar="ID", help="The token with this token id.")
        which.add_argument("--all", action="store_true", help="Every token of every user.")
        parser.add_argument("--yes", action="store_true",
                            help="Confirm --all (every app is logged out).")

    def handle(self, *args, user, token_id, yes, **options):
        try:
            found = self._tokens(user=user, token_id=token_id, every=options["all"],
                                 confirmed=yes)
        except accounts.AccountError as exc:
            raise CommandError(f"revoke_tokens: {exc}") from exc
        revoked = accounts.tokens_revoke(
            found, context=RequestContext.system("manage.py revoke_tokens"))
        self.stdout.write(f"revoke_tokens: {revoked} tokens revoked")

    def _tokens(self, *, user, token_id, every, confirmed):
        if every:
            if not confirmed:
                raise accounts.AccountError("--all revokes every token of every user: add "
                                            "--yes to confirm")
            return accounts.tokens()
        if user is not None:
            accounts.user_named(user)  # an unknown name is a mistake, not "0 revoked"
            return accounts.tokens(username=user)
        token_id = token_id.strip().lower()
        if not accounts.token_id_valid(token_id):
            raise accounts.AccountError(f"a token id is {accounts.TOKEN_ID_LENGTH} hex "
                                        "characters, as list_tokens shows it")
        found = list(accounts.tokens(token_id_prefix=token_id))
        if not found:
            raise accounts.AccountError(f"no token with id {token_id}")
        return found
