"""Federated identity: access tokens of a real OpenID Connect provider's public side (its
discovery document and key set, served over HTTP on loopback) let users into the API."""

from __future__ import annotations

import base64
import functools
import json
import secrets
import socket
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from rest_framework.test import APIClient

from tests.conftest import concurrently, wait_until
from tests.factories import UserFactory, VideoUploadFactory
from uploads import oidc
from uploads.models import AuditEvent, ExternalIdentity
from uploads.oidc import keys as oidc_keys

pytestmark = pytest.mark.django_db

AUDIENCE = "vodportal"
VIDEOS = "/api/v1/videos/"


@functools.cache
def rsa_key(index: int):
    """RSA keys are slow to make: each index is made once per test session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@functools.cache
def ec_key(index: int):
    return ec.generate_private_key(ec.SECP256R1())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict, claims: dict, signature: bytes = b"") -> str:
    """A JWT put together by hand: what an attacker sends, which PyJWT would refuse to make."""
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()),
                     b64(signature)])


class IdentityProvider:
    """The public side of an OpenID Connect provider with one realm per issuer, as Keycloak
    lays them out: `/realms/<name>/.well-known/openid-configuration` and its `jwks_uri`.
    Counts every request per path."""

    def __init__(self):
        self.keys: dict[str, list[tuple[str, str, object]]] = {}  # realm: (kid, alg, key)
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                with provider._lock:
                    provider.hits[self.path] += 1
                body = provider._answer(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/json")
                payload = json.dumps(body or {"error": "not found"}).encode()
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        # A short poll: stop() (every test's teardown) waits for it.
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,),
                                       daemon=True)
        self.thread.start()

    def issuer(self, realm: str = "main") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/realms/{realm}"

    def _answer(self, path: str):
        parts = path.strip("/").split("/")
        if len(parts) < 3 or parts[0] != "realms" or parts[1] not in self.keys:
            return None
        realm, rest = parts[1], "/".join(parts[2:])
        if rest == ".well-known/openid-configuration":
            return {"issuer": self.issuer(realm), "jwks_uri": self.issuer(realm) + "/jwks",
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"]}
        if rest == "jwks":
            return {"keys": [self._jwk(kid, alg, key) for kid, alg, key in self.keys[realm]]}
        return None

    @staticmethod
    def _jwk(kid, alg, key):
        family = RSAAlgorithm if alg.startswith(("RS", "PS")) else ECAlgorithm
        return {**family.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": alg,
                "use": "sig"}

    def add_key(self, realm: str = "main", alg: str = "RS256", index: int = 0) -> str:
        kid = f"{realm}-{alg}-{index}"
        key = rsa_key(index) if alg.startswith(("RS", "PS")) else ec_key(index)
        self.keys.setdefault(realm, []).append((kid, alg, key))
        return kid

    def rotate(self, realm: str = "main", alg: str = "RS256", index: int = 1) -> str:
        """The realm publishes a new key in place of its old ones."""
        self.keys[realm] = []
        return self.add_key(realm, alg, index)

    def key(self, kid: str):
        return next(key for keys in self.keys.values() for k, _, key in keys if k == kid)

    def claims(self, realm: str = "main", **overrides) -> dict:
        now = int(time.time())
        return {"iss": self.issuer(realm), "sub": "user-1", "aud": AUDIENCE, "iat": now,
                "nbf": now, "exp": now + 300, "preferred_username": "dana",
                "email": "dana@example.com", **overrides}

    def token(self, realm: str = "main", kid: str | None = None, **overrides) -> str:
        kid = kid or self.keys[realm][0][0]
        alg = next(a for keys in self.keys.values() for k, a, _ in keys if k == kid)
        return jwt.encode(self.claims(realm, **overrides), self.key(kid), algorithm=alg,
                          headers={"kid": kid})

    def jwks_hits(self, realm: str = "main") -> int:
        return self.hits[f"/realms/{realm}/jwks"]

    def discovery_hits(self, realm: str = "main") -> int:
        return self.hits[f"/realms/{realm}/.well-known/openid-configuration"]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def idp():
    provider = IdentityProvider()
    provider.add_key("main", "RS256")
    yield provider
    provider.stop()


@pytest.fixture
def configured(settings, idp):
    """The portal trusts the provider's `main` realm, for the audience `vodportal`."""
    settings.OIDC_ISSUER = idp.issuer()
    settings.OIDC_AUDIENCE = [AUDIENCE]
    settings.OIDC_PROVIDERS = []
    settings.OIDC_ALGORITHMS = ["RS256", "ES256"]
    return idp


