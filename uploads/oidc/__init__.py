"""Federated identity: API requests carrying an OpenID Connect provider's JWT access token.

`verify()` checks a token against the provider its (unverified) `iss` names, strictly:
signature with the provider's published keys (JWKS), the issuer exactly, the audience when
one is configured, `exp` required, `nbf`/`iat` with a leeway, the algorithm from the
provider's allow-list of asymmetric ones, the key's type fitting that algorithm. `user_for()`
maps the verified (issuer, sub) to a local user through `ExternalIdentity`, creating it on
first sight. Only access tokens are verified; there is no login flow (docs/architecture.md).
The token itself is never logged, stored or put in an error.
"""

from __future__ import annotations

import jwt
from django.core.signals import setting_changed
from django.dispatch import receiver

from . import keys
from . import config
from .config import (
    ALLOWED_ALGORITHMS,
    Provider,
    ProviderUnavailable,
    TokenRejected,
    Verified,
    enabled,
    parse_providers,
    providers,
)
from .users import user_for

__all__ = ["ALLOWED_ALGORITHMS", "Provider", "ProviderUnavailable", "TokenRejected",
           "Verified", "enabled", "parse_providers", "providers", "reset", "user_for", "verify"]

# Real access tokens are 1-2 KB; anything far larger is refused before it is parsed.
MAX_TOKEN_BYTES = 16384


def reset() -> None:
    """Forget the parsed configuration and every cached discovery document and key set."""
    config.forget()
    keys.forget()


@receiver(setting_changed, dispatch_uid="uploads.oidc.setting_changed")
def _settings_changed(sender, setting, **kwargs) -> None:
    if setting.startswith("OIDC_"):
        reset()


def verify(token: str) -> Verified:
    """Check `token` as described in the module docstring; the verified claims, or
    TokenRejected / ProviderUnavailable."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected("The bearer token is too long.")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRejected("The bearer token is not a well-formed JWT.") from None
    issuer = unverified.get("iss")
    provider = providers().get(issuer) if isinstance(issuer, str) else None
    if provider is None:
        raise TokenRejected("The token's issuer (iss) is not accepted.")
    alg, kid = header.get("alg"), header.get("kid")
    # Checked before any key is looked up: "none" and HS* never reach a key or the network.
    if not isinstance(alg, str) or alg not in provider.algorithms:
        raise TokenRejected("The token's signing algorithm (alg) is not accepted.")
    if kid is not None and not isinstance(kid, str):
        raise TokenRejected("The token's key (kid) is not one of the provider's.")
    key = keys.key_set(provider).key_for(kid, alg)
    try:
        claims = jwt.decode(
            token, key, algorithms=[alg], issuer=provider.issuer,
            audience=list(provider.audience) or None, leeway=provider.leeway_seconds,
            options={"require": ["exp", "iss", "sub"], "verify_aud": bool(provider.audience)})
    except jwt.InvalidSignatureError:
        raise TokenRejected("The token's signature does not verify.") from None
    except jwt.ExpiredSignatureError:
        raise TokenRejected("The token has expired (exp).") from None
    except jwt.ImmatureSignatureError:
        raise TokenRejected("The token is not valid yet (nbf or iat).") from None
    except jwt.InvalidAudienceError:
        raise TokenRejected("The token is not meant for this API (aud).") from None
    except jwt.InvalidIssuerError:
        raise TokenRejected("The token's issuer (iss) is not accepted.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenRejected(f"The token has no {exc.claim} claim.") from None
    except jwt.PyJWTError:
        raise TokenRejected("The token is invalid.") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise TokenRejected("The token's subject (sub) is not usable.")
    return Verified(issuer=provider.issuer, subject=subject, claims=claims)


