"""One provider's signing keys: discovered, fetched over HTTP with a short timeout, cached
and parsed once, refreshed on rotation without letting made-up key ids cause fetches."""

from __future__ import annotations

import http.client
import json
import logging
import threading
import time
import urllib.request
from dataclasses import dataclass
from typing import Any

import jwt
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from .config import (
    RETRY_AFTER_FAILURE_SECONDS,
    Provider,
    ProviderUnavailable,
    TokenRejected,
    check_url,
)

logger = logging.getLogger("uploads.auth")

# The JWK key type each algorithm needs, and for ECDSA the curve (RFC 7518 3.4).
_KTY = {**dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), "RSA"),
        "ES256": "EC", "ES384": "EC", "ES512": "EC", "EdDSA": "OKP"}
_EC_CURVE = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}
_PARSERS = {"RSA": RSAAlgorithm, "EC": ECAlgorithm, "OKP": OKPAlgorithm}
# Discovery documents and key sets are a few KB; a provider answering megabytes is broken.
_MAX_DOCUMENT_BYTES = 512 * 1024
# The discovery document (where the keys are) changes far less often than the keys.
_DISCOVERY_TTL_SECONDS = 3600
_MIN_RSA_BITS = 2048
# The clock the caches run on (tests move it forward instead of sleeping).
_clock = time.monotonic


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # The URLs are configured or come from the provider's own document: a redirect
    # elsewhere is not followed.
    def redirect_request(self, *args, **kwargs):
        return None


def _get_json(url: str, issuer: str) -> dict[str, Any]:
    timeout = getattr(settings, "OIDC_HTTP_TIMEOUT_SECONDS", 3.0)
    try:
        # An opener per fetch (fetches are rare): nothing shared between threads.
        opener = urllib.request.build_opener(_NoRedirect())
        with opener.open(urllib.request.Request(url, headers={"Accept": "application/json"}),
                         timeout=timeout) as response:
            body = response.read(_MAX_DOCUMENT_BYTES + 1)
        if len(body) > _MAX_DOCUMENT_BYTES:
            raise ValueError("document too large")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        return document
    except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError, timeouts, bad JSON
        logger.warning("OIDC provider %s: fetching %s failed (%s: %s)", issuer, url,
                       type(exc).__name__, exc)
        raise ProviderUnavailable(issuer) from exc


@dataclass(frozen=True)
class _Key:
    kty: str
    crv: str | None
    alg: str | None
    key: Any  # a cryptography public key object, parsed once when the set is fetched

    def fits(self, alg: str) -> bool:
        """Whether this key may verify a token signed with `alg`."""
        if self.kty != _KTY[alg] or (self.alg is not None and self.alg != alg):
            return False
        return alg not in _EC_CURVE or self.crv == _EC_CURVE[alg]


def _parse_key_set(document: dict[str, Any], issuer: str) -> dict[str | None, list[_Key]]:
    keys: dict[str | None, list[_Key]] = {}
    for entry in document.get("keys") if isinstance(document.get("keys"), list) else []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kty, kid = entry.get("kty"), entry.get("kid")
        if kty not in _PARSERS or (kid is not None and not isinstance(kid, str)):
            continue  # "oct" (shared secrets) is never used
        try:
            key = _PARSERS[kty].from_jwk(entry)
        except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            logger.warning("OIDC provider %s: key %r skipped (%s)", issuer, kid, exc)
            continue
        key = key.public_key() if hasattr(key, "private_bytes") else key
        if kty == "RSA" and key.key_size < _MIN_RSA_BITS:
            continue
        keys.setdefault(kid, []).append(_Key(kty, entry.get("crv"), entry.get("alg"), key))
    return keys