def bearer(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def refused(token: str, *words: str):
    """The API answers 401 naming the failed check (and never echoing the token)."""
    response = bearer(token).get(VIDEOS)
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["code"] == "authentication_failed"
    for word in words:
        assert word in body["detail"], body["detail"]
    assert token not in response.content.decode()
    return body


def test_a_good_rs256_token_lets_in_a_user_created_once(configured, caplog):
    caplog.set_level("DEBUG")
    token = configured.token()
    for _ in range(3):
        response = bearer(token).get(VIDEOS, HTTP_USER_AGENT="app/1.0")
        assert response.status_code == 200, response.content
    user = get_user_model().objects.get(external_identities__subject="user-1")
    assert (user.username, user.email) == ("dana@127.0.0.1", "dana@example.com")
    assert not user.is_staff and not user.is_superuser and not user.has_usable_password()
    identity = ExternalIdentity.objects.get()
    assert (identity.issuer, identity.subject, identity.user) == (configured.issuer(), "user-1", user)
    events = AuditEvent.objects.filter(action="auth.oidc.user_created")
    assert events.count() == 1
    assert events.get().data == {"issuer": configured.issuer(), "sub": "user-1",
                                 "username": "dana@127.0.0.1"}
    assert events.get().actor_ref == user.pk and events.get().user_agent == "app/1.0"
    # Three requests, one fetch of each document: a known key costs no network.
    assert (configured.discovery_hits(), configured.jwks_hits()) == (1, 1)
    assert token not in caplog.text
    assert not AuditEvent.objects.filter(data__icontains=token.split(".")[2]).exists()


def test_the_api_answers_the_user_the_token_names(configured):
    token = configured.token()
    assert bearer(token).get(VIDEOS).json()["results"] == []
    user = get_user_model().objects.get(username="dana@127.0.0.1")
    VideoUploadFactory(owner=user, title="mine")
    assert [row["title"] for row in bearer(token).get(VIDEOS).json()["results"]] == ["mine"]


def test_a_good_es256_token_is_accepted(configured):
    kid = configured.rotate("main", "ES256", 0)
    response = bearer(configured.token(kid=kid, sub="ec-user")).get(VIDEOS)
    assert response.status_code == 200, response.content
    assert ExternalIdentity.objects.filter(subject="ec-user").exists()


def test_an_expired_token_is_refused_beyond_the_leeway(configured):
    now = int(time.time())
    refused(configured.token(exp=now - 120, iat=now - 600, nbf=now - 600), "expired")
    # Within the 30 s leeway a clock a little ahead of the provider's does not matter.
    assert bearer(configured.token(exp=now - 10)).get(VIDEOS).status_code == 200


def test_a_token_not_valid_yet_is_refused(configured):
    refused(configured.token(nbf=int(time.time()) + 600), "not valid yet")
    refused(configured.token(iat=int(time.time()) + 600), "not valid yet")
    assert not ExternalIdentity.objects.exists()


def test_a_token_without_exp_is_refused(configured):
    claims = configured.claims()
    del claims["exp"]
    kid = configured.keys["main"][0][0]
    token = jwt.encode(claims, configured.key(kid), algorithm="RS256", headers={"kid": kid})
    refused(token, "exp")


def test_a_token_for_another_audience_is_refused(configured):
    refused(configured.token(aud="some-other-api"), "aud")
    claims = configured.claims()
    del claims["aud"]
    kid = configured.keys["main"][0][0]
    refused(jwt.encode(claims, configured.key(kid), algorithm="RS256", headers={"kid": kid}),
            "aud")


def test_a_token_of_an_issuer_not_configured_is_refused_without_asking_it(configured):
    configured.add_key("elsewhere", "RS256", 2)
    refused(configured.token("elsewhere"), "issuer")
    assert configured.discovery_hits("elsewhere") == configured.jwks_hits("elsewhere") == 0
    # Signed with the trusted realm's key but claiming another issuer: refused too.
    kid = configured.keys["main"][0][0]
    refused(configured.token(kid=kid, iss=configured.issuer("elsewhere")), "issuer")


def test_a_rotated_key_is_fetched_once_and_accepted(configured):
    old = configured.token()
    assert bearer(old).get(VIDEOS).status_code == 200
    new_kid = configured.rotate("main", "RS256", 1)
    assert bearer(configured.token(kid=new_kid)).get(VIDEOS).status_code == 200
    assert configured.jwks_hits() == 2
    # The retired key is gone from the portal's cache with the provider's new set.
    refused(old, "kid")


def test_tokens_with_made_up_kids_do_not_fetch_each_time(configured):
    assert bearer(configured.token()).get(VIDEOS).status_code == 200
    kid = configured.keys["main"][0][0]
    for _ in range(25):
        token = jwt.encode(configured.claims(), configured.key(kid), algorithm="RS256",
                           headers={"kid": secrets.token_hex(8)})
        refused(token, "kid")
    # One refresh for the first unknown kid; the others fall within the cooldown.
    assert configured.jwks_hits() == 2


def test_the_cooldown_passes_and_an_unknown_kid_may_fetch_again(configured, monkeypatch):
    assert bearer(configured.token()).get(VIDEOS).status_code == 200
    refused(handmade({"alg": "RS256", "kid": "nope"}, configured.claims(), b"x"), "kid")
    assert configured.jwks_hits() == 2
    new_kid = configured.rotate("main", "RS256", 1)
    later = time.monotonic() + 31
    monkeypatch.setattr(oidc_keys, "_clock", lambda: later)
    assert bearer(configured.token(kid=new_kid)).get(VIDEOS).status_code == 200
    assert configured.jwks_hits() == 3


def test_a_tampered_token_is_refused(configured):
    header, _, signature = configured.token().split(".")
    forged = b64(json.dumps(configured.claims(sub="someone-else")).encode())
    refused(f"{header}.{forged}.{signature}", "signature")
    good = configured.token()
    flipped = good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1]
    refused(flipped, "signature")
    assert not ExternalIdentity.objects.exists()


