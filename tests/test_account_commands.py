"""Accounts and tokens without a shell: create_app_user, issue_token, list_tokens and
revoke_tokens, end to end (the printed token works against the API until revoked), each
audited as the command, and no secret in any output or audit event."""

import io
import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import UserFactory
from uploads.models import ApiTokenUse, AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "plum-orchard-lantern-42"


def run(*args, stdin=None):
    """Run a command; its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    extra = {"stdin": stdin} if stdin is not None else {}
    call_command(*args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def videos_status(token: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client.get("/api/v1/videos/").status_code


def issue(username: str, *args) -> tuple[str, str]:
    """issue_token's token (the whole of stdout, one line) and its stderr."""
    out, err = run("issue_token", username, *args)
    assert out.endswith("\n") and out.count("\n") == 1, out
    return out.strip(), err


def all_audit_text() -> str:
    return " ".join(str(event.data) for event in AuditEvent.objects.all())


def test_create_app_user_makes_a_token_only_account_and_audits_it():
    out, err = run("create_app_user", "dave", "--email", "dave@example.com")

    dave = get_user_model().objects.get(username="dave")
    assert dave.is_active and not dave.is_staff and not dave.is_superuser
    assert dave.email == "dave@example.com"
    assert not dave.has_usable_password()
    assert "dave" in out and "API tokens only" in out
    event = AuditEvent.objects.get(action="auth.user.created")
    assert event.actor is None and event.actor_label == "manage.py create_app_user"
    assert event.data == {"username": "dave", "password_login": False}


def test_create_app_user_reads_the_password_from_stdin_and_never_echoes_it():
    out, err = run("create_app_user", "erin", "--password-stdin",
                   stdin=io.StringIO(PASSWORD + "\n"))

    erin = get_user_model().objects.get(username="erin")
    assert erin.check_password(PASSWORD) and not erin.is_staff
    assert PASSWORD not in out + err
    assert PASSWORD not in all_audit_text()
    event = AuditEvent.objects.get(action="auth.user.created")
    assert event.data == {"username": "erin", "password_login": True}


def test_create_app_user_refuses_a_weak_password_and_an_existing_username(user):
    with pytest.raises(CommandError, match="password refused") as refused:
        run("create_app_user", "frank", "--password-stdin", stdin=io.StringIO("12345\n"))
    assert "12345" not in str(refused.value)
    with pytest.raises(CommandError, match="'alice' already exists"):
        run("create_app_user", "alice")

    assert not get_user_model().objects.filter(username="frank").exists()
    assert not AuditEvent.objects.filter(action="auth.user.created").exists()


def test_issued_token_is_printed_alone_works_against_the_api_and_is_audited():
    run("create_app_user", "dave")
    before = timezone.now()

    token, err = issue("dave")

    assert token.startswith("vodp_")
    assert videos_status(token) == 200
    [row] = AuthToken.objects.filter(user__username="dave")
    assert re.search(rf"token {row.digest[:12]} for dave, expires \d{{4}}-", err), err
    assert token not in err
    # REST_KNOX's TOKEN_TTL (90 days) by default.
    assert before + timedelta(days=90) <= row.expiry <= timezone.now() + timedelta(days=90)
    event = AuditEvent.objects.get(action="auth.token.created")
    assert event.actor is None and event.actor_label == "manage.py issue_token"
    assert event.data["user"] == "dave" and event.data["token_id"] == row.digest[:12]
    assert token not in all_audit_text() and row.token_key not in all_audit_text()


def test_issue_token_expiry_hours_within_the_settings(settings):
    UserFactory(username="dave")

    issue("dave", "--expiry-hours", "2")
    row = AuthToken.objects.get()
    assert abs(row.expiry - (timezone.now() + timedelta(hours=2))) < timedelta(minutes=1)
    with pytest.raises(CommandError, match="never expire"):
        run("issue_token", "dave", "--expiry-hours", "0")
    with pytest.raises(CommandError, match="at most 2160 hours"):
        run("issue_token", "dave", "--expiry-hours", "2161")
    assert AuthToken.objects.count() == 1

    # Settings that allow tokens without expiry (TOKEN_TTL None) allow 0.
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": None}
    token, err = issue("dave", "--expiry-hours", "0")
    assert "expires never" in err
    assert AuthToken.objects.get(expiry__isnull=True) and videos_status(token) == 200


