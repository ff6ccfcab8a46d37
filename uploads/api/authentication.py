"""API token authentication: django-rest-knox's, refusing malformed tokens before they reach
the database."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from rest_framework import exceptions


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's TokenAuthentication (SHA-512 digest, constant-time compare, expiry, inactive
    users refused, expired tokens swept), with one check in front of it.

    knox decodes the presented token as UTF-8 and looks its prefix up as it is: bytes that
    are not UTF-8 raise UnicodeDecodeError (a 500), and a NUL makes PostgreSQL refuse the
    query (another 500). Every token knox issues is printable ASCII, so anything else is
    refused as an invalid token before knox sees it.
    """

    def authenticate_credentials(self, token: bytes):
        """Refuse a token that no knox token can be, then let knox check it."""
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not text.isprintable():
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return super().authenticate_credentials(token)


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme: knox's (drf-spectacular matches the exact class only)."""

    target_class = TokenAuthentication