class KeySet:
    """One provider's signing keys: discovered, fetched and cached, thread-safe.

    A known key costs no network and no lock. The set is fetched when it is older than
    OIDC_JWKS_CACHE_SECONDS, and when a token names an unknown `kid` (a rotation), but that
    at most once per OIDC_JWKS_REFRESH_COOLDOWN_SECONDS: tokens with made-up kids cannot
    make us fetch on every request. One thread fetches while the others wait for its result.
    If a refresh fails, the keys already known serve for OIDC_JWKS_STALE_SECONDS more.
    """

    def __init__(self, provider: Provider):
        self.provider = provider
        self._lock = threading.Lock()
        self._keys: dict[str | None, list[_Key]] = {}
        self._fetched_at: float | None = None
        self._forced_at: float | None = None
        self._failed_at: float | None = None
        self._jwks_url = provider.jwks_url
        self._discovered_at: float | None = None

    def key_for(self, kid: str | None, alg: str) -> Any:
        """The public key to verify a token with this `kid` and `alg`; TokenRejected if the
        provider has none that fits, ProviderUnavailable if its keys cannot be had."""
        now = _clock()
        fetched_at = self._fetched_at
        # The fast path, without the lock: `_keys` is only ever replaced whole.
        if (fetched_at is not None and now - fetched_at < _setting("OIDC_JWKS_CACHE_SECONDS", 300)
                and (kid in self._keys or kid is None)):
            return self._pick(kid, alg)
        with self._lock:
            now = _clock()
            age = None if self._fetched_at is None else now - self._fetched_at
            if age is not None and age < _setting("OIDC_JWKS_CACHE_SECONDS", 300):
                if kid not in self._keys and kid is not None:
                    cooldown = _setting("OIDC_JWKS_REFRESH_COOLDOWN_SECONDS", 30)
                    if self._forced_at is not None and now - self._forced_at < cooldown:
                        raise TokenRejected("The token's key (kid) is not one of the provider's.")
                    self._forced_at = now
                    self._fetch(now)
            else:
                try:
                    self._fetch(now)
                except ProviderUnavailable:
                    stale = _setting("OIDC_JWKS_STALE_SECONDS", 3600)
                    if age is None or age > _setting("OIDC_JWKS_CACHE_SECONDS", 300) + stale:
                        raise
                    logger.warning("OIDC provider %s: using its keys fetched %d s ago",
                                   self.provider.issuer, age)
            return self._pick(kid, alg)

    def _pick(self, kid: str | None, alg: str) -> Any:
        if kid is None:
            # No kid: acceptable only when the provider publishes a single key.
            candidates = [key for keys in self._keys.values() for key in keys]
            if len(candidates) != 1:
                raise TokenRejected("The token names no key (kid) and the provider has several.")
        else:
            candidates = self._keys.get(kid, [])
            if not candidates:
                raise TokenRejected("The token's key (kid) is not one of the provider's.")
        for key in candidates:
            if key.fits(alg):
                return key.key
        raise TokenRejected("The token's algorithm does not fit the provider's key.")

    def _fetch(self, now: float) -> None:
        if self._failed_at is not None and now - self._failed_at < RETRY_AFTER_FAILURE_SECONDS:
            raise ProviderUnavailable(self.provider.issuer)
        try:
            document = _get_json(self._keys_url(now), self.provider.issuer)
        except ProviderUnavailable:
            self._failed_at = now
            raise
        self._failed_at = None
        self._keys = _parse_key_set(document, self.provider.issuer)
        self._fetched_at = now

    def _keys_url(self, now: float) -> str:
        if self.provider.jwks_url:
            return self.provider.jwks_url
        if self._discovered_at is not None and now - self._discovered_at < _DISCOVERY_TTL_SECONDS:
            return self._jwks_url
        issuer = self.provider.issuer
        try:
            document = _get_json(issuer.rstrip("/") + "/.well-known/openid-configuration", issuer)
        except ProviderUnavailable:
            if self._jwks_url:  # the address we had still serves
                return self._jwks_url
            raise
        jwks_uri = document.get("jwks_uri")
        # OpenID Connect Discovery 1.0, 4.3: the document must name the issuer it belongs to.
        if document.get("issuer") != issuer or not isinstance(jwks_uri, str):
            logger.warning("OIDC provider %s: discovery document names another issuer or no "
                           "jwks_uri", issuer)
            raise ProviderUnavailable(issuer)
        try:
            check_url(jwks_uri, "jwks_uri")
        except ImproperlyConfigured as exc:
            logger.warning("OIDC provider %s: %s", issuer, exc)
            raise ProviderUnavailable(issuer) from exc
        self._jwks_url, self._discovered_at = jwks_uri, now
        return jwks_uri


def _setting(name: str, default: float) -> float:
    return getattr(settings, name, default)


_lock = threading.Lock()
_key_sets: dict[str, KeySet] = {}


def key_set(provider: Provider) -> KeySet:
    """The process-wide key cache of `provider`."""
    found = _key_sets.get(provider.issuer)
    if found is None:
        with _lock:
            found = _key_sets.setdefault(provider.issuer, KeySet(provider))
    return found


def forget() -> None:
    """Drop every cached discovery document and key set."""
    with _lock:
        _key_sets.clear()
