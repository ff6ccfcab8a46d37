"""Which OpenID Connect providers are trusted, and how each one's tokens are checked:
OIDC_ISSUER (with the other OIDC_* settings) and OIDC_PROVIDERS, parsed and validated once."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured

# Asymmetric only: with an HS* algorithm a provider's *public* key would serve as the HMAC
# secret, so anyone could sign. "none" is never a choice either.
ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                                "ES256", "ES384", "ES512", "EdDSA"})
_PROVIDER_KEYS = {"issuer", "audience", "jwks_url", "username_claim", "email_claim",
                  "algorithms", "leeway_seconds"}
_LOOPBACK = re.compile(r"^(127\.\d+\.\d+\.\d+|localhost|::1)$")
# After a failed fetch, requests are answered 503 at once for this long instead of each
# waiting out the timeout against a provider that is down.
RETRY_AFTER_FAILURE_SECONDS = 5


class TokenRejected(Exception):
    """The token failed a check. `reason` says which, for the client; never the token."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class ProviderUnavailable(Exception):
    """The provider's discovery document or keys were needed and could not be fetched."""

    def __init__(self, issuer: str, retry_after: int = RETRY_AFTER_FAILURE_SECONDS):
        super().__init__(f"identity provider {issuer} unavailable")
        self.issuer = issuer
        self.retry_after = retry_after


@dataclass(frozen=True)
class Provider:
    """One trusted issuer and how its tokens are checked."""

    issuer: str
    audience: tuple[str, ...] = ()
    jwks_url: str = ""
    username_claim: str = "preferred_username"
    email_claim: str = "email"
    algorithms: frozenset[str] = frozenset({"RS256", "ES256"})
    leeway_seconds: int = 30


@dataclass(frozen=True)
class Verified:
    """What DRF's `request.auth` holds for a request let in by a provider's token."""

    issuer: str
    subject: str
    claims: dict[str, Any] = field(repr=False, compare=False)


def _as_list(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)) and all(isinstance(part, str) for part in value):
        return list(value)
    raise ImproperlyConfigured(f"OIDC: expected a string or a list of strings, got {value!r}")


def check_url(url: str, what: str) -> None:
    """https only, except on loopback (a local provider): keys fetched over plain HTTP from
    elsewhere could be swapped by anyone on the path."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and _LOOPBACK.match(parts.hostname or "")):
        return
    raise ImproperlyConfigured(f"OIDC: {what} must be an https URL (http only on loopback): {url!r}")


def _provider(entry: dict[str, Any], defaults: dict[str, Any]) -> Provider:
    unknown = set(entry) - _PROVIDER_KEYS
    if unknown:
        raise ImproperlyConfigured(f"OIDC_PROVIDERS: unknown keys {sorted(unknown)}")
    merged = {**defaults, **entry}
    issuer = merged.get("issuer")
    if not isinstance(issuer, str) or not issuer or len(issuer) > 255:
        raise ImproperlyConfigured("OIDC: every provider needs an issuer (a URL, at most 255 "
                                   "characters)")
    check_url(issuer, "the issuer")
    if merged.get("jwks_url"):
        check_url(merged["jwks_url"], "OIDC_JWKS_URL / jwks_url")
    try:
        leeway = int(merged.get("leeway_seconds", 30))
    except (TypeError, ValueError):
        raise ImproperlyConfigured(f"OIDC: leeway_seconds for {issuer} must be a number") from None
    algorithms = frozenset(_as_list(merged.get("algorithms")))
    if not algorithms or not algorithms <= ALLOWED_ALGORITHMS:
        raise ImproperlyConfigured(
            f"OIDC: algorithms for {issuer} must be among {sorted(ALLOWED_ALGORITHMS)}")
    return Provider(issuer=issuer, audience=tuple(_as_list(merged.get("audience"))),
                    jwks_url=merged.get("jwks_url") or "",
                    username_claim=merged.get("username_claim") or "preferred_username",
                    email_claim=merged.get("email_claim") or "email",
                    algorithms=algorithms, leeway_seconds=leeway)


def parse_providers() -> dict[str, Provider]:
    """The configured providers by issuer: OIDC_ISSUER (with the other OIDC_* settings) and
    each object of OIDC_PROVIDERS (keys it omits take those OIDC_* values, except the issuer
    and jwks_url). Raises ImproperlyConfigured for a malformed configuration."""
    defaults = {"audience": getattr(settings, "OIDC_AUDIENCE", []),
                "username_claim": getattr(settings, "OIDC_USERNAME_CLAIM", "preferred_username"),
                "email_claim": getattr(settings, "OIDC_EMAIL_CLAIM", "email"),
                "algorithms": getattr(settings, "OIDC_ALGORITHMS", ["RS256", "ES256"]),
                "leeway_seconds": getattr(settings, "OIDC_LEEWAY_SECONDS", 30)}
    entries = list(getattr(settings, "OIDC_PROVIDERS", None) or [])
    if not all(isinstance(entry, dict) for entry in entries):
        raise ImproperlyConfigured("OIDC_PROVIDERS must be a JSON list of objects")
    if getattr(settings, "OIDC_ISSUER", ""):
        entries.insert(0, {"issuer": settings.OIDC_ISSUER,
                           "jwks_url": getattr(settings, "OIDC_JWKS_URL", "")})
    found: dict[str, Provider] = {}
    for entry in entries:
        provider = _provider(entry, defaults)
        if provider.issuer in found:
            raise ImproperlyConfigured(f"OIDC: issuer {provider.issuer} is configured twice")
        found[provider.issuer] = provider
    return found


_lock = threading.Lock()
_providers: dict[str, Provider] | None = None


def providers() -> dict[str, Provider]:
    """The configured providers, parsed once (again after a settings change in tests)."""
    global _providers
    if _providers is None:
        with _lock:
            if _providers is None:
                _providers = parse_providers()
    return _providers


def enabled() -> bool:
    """Whether any provider is configured (else Bearer tokens are not looked at)."""
    return bool(providers())


def forget() -> None:
    """Parse the settings again at the next request (after a settings change in tests)."""
    global _providers
    with _lock:
        _providers = None


@register(Tags.security)
def check_oidc_settings(app_configs=None, **kwargs):
    """A malformed OIDC configuration stops the process; a provider without audience is
    worth a warning (its tokens meant for any other API would be accepted too)."""
    try:
        found = parse_providers()
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="uploads.E010")]
    return [Warning(f"OIDC provider {p.issuer} has no audience: its access tokens for any API "
                    "are accepted.", hint="Set OIDC_AUDIENCE (or the provider's audience).",
                    id="uploads.W010") for p in found.values() if not p.audience]


