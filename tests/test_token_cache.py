"""The API token cache (uploads/token_cache.py) against the real Redis: a token knox accepted
is served without the database, and any change of a user or token through the ORM retires it
at once (revocation, deactivation, deletion), even when the change commits while a lookup is
under way."""

import json

import pytest
import redis
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework.exceptions import AuthenticationFailed

from tests.factories import TEST_PASSWORD, UserFactory
from uploads import token_cache
from uploads.api.authentication import TokenAuthentication

REDIS_URL = "redis://127.0.0.1:6379/13"

# Commits must happen for real: the cache is retired after a change commits.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def cache_on(settings):
    settings.REDIS_URL = REDIS_URL
    settings.API_TOKEN_CACHE_SECONDS = 30
    store = redis.Redis.from_url(REDIS_URL)
    store.flushdb()
    yield store
    store.flushdb()


@pytest.fixture
def holder():
    account = UserFactory(username="dana")
    token_row, token = AuthToken.objects.create(user=account)
    return account, token_row, token


def authenticate(token: str):
    """What DRF does with `Authorization: Token <token>`, and the queries it made to check
    the token: its reads (the note of its last use, a write at most once a minute, is not
    one of them)."""
    with CaptureQueriesContext(connection) as queries:
        user, auth_token = TokenAuthentication().authenticate_credentials(token.encode())
    reads = [query for query in queries if query["sql"].startswith("SELECT")]
    return user, auth_token, len(reads)


def test_a_token_knox_accepted_is_served_from_the_cache_without_a_query(holder):
    account, token_row, token = holder

    first_user, _, first_queries = authenticate(token)
    user, auth_token, queries = authenticate(token)

    assert first_queries == 2  # knox: the token with its user, then the user's tokens
    assert queries == 0
    assert (user.pk, user.username, user.is_active) == (account.pk, "dana", True)
    assert auth_token.digest == token_row.digest and auth_token.user == user
    assert auth_token.expiry == token_row.expiry  # to the microsecond, through JSON
    # The password hash is deferred, never cached: asking for it reads the database.
    assert "password" in user.get_deferred_fields()
    assert user.check_password(TEST_PASSWORD)


def test_the_cache_holds_neither_the_token_nor_a_password_hash(holder, cache_on):
    account, token_row, token = holder
    authenticate(token)

    stored = b"".join(cache_on.get(key) for key in cache_on.keys("vodportal:api-token:*"))

    assert token.encode() not in stored
    assert account.password.encode() not in stored
    assert cache_on.exists("vodportal:api-token:" + hash_token(token))


def _revoke(account, token_row):
    token_row.delete()


def _deactivate(account, token_row):
    account.is_active = False
    account.save()


def _delete_user(account, token_row):
    account.delete()


@pytest.mark.parametrize("change", [_revoke, _deactivate, _delete_user],
                         ids=["token revoked", "user deactivated", "user deleted"])
def test_a_change_through_the_orm_refuses_the_cached_token_at_once(holder, change):
    account, token_row, token = holder
    authenticate(token)

    change(account, token_row)

    with pytest.raises(AuthenticationFailed):
        authenticate(token)


def test_a_session_login_keeps_the_cache(holder):
    account, _, token = holder
    authenticate(token)

    account.last_login = timezone.now()
    account.save(update_fields=["last_login"])

    assert authenticate(token)[2] == 0


def test_a_change_committed_while_a_lookup_ran_is_never_cached_as_current(holder):
    """The lookup reads the generation, knox reads the rows, the deactivation commits, and
    only then is the (stale) user cached: its generation is already retired."""
    account, token_row, token = holder
    lookup = token_cache.Lookup(hash_token(token))
    stale_user = type(account).objects.get(pk=account.pk)

    with transaction.atomic():
        account.is_active = False
        account.save()
    lookup.remember(stale_user, token_row)

    with pytest.raises(AuthenticationFailed):
        authenticate(token)


def test_a_token_that_expired_while_cached_is_refused(holder, monkeypatch):
    _, token_row, token = holder
    authenticate(token)
    later = token_row.expiry + timezone.timedelta(seconds=1)
    monkeypatch.setattr(timezone, "now", lambda: later)  # for knox too

    with pytest.raises(AuthenticationFailed):
        authenticate(token)
    assert not AuthToken.objects.filter(pk=token_row.pk).exists()  # knox swept it


def test_an_entry_never_outlives_its_token(holder, cache_on):
    _, token_row, token = holder
    AuthToken.objects.filter(pk=token_row.pk).update(
        expiry=timezone.now() + timezone.timedelta(seconds=10))

    authenticate(token)

    assert 0 < cache_on.ttl("vodportal:api-token:" + hash_token(token)) <= 10


def test_a_change_behind_the_orms_back_applies_within_the_cache_lifetime(holder, cache_on):
    account, _, token = holder
    authenticate(token)
    type(account).objects.filter(pk=account.pk).update(is_active=False)  # no signal

    assert authenticate(token)[0].is_active  # still cached: documented bound
    assert 0 < cache_on.ttl("vodportal:api-token:" + hash_token(token)) <= 30


def test_with_redis_down_tokens_are_checked_in_the_database(holder, settings):
    _, token_row, token = holder
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    user, _, queries = authenticate(token)
    token_row.delete()

    assert queries == 2 and user.username == "dana"
    with pytest.raises(AuthenticationFailed):
        authenticate(token)


def test_without_redis_the_cache_is_off(holder, settings):
    settings.REDIS_URL = ""
    _, _, token = holder
    authenticate(token)

    assert authenticate(token)[2] == 2


def test_a_forged_entry_under_another_generation_is_ignored(holder, cache_on):
    """An entry written under an old generation (or by anyone who cannot read the current
    one) is never served."""
    account, token_row, token = holder
    authenticate(token)
    key = "vodportal:api-token:" + hash_token(token)
    generation, user_values, token_values = json.loads(cache_on.get(key))
    cache_on.set(key, json.dumps(["not-the-generation", user_values, token_values]))

    assert authenticate(token)[2] == 2


def test_the_api_answers_a_cached_token_and_refuses_it_once_revoked(holder, client):
    _, token_row, token = holder
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"}

    assert client.get("/api/v1/videos/", **headers).status_code == 200
    assert client.get("/api/v1/videos/", **headers).status_code == 200
    token_row.delete()

    assert client.get("/api/v1/videos/", **headers).status_code == 401


def test_an_unreadable_entry_is_ignored_and_replaced(holder, cache_on):
    _, _, token = holder
    key = "vodportal:api-token:" + hash_token(token)
    authenticate(token)
    generation = cache_on.get("vodportal:api-token:generation").decode()
    for junk in ("not json", json.dumps([generation, ["x"], ["y"]]),
                 json.dumps([generation, [], []]), json.dumps({"a": 1})):
        cache_on.set(key, junk)

        user, _, queries = authenticate(token)

        assert user.username == "dana" and queries == 2
        assert authenticate(token)[2] == 0  # knox's answer was cached again