def test_alg_none_is_refused_before_any_key_is_fetched(configured):
    kid = configured.keys["main"][0][0]
    refused(handmade({"alg": "none", "kid": kid}, configured.claims()), "algorithm")
    refused(handmade({"alg": "None", "kid": kid}, configured.claims()), "algorithm")
    assert configured.jwks_hits() == 0


def test_hs256_signed_with_the_public_key_is_refused(configured, settings):
    import hmac

    kid = configured.keys["main"][0][0]
    public = configured.key(kid).public_key()
    for secret in (public.public_bytes(serialization.Encoding.PEM,
                                       serialization.PublicFormat.SubjectPublicKeyInfo),
                   json.dumps(RSAAlgorithm.to_jwk(public, as_dict=True)).encode()):
        header, claims = {"alg": "HS256", "kid": kid, "typ": "JWT"}, configured.claims()
        unsigned = handmade(header, claims).rsplit(".", 1)[0]
        signature = hmac.new(secret, unsigned.encode(), "sha256").digest()
        refused(f"{unsigned}.{b64(signature)}", "algorithm")
    # Nor can a configuration allow it.
    settings.OIDC_PROVIDERS = [{"issuer": configured.issuer(), "algorithms": ["HS256"]}]
    with pytest.raises(ImproperlyConfigured, match="algorithms .* must be among"):
        oidc.parse_providers()


def test_a_key_of_the_wrong_type_for_the_alg_is_refused(configured):
    ec_kid = configured.add_key("main", "ES256", 0)
    # RS256 naming the EC key: the key's type and alg must fit the token's alg.
    rs_token = jwt.encode(configured.claims(), rsa_key(0), algorithm="RS256",
                          headers={"kid": ec_kid})
    refused(rs_token, "does not fit")


def test_a_user_disabled_by_staff_is_refused(configured):
    token = configured.token()
    assert bearer(token).get(VIDEOS).status_code == 200
    user = get_user_model().objects.get(username="dana@127.0.0.1")
    user.is_active = False
    user.save()
    refused(token, "inactive")


def test_a_local_account_with_the_same_name_is_never_taken_over(configured):
    local = UserFactory(username="dana", email="local@example.com")
    squatter = UserFactory(username="dana@127.0.0.1")
    VideoUploadFactory(owner=local, title="local's")
    VideoUploadFactory(owner=squatter, title="squatter's")
    response = bearer(configured.token()).get(VIDEOS)
    assert response.status_code == 200 and response.json()["results"] == []
    created = ExternalIdentity.objects.get().user
    assert created.username == "dana-2@127.0.0.1"
    assert created.pk not in (local.pk, squatter.pk)
    local.refresh_from_db()
    assert local.email == "local@example.com" and local.has_usable_password()
    assert not local.external_identities.exists() and not squatter.external_identities.exists()


def test_two_issuers_each_with_their_own_keys_and_users(settings, idp):
    idp.add_key("partner", "ES256", 0)
    settings.OIDC_ISSUER = ""
    settings.OIDC_PROVIDERS = [
        {"issuer": idp.issuer("main"), "audience": AUDIENCE, "algorithms": ["RS256"]},
        {"issuer": idp.issuer("partner"), "audience": ["partner-api", AUDIENCE],
         "algorithms": "ES256", "username_claim": "nickname"},
    ]
    assert bearer(idp.token("main", sub="42")).get(VIDEOS).status_code == 200
    assert bearer(idp.token("partner", sub="42", nickname="pat")).get(VIDEOS).status_code == 200
    identities = ExternalIdentity.objects.order_by("issuer")
    assert [(i.issuer, i.subject) for i in identities] == [
        (idp.issuer("main"), "42"), (idp.issuer("partner"), "42")]
    assert {i.user.username for i in identities} == {"dana@127.0.0.1", "pat@127.0.0.1"}
    # A token claiming `main` but signed with the partner's key: main has no such key.
    partner_kid = idp.keys["partner"][0][0]
    refused(idp.token("partner", kid=partner_kid, iss=idp.issuer("main")))
    # Each provider's own algorithms: main does not take ES256 at all.
    main_ec = jwt.encode(idp.claims("main"), ec_key(0), algorithm="ES256",
                         headers={"kid": partner_kid})
    refused(main_ec, "algorithm")


