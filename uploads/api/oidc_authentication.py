"""`Authorization: Bearer <JWT access token>` from a configured OpenID Connect provider
(uploads.oidc), next to knox's `Token` scheme and the browser's session."""

import logging

from django.core.exceptions import ImproperlyConfigured
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from .. import oidc

logger = logging.getLogger("uploads.auth")


class IdentityProviderUnavailable(exceptions.APIException):
    """503 naming the provider whose keys were needed and could not be fetched."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "identity_provider_unavailable"

    def __init__(self, issuer: str, retry_after: int):
        super().__init__(f"The identity provider {issuer} is unavailable at the moment; "
                         "retry after the given delay.")
        # DRF's handler turns `wait` into Retry-After.
        self.wait = retry_after


class IdentityProviderNotConfigured(exceptions.APIException):
    """503: OIDC_ISSUER / OIDC_PROVIDERS do not parse; its operators must fix them."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_code = "identity_provider_not_configured"
    default_detail = ("Sign-in with an identity provider is not configured correctly; "
                      "its operators have been told.")


class OIDCAuthentication(BaseAuthentication):
    """Lets in a request whose Bearer token a configured provider issued and signed.

    Without any provider configured, Bearer headers are left alone (the request stays
    anonymous, so the API answers 401 as it always did). `request.auth` is an
    `oidc.Verified` (issuer, subject, claims), never the token.
    """

    keyword = b"bearer"

    def authenticate(self, request):
        """The user and the verified claims, None when this is not a Bearer request."""
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        try:
            if not oidc.enabled():
                return None
        except ImproperlyConfigured as exc:
            # Only Bearer requests meet a broken OIDC configuration: a 503 that says so
            # (logged, and `oidc.config.check_oidc_settings` says why), not a 500.
            logger.error("OIDC is misconfigured: %s", exc)
            raise IdentityProviderNotConfigured() from None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: "
                                                  "send `Bearer <token>`.")
        try:
            token = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("The bearer token is not a well-formed JWT.") from None
        try:
            verified = oidc.verify(token)
            user = oidc.user_for(verified, request=request)
        except oidc.TokenRejected as exc:
            raise exceptions.AuthenticationFailed(exc.reason) from None
        except oidc.ProviderUnavailable as exc:
            raise IdentityProviderUnavailable(exc.issuer, exc.retry_after) from None
        return user, verified

    def authenticate_header(self, request):
        """What a 401 would name if this class came first (knox's `Token` comes first)."""
        return 'Bearer realm="api"'


class BearerScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme for provider-issued access tokens."""

    target_class = OIDCAuthentication
    name = "oidcBearer"

    def get_security_definition(self, auto_schema):
        """HTTP bearer, JWT: an access token from one of the portal's OpenID Connect
        providers."""
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                "description": "An access token (JWT) issued by one of the OpenID Connect "
                               "providers this portal trusts (OIDC_ISSUER / OIDC_PROVIDERS)."}
