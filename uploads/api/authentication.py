"""API token authentication: django-rest-knox's, refusing malformed tokens before they reach
the database, with the tokens it accepted remembered for a short while (uploads.token_cache).
"""

import contextvars

from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from rest_framework import exceptions

from .. import token_cache, token_use

# The digests of expired tokens knox deleted while checking the token of this request:
# knox answers "Invalid token." for an expired token too, which leaves an app unsure
# whether to log in again or to report a bug.
_expired_swept: contextvars.ContextVar[set[str] | None] = contextvars.ContextVar(
    "vodportal_expired_swept", default=None)


@receiver(post_delete, sender=AuthToken, dispatch_uid="uploads.api.expired_token_swept")
def _token_deleted(sender, instance, **kwargs) -> None:
    swept = _expired_swept.get()
    if swept is not None and instance.expiry is not None and instance.expiry <= timezone.now():
        swept.add(instance.digest)


class TokenExpired(exceptions.AuthenticationFailed):
    default_code = "token_expired"
    default_detail = _("The token has expired; log in again for a new one.")


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's TokenAuthentication (SHA-512 digest, constant-time compare, expiry, inactive
    users refused, expired tokens swept), with one check in front of it.

    knox decodes the presented token as UTF-8 and looks its prefix up as it is: bytes that
    are not UTF-8 raise UnicodeDecodeError (a 500), and a NUL makes PostgreSQL refuse the
    query (another 500). Every token knox issues is printable ASCII, so anything else is
    refused as an invalid token before knox sees it. A token knox accepted is served from
    uploads.token_cache until a user or token changes (or API_TOKEN_CACHE_SECONDS pass).
    """

    def authenticate_credentials(self, token: bytes):
        """Refuse a token that no knox token can be; answer from the cache, or let knox
        check it and remember what knox accepted."""
        try:
            text = token.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        if not text.isprintable():
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        swept = _expired_swept.set(set())
        try:
            user, auth_token = self._checked(token, text)
        except exceptions.AuthenticationFailed:
            if hash_token(text) in _expired_swept.get():
                raise TokenExpired() from None
            raise
        finally:
            _expired_swept.reset(swept)
        token_use.touch(auth_token)
        return user, auth_token

    def _checked(self, token: bytes, text: str):
        if not token_cache.enabled():
            return super().authenticate_credentials(token)
        lookup = token_cache.Lookup(hash_token(text))
        if lookup.found is not None:
            return lookup.found
        user, auth_token = super().authenticate_credentials(token)
        lookup.remember(user, auth_token)
        return user, auth_token


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme: knox's (drf-spectacular matches the exact class only)."""

    target_class = TokenAuthentication
