"""API token authentication: django-rest-knox's check, without its per-request sweep."""

from django.utils import timezone
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.signals import token_expired


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's TokenAuthentication (SHA-512 digest, constant-time compare, expiry) minus one
    query per request.

    On every request knox also loads all of the user's other tokens to delete the expired
    ones: a second query on the hot path of each credential, for tokens nobody presents any
    more. Here an expired token is refused and deleted when it is presented, as knox does;
    the others stay until an operator clears them
    (`AuthToken.objects.filter(expiry__lt=now()).delete()`).
    """

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
