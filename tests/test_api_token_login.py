"""Apps sign in: POST /api/v1/auth/token/ for a knox token, the user's tokens, logging out one
token or every one; throttled, locked out and audited like the login pages."""

import pytest
from django.conf import settings
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import TEST_PASSWORD, UserFactory
from uploads import audit, token_use
from uploads.models import AuditEvent

pytestmark = pytest.mark.django_db

LOGIN, TOKENS = "/api/v1/auth/token/", "/api/v1/auth/tokens/"


@pytest.fixture(autouse=True)
def fresh_token_use():
    token_use.forget()


@pytest.fixture
def alice():
    return UserFactory(username="alice")


def login(password=TEST_PASSWORD, username="alice", address="203.0.113.7"):
    return APIClient().post(LOGIN, {"username": username, "password": password},
                            format="json", REMOTE_ADDR=address)


def client_with(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_a_login_gives_a_token_that_works_and_is_shown_once(alice):
    answer = login()

    assert answer.status_code == 201
    body = answer.json()
    assert body["token"].startswith("vodp_") and body["expiry"]
    assert answer["Cache-Control"] == "no-store"
    stored = AuthToken.objects.get(user=alice)
    assert body["token_id"] == stored.digest[:12]
    assert client_with(body["token"]).get("/api/v1/videos/").status_code == 200
    logged_in = AuditEvent.objects.get(action="auth.login")
    created = AuditEvent.objects.get(action="auth.token.created")
    assert logged_in.actor_ref == alice.pk and created.actor_ref == alice.pk
    assert created.client_ip == "203.0.113.7" and created.data["token_id"] == body["token_id"]
    assert not AuditEvent.objects.filter(data__icontains=body["token"]).exists()
    assert audit.verify_chain().ok


@pytest.mark.parametrize("username, password", [("alice", "wrong"), ("nobody", TEST_PASSWORD)])
def test_wrong_credentials_are_a_401_and_audited(alice, username, password):
    answer = login(password, username)

    assert answer.status_code == 401 and answer["WWW-Authenticate"] == "Token"
    assert answer.json()["code"] == "invalid_credentials"
    failed = AuditEvent.objects.get(action="auth.login.failed")
    assert failed.data["username"] == username and failed.outcome == "failure"
    assert not AuditEvent.objects.filter(data__icontains=password).exists()
    assert not AuthToken.objects.exists()


def test_a_disabled_account_gets_no_token(alice):
    alice.is_active = False
    alice.save()

    assert login().status_code == 401
    assert not AuthToken.objects.exists()


def test_a_missing_field_is_a_400_naming_it(alice):
    answer = APIClient().post(LOGIN, {"username": "alice"}, format="json")

    assert answer.status_code == 400 and list(answer.json()["errors"]) == ["password"]


def test_too_many_failures_lock_the_address_out_as_on_the_login_pages(alice):
    limit = settings.AXES_FAILURE_LIMIT
    answers = [login(f"wrong-{n}") for n in range(limit)]

    assert [answer.status_code for answer in answers[:-1]] == [401] * (limit - 1)
    assert answers[-1].status_code == 429
    locked = login()
    assert locked.status_code == 429 and locked.json()["code"] == "locked_out"
    assert not AuthToken.objects.exists()
    assert AuditEvent.objects.filter(action="auth.locked_out").exists()
    assert login(address="198.51.100.4").status_code == 201  # another address is not locked


def test_logins_are_throttled_per_address(alice, settings):
    settings.API_LOGIN_RATE = "2/minute"

    statuses = [login().status_code for _ in range(3)]

    assert statuses == [201, 201, 429]
    throttled = login()
    assert throttled.json()["code"] == "throttled" and int(throttled["Retry-After"]) >= 1
    assert login(address="198.51.100.4").status_code == 201


def test_logging_out_ends_only_this_token(alice):
    first, second = login().json()["token"], login().json()["token"]

    answer = client_with(first).delete(LOGIN)

    assert answer.status_code == 204
    assert client_with(first).get("/api/v1/videos/").status_code == 401
    assert client_with(second).get("/api/v1/videos/").status_code == 200
    deleted = AuditEvent.objects.get(action="auth.token.deleted")
    assert deleted.actor_ref == alice.pk


def test_logging_out_needs_a_token(alice):
    assert APIClient().delete(LOGIN).status_code == 401


def test_the_user_lists_their_tokens_without_the_tokens(alice):
    first = login().json()
    second = login().json()
    UserFactory(username="bob")
    login(username="bob")
    client = client_with(second["token"])
    client.get("/api/v1/videos/")

    answer = client.get(TOKENS)

    assert answer.status_code == 200 and answer["Cache-Control"] == "no-store"
    rows = answer.json()
    assert [row["token_id"] for row in rows] == [second["token_id"], first["token_id"]]
    assert [row["current"] for row in rows] == [True, False]
    assert rows[0]["last_used"] is not None and rows[1]["last_used"] is None
    text = answer.content.decode()
    assert first["token"] not in text and second["token"] not in text
    assert AuthToken.objects.get(digest__startswith=first["token_id"]).digest not in text


def test_logging_out_everywhere_ends_every_token_of_the_user(alice):
    tokens = [login().json()["token"] for _ in range(3)]
    UserFactory(username="bob")
    bobs = login(username="bob").json()["token"]

    assert client_with(tokens[0]).delete(TOKENS).status_code == 204

    assert all(client_with(token).get("/api/v1/videos/").status_code == 401
               for token in tokens)
    assert client_with(bobs).get("/api/v1/videos/").status_code == 200
    assert AuditEvent.objects.filter(action="auth.token.deleted").count() == 3


def test_the_schema_describes_the_login_without_authentication(client):
    schema = client.get("/api/v1/schema/",
                        HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    login_operation = schema["paths"]["/api/v1/auth/token/"]["post"]
    assert not login_operation.get("security")  # no credentials needed to log in
    assert schema["paths"]["/api/v1/auth/tokens/"]["get"]["security"]
    assert "201" in login_operation["responses"]
    assert "delete" in schema["paths"]["/api/v1/auth/token/"]
    assert {"get", "delete"} <= set(schema["paths"]["/api/v1/auth/tokens/"])


def test_a_tokens_use_is_written_at_most_once_a_minute(alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = client_with(login().json()["token"])
    client.get(TOKENS)
    first = AuthToken.objects.get(user=alice).use.last_used_at

    with CaptureQueriesContext(connection) as queries:
        client.get(TOKENS)

    assert not [query for query in queries if "apitokenuse\" SET" in query["sql"]
                or "INTO \"uploads_apitokenuse\"" in query["sql"]]
    assert AuthToken.objects.get(user=alice).use.last_used_at == first


def test_an_expired_token_is_told_apart_from_a_wrong_one(alice):
    from datetime import timedelta

    from django.utils import timezone

    token = login().json()["token"]
    AuthToken.objects.filter(user=alice).update(expiry=timezone.now() - timedelta(seconds=1))

    expired = client_with(token).get("/api/v1/videos/")
    wrong = client_with("vodp_" + "x" * 64).get("/api/v1/videos/")

    assert expired.status_code == wrong.status_code == 401
    assert expired.json()["code"] == "token_expired"
    assert "log in again" in expired.json()["detail"]
    assert wrong.json()["code"] != "token_expired"
    assert client_with(token).get("/api/v1/videos/").json()["code"] != "token_expired"  # gone