def test_an_explicit_jwks_url_skips_discovery(configured, settings):
    settings.OIDC_JWKS_URL = configured.issuer() + "/jwks"
    assert bearer(configured.token()).get(VIDEOS).status_code == 200
    assert (configured.discovery_hits(), configured.jwks_hits()) == (0, 1)


def test_a_provider_down_is_a_503_naming_it(configured):
    issuer = configured.issuer()
    token = configured.token()
    configured.stop()
    response = bearer(token).get(VIDEOS)
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["code"] == "identity_provider_unavailable"
    assert issuer in body["detail"] and token not in response.content.decode()
    assert int(response["Retry-After"]) > 0


def test_a_provider_that_never_answers_is_a_503_within_the_timeout(settings):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections are accepted by the kernel and never answered
    try:
        settings.OIDC_ISSUER = f"http://127.0.0.1:{silent.getsockname()[1]}/realms/main"
        settings.OIDC_AUDIENCE = [AUDIENCE]
        settings.OIDC_HTTP_TIMEOUT_SECONDS = 0.3
        token = handmade({"alg": "RS256", "kid": "k"},
                         {"iss": settings.OIDC_ISSUER, "sub": "x"}, b"sig")
        started = time.monotonic()
        response = bearer(token).get(VIDEOS)
        assert response.status_code == 503 and time.monotonic() - started < 3
        # Within the backoff the next request does not wait on the provider again.
        started = time.monotonic()
        assert bearer(token).get(VIDEOS).status_code == 503
        assert time.monotonic() - started < 0.25
    finally:
        silent.close()


def test_known_keys_outlive_a_provider_outage_for_a_while(configured, monkeypatch):
    token = configured.token()
    assert bearer(token).get(VIDEOS).status_code == 200
    configured.stop()
    start = time.monotonic()
    monkeypatch.setattr(oidc_keys, "_clock", lambda: start + 600)  # the cache has expired
    assert bearer(token).get(VIDEOS).status_code == 200
    monkeypatch.setattr(oidc_keys, "_clock", lambda: start + 5000)  # and the grace too
    assert bearer(token).get(VIDEOS).status_code == 503


def test_without_oidc_a_bearer_token_is_not_accepted(settings, idp):
    settings.OIDC_ISSUER = ""
    settings.OIDC_PROVIDERS = []
    response = bearer(idp.token()).get(VIDEOS)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"
    assert idp.hits.total() == 0 and not get_user_model().objects.exists()


def test_knox_tokens_and_sessions_keep_working_beside_oidc(configured, api, client, user):
    assert api.get(VIDEOS).status_code == 200
    client.force_login(user)
    assert client.get(VIDEOS).status_code == 200
    assert configured.hits.total() == 0


def test_a_broken_configuration_is_refused(settings):
    for bad in ([{"issuer": "http://idp.example.com"}],  # keys over plain HTTP
                [{"issuer": "https://idp.example.com", "algorithms": ["none"]}],
                [{"issuer": "https://idp.example.com", "audiense": "x"}],  # a typo
                [{"issuer": "https://a.example"}, {"issuer": "https://a.example"}]):
        settings.OIDC_PROVIDERS = bad
        with pytest.raises(ImproperlyConfigured):
            oidc.parse_providers()
    assert [e.id for e in oidc.config.check_oidc_settings()] == ["uploads.E010"]
    response = bearer("a.b.c").get(VIDEOS)
    assert (response.status_code, response.json()["code"]) == (503, "identity_provider_not_configured")


def test_the_schema_lists_both_ways_in(client):
    schema = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["oidcBearer"]["scheme"] == "bearer"
    assert schemes["oidcBearer"]["bearerFormat"] == "JWT"
    assert "knoxApiToken" in schemes
    security = schema["paths"][VIDEOS]["get"]["security"]
    assert {"oidcBearer": []} in security and {"knoxApiToken": []} in security


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_requests_create_one_user(configured):
    token = configured.token()
    statuses = concurrently(*[lambda: bearer(token).get(VIDEOS).status_code] * 4)
    assert statuses == [200] * 4
    assert ExternalIdentity.objects.count() == 1
    assert get_user_model().objects.count() == 1
    wait_until(lambda: AuditEvent.objects.filter(action="auth.oidc.user_created").count() == 1,
               timeout=5, what="the creation's audit event")
