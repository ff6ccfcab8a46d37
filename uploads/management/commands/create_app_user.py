"""Create an app account (active, not staff), audited as `auth.user.created`."""

import sys

from django.core.management.base import BaseCommand, CommandError

from uploads.audit import RequestContext
from uploads.services import accounts


class Command(BaseCommand):
    help = ("Create an active, non-staff user. Without --password-stdin it has no usable "
            "password: it can only use API tokens (issue_token). Audited as auth.user.created.")
    # call_command(..., stdin=...) feeds the password in tests, as createsuperuser does.
    stealth_options = ("stdin",)

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="", help="The user's email address.")
        parser.add_argument("--password-stdin", action="store_true",
                            help="Read the password from the first line of standard input "
                                 "(never from the command line, where ps and shell history "
                                 "would keep it).")

    def handle(self, *args, username, email, password_stdin, **options):
        password = None
        if password_stdin:
            stream = options.get("stdin") or sys.stdin
            password = stream.readline().rstrip("\r\n")
        try:
            user = accounts.user_create(
                username=username, email=email, password=password,
                context=RequestContext.system("manage.py create_app_user"))
        except accounts.AccountError as exc:
            raise CommandError(f"create_app_user: {exc}") from exc
        login = "password login allowed" if password is not None else "API tokens only"
        self.stdout.write(f"create_app_user: created {user.get_username()} ({login})")