def test_issue_token_refuses_unknown_and_inactive_users():
    UserFactory(username="gone", is_active=False)

    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run("issue_token", "nobody")
    with pytest.raises(CommandError, match="'gone' is not active"):
        run("issue_token", "gone")

    assert not AuthToken.objects.exists()
    assert not AuditEvent.objects.filter(action="auth.token.created").exists()


def test_list_tokens_shows_ids_times_and_last_use_never_a_secret(user, other_user):
    alice_row, alice_token = AuthToken.objects.create(user=user)
    bob_row, bob_token = AuthToken.objects.create(user=other_user, expiry=None)
    used = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=5)
    ApiTokenUse.objects.create(token=alice_row, last_used_at=used)

    out, err = run("list_tokens")

    header, *lines = out.splitlines()
    assert header.split() == ["user", "token_id", "created", "expires", "last", "used"]
    assert len(lines) == 2 and "2 tokens" in err
    alice_line = next(line for line in lines if line.startswith("alice"))
    bob_line = next(line for line in lines if line.startswith("bob"))
    assert alice_row.digest[:12] in alice_line and f"{used:%Y-%m-%d %H:%M} UTC" in alice_line
    assert f"{alice_row.expiry:%Y-%m-%d %H:%M} UTC" in alice_line
    assert bob_row.digest[:12] in bob_line and bob_line.split()[-2:] == ["never", "never"]
    for secret in (alice_token, bob_token, alice_row.digest, bob_row.digest,
                   alice_row.token_key, bob_row.token_key):
        assert secret not in out + err

    only_bob, _ = run("list_tokens", "bob")
    assert bob_row.digest[:12] in only_bob and alice_row.digest[:12] not in only_bob
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run("list_tokens", "nobody")


def test_revoke_one_token_by_id_stops_it_and_audits_the_command():
    run("create_app_user", "dave")
    token, _ = issue("dave")
    kept, _ = issue("dave")
    revoked_row = AuthToken.objects.get(digest=hash_token(token))

    out, _ = run("revoke_tokens", "--token-id", revoked_row.digest[:12])

    assert out.strip() == "revoke_tokens: 1 tokens revoked"
    assert videos_status(token) == 401 and videos_status(kept) == 200
    event = AuditEvent.objects.get(action="auth.token.deleted")
    assert event.actor is None and event.actor_label == "manage.py revoke_tokens"
    assert event.data["token_id"] == revoked_row.digest[:12] and event.data["user"] == "dave"
    assert token not in all_audit_text() and kept not in all_audit_text()
    with pytest.raises(CommandError, match="no token with id"):
        run("revoke_tokens", "--token-id", revoked_row.digest[:12])
    with pytest.raises(CommandError, match="12 hex characters"):
        run("revoke_tokens", "--token-id", "abc")


def test_revoke_a_users_tokens_leaves_the_others(user, other_user):
    alice_tokens = [issue("alice")[0] for _ in range(2)]
    bob_token, _ = issue("bob")

    out, _ = run("revoke_tokens", "--user", "alice")

    assert "2 tokens revoked" in out
    assert [videos_status(token) for token in alice_tokens] == [401, 401]
    assert videos_status(bob_token) == 200
    deleted = AuditEvent.objects.filter(action="auth.token.deleted")
    assert deleted.count() == 2
    assert {event.actor_label for event in deleted} == {"manage.py revoke_tokens"}
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run("revoke_tokens", "--user", "nobody")


def test_revoke_all_needs_yes_and_one_way_of_choosing(user, other_user):
    tokens = [issue("alice")[0], issue("bob")[0]]

    with pytest.raises(CommandError, match="--yes"):
        run("revoke_tokens", "--all")
    with pytest.raises(CommandError):
        run("revoke_tokens")
    with pytest.raises(CommandError):
        run("revoke_tokens", "--all", "--user", "alice", "--yes")
    assert AuthToken.objects.count() == 2

    out, _ = run("revoke_tokens", "--all", "--yes")

    assert "2 tokens revoked" in out
    assert not AuthToken.objects.exists()
    assert [videos_status(token) for token in tokens] == [401, 401]
    assert AuditEvent.objects.filter(action="auth.token.deleted",
                                     actor_label="manage.py revoke_tokens").count() == 2
