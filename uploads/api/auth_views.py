"""Signing in from an app: a knox API token for a username and password, the user's tokens,
logging out one token or every one.

The login is Django's `authenticate()` with the request, so django-axes counts failures and
locks an address out exactly as on the login pages, and Django's login signals write the
audit trail (`auth.login`, `auth.login.failed`, `auth.locked_out`); the token is knox's,
created by knox's LoginView and audited (`auth.token.created`) with the user as actor.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_out
from django.db.models import Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from knox.models import AuthToken
from knox.views import LoginView
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from .. import auth_audit, ratelimit
from ..audit import RequestContext
from ..middleware import client_ip
from .authentication import TokenAuthentication

# A token is shown once, in this answer: never stored by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class TokenLoginSerializer(serializers.Serializer):
    """A username and password, as the login page takes them."""

    username = serializers.CharField(max_length=150, trim_whitespace=False)
    password = serializers.CharField(max_length=1024, trim_whitespace=False, write_only=True,
                                     style={"input_type": "password"})


class IssuedTokenSerializer(serializers.Serializer):
    """A new API token: shown once, here, and never again."""

    token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")
    expiry = serializers.DateTimeField(allow_null=True)
    token_id = serializers.CharField(help_text="A non-secret name for the token (the start of "
                                               "its digest), as GET /auth/tokens/ lists it.")


class TokenInfoSerializer(serializers.Serializer):
    """One of the user's tokens, without the token."""

    token_id = serializers.CharField()
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField(allow_null=True)
    last_used = serializers.DateTimeField(allow_null=True,
                                          help_text="To the minute; null if never used.")
    current = serializers.BooleanField(help_text="Whether this request was made with it.")


class LoginThrottle(BaseThrottle):
    """API_LOGIN_RATE login attempts per client address, shared by every process."""

    def __init__(self):
        self._wait = None

    def allow_request(self, request, view) -> bool:
        self._wait = ratelimit.hit(settings.API_LOGIN_RATE, "vodportal-login",
                                   client_ip(request) or "unknown")
        return not self._wait

    def wait(self):
        return self._wait


class LockedOut(exceptions.APIException):
    """django-axes has locked this address out after too many failed logins."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "locked_out"
    default_detail = "Too many failed logins from this address; try again later."


class InvalidCredentials(exceptions.AuthenticationFailed):
    default_code = "invalid_credentials"
    default_detail = "The username or password is wrong, or the account is disabled."


def _context(request, user) -> RequestContext:
    return RequestContext(actor=user, request_id=getattr(request, "request_id", ""),
                          client_ip=client_ip(request),
                          user_agent=request.headers.get("User-Agent", "")[:256])


class TokenView(LoginView):
    """POST: log in for a new token. DELETE: log out the token this request was made with."""

    serializer_class = TokenLoginSerializer
    error_statuses = (400, 401, 429, 500, 503)

    def _logging_in(self) -> bool:
        # No request while the OpenAPI schema is generated (POST says auth=[] there).
        return getattr(self.request, "method", None) == "POST"

    def get_authenticators(self):
        # The login itself takes a password, not a token or a session.
        return [] if self._logging_in() else [TokenAuthentication()]

    def get_permissions(self):
        return [AllowAny()] if self._logging_in() else [IsAuthenticated()]

    def get_throttles(self):
        return [LoginThrottle()] if self._logging_in() else []

    def get_post_response_data(self, request, token, instance):
        """knox's answer (token, expiry) and the token's non-secret name."""
        return {**super().get_post_response_data(request, token, instance),
                "token_id": auth_audit.token_id(instance)}

    def get_post_response(self, request, token, instance):
        """The new token, with no-store: it is shown once."""
        return Response(self.get_post_response_data(request, token, instance),
                        status=status.HTTP_201_CREATED, headers=NO_STORE)

    def get_authenticate_header(self, request):
        return "Token"

    @extend_schema(
        request=TokenLoginSerializer, auth=[], responses={201: IssuedTokenSerializer},
        description="Log in with a username and password for a new API token (shown once). "
                    "401 `invalid_credentials`: wrong username or password, or the account "
                    "is disabled. 429 `throttled` (too many attempts from this address) or "
                    "`locked_out` (too many failed logins: the same count as the login "
                    "pages').")
    def post(self, request, format=None):
        """Check the password (django-axes counting), then let knox issue the token."""
        incoming = TokenLoginSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        user = authenticate(request=request, username=incoming.validated_data["username"],
                            password=incoming.validated_data["password"])
        if getattr(request, "axes_locked_out", False):
            raise LockedOut()
        if user is None:
            raise InvalidCredentials()
        request.user = user
        with auth_audit.acting_as(_context(request, user)):
            return super().post(request, format)

    @extend_schema(request=None, responses={204: None},
                   description="Log out: the token this request was made with stops working.")
    def delete(self, request, format=None):
        """Delete the token this request was made with."""
        with auth_audit.acting_as(_context(request, request.user)):
            request.auth.delete()
        user_logged_out.send(sender=type(request.user), request=request, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokensView(APIView):
    """GET: the user's tokens (never the tokens themselves). DELETE: log out everywhere.
    Any way in will do (a token, the browser's session, a provider's access token)."""

    @extend_schema(responses={200: TokenInfoSerializer(many=True)},
                   description="Your API tokens, newest first: when each was created, when it "
                               "expires, when it was last used, and which one this is.")
    def get(self, request, format=None):
        """The user's unexpired tokens, newest first."""
        current = request.auth.digest if isinstance(request.auth, AuthToken) else None
        tokens = (AuthToken.objects.filter(user=request.user)
                  .filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))
                  .select_related("use").order_by("-created"))
        rows = [{"token_id": auth_audit.token_id(token), "created": token.created,
                 "expiry": token.expiry,
                 "last_used": getattr(getattr(token, "use", None), "last_used_at", None),
                 "current": token.digest == current}
                for token in tokens]
        return Response(TokenInfoSerializer(rows, many=True).data, headers=NO_STORE)

    @extend_schema(request=None, responses={204: None},
                   description="Log out everywhere: every one of your tokens stops working.")
    def delete(self, request, format=None):
        """Delete every token of the user (each deletion audited)."""
        with auth_audit.acting_as(_context(request, request.user)):
            AuthToken.objects.filter(user=request.user).delete()
        user_logged_out.send(sender=type(request.user), request=request, user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


