"""API token authentication: django-rest-knox's check, with one lookup and no per-request sweep."""

import binascii
from hmac import compare_digest

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS, knox_settings
from knox.signals import token_expired
from rest_framework import exceptions

from .. import statements


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's TokenAuthentication (SHA-512 digest, constant-time compare, expiry, inactive
    users refused) at the cost of one query per request.

    Two differences from knox, both on the hot path of every credential:

    - knox also loads all of the user's other tokens on every request to delete the expired
      ones: a second query for tokens nobody presents any more. Here an expired token is
      refused and deleted when it is presented, as knox does; the others stay until an
      operator clears them (`AuthToken.objects.filter(expiry__lt=now()).delete()`).
    - The token and its user are read with one statement whose SQL is built once
      (`uploads/statements.py`): the ORM spent more CPU compiling this join than anything else
      in the request but the VOD call.
    """

    def authenticate_credentials(self, token):
        message = _("Invalid token.")
        try:
            token = token.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(message) from None
        if not token.isprintable():  # a NUL or control byte: no token has one
            raise exceptions.AuthenticationFailed(message)
        candidates = statements.select_with_related(
            get_token_model(), "user", "token_key", token[:CONSTANTS.TOKEN_KEY_LENGTH])
        for auth_token in candidates:
            if self._cleanup_token(auth_token):
                continue
            try:
                digest = hash_token(token)
            except (TypeError, binascii.Error):
                raise exceptions.AuthenticationFailed(message) from None
            if compare_digest(digest, auth_token.digest):
                if knox_settings.AUTO_REFRESH and auth_token.expiry:
                    self.renew_token(auth_token)
                return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(message)

    def _cleanup_token(self, auth_token) -> bool:
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        username = auth_token.user.get_username()
        auth_token.delete()
        token_expired.send(sender=self.__class__, username=username, source="auth_token")
        return True


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme: knox's (drf-spectacular matches the exact class only)."""

    target_class = TokenAuthentication
