"""Create the local demo accounts and API token; print them. Safe to run again."""

import json
import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from knox import crypto
from knox.models import AuthToken

STAFF_USERNAME = "demo-staff"
USER_USERNAME = "demo"


class Command(BaseCommand):
    help = "Create a demo staff account and a demo user with an API token (local runs only)."

    def add_arguments(self, parser):
        parser.add_argument("--state-file", default=str(Path(settings.BASE_DIR) / "var" / "demo.json"),
                            help="Where the demo passwords and token are kept between runs.")
        parser.add_argument("--json", action="store_true", help="Print the state as JSON.")

    def handle(self, *args, state_file, **options):
        if not (settings.DEBUG or settings.VOD_SANDBOX):
            raise CommandError("demo_setup is for local runs (DEBUG or VOD_SANDBOX) only.")
        path = Path(state_file)
        state = _load(path)
        users = get_user_model().objects
        staff, _ = users.get_or_create(username=STAFF_USERNAME,
                                       defaults={"is_staff": True, "is_superuser": True})
        demo, _ = users.get_or_create(username=USER_USERNAME)
        for account, key in ((staff, "staff_password"), (demo, "user_password")):
            if not state.get(key) or not account.check_password(state[key]):
                state[key] = secrets.token_urlsafe(12)
                account.set_password(state[key])
                account.save(update_fields=["password"])
        if not _token_valid(state.get("token"), demo):
            _, state["token"] = AuthToken.objects.create(user=demo)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_dumps(state))
        path.chmod(0o600)
        if options["json"]:
            self.stdout.write(_dumps(state))
            return
        self.stdout.write(f"staff login: {STAFF_USERNAME} / {state['staff_password']}")
        self.stdout.write(f"user login:  {USER_USERNAME} / {state['user_password']}")
        self.stdout.write(f"user token:  {state['token']}")


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _dumps(state: dict) -> str:
    return json.dumps(state, indent=2, sort_keys=True)


def _token_valid(token: str | None, user) -> bool:
    if not token:
        return False
    return AuthToken.objects.filter(digest=crypto.hash_token(token), user=user,
                                    expiry__gt=timezone.now()).exists()
