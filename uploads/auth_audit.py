"""Logins and API tokens in the audit trail: every login, every failure (with the username
tried, never the password), every lockout by django-axes, every token created or revoked
(by whom, where a request did it; named by the start of its digest, never the token).
Receivers of Django's, axes' and the ORM's signals."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from knox.models import AuthToken

from . import audit
from .audit import RequestContext
from .middleware import client_ip, current_request_id
from .models import AuditOutcome


def _context(request, *, actor=None) -> RequestContext:
    """The request's id, address and agent, with `actor` (None: the label "login")."""
    if request is None:
        return RequestContext(actor=actor, actor_label="login")
    return RequestContext(actor=actor, actor_label="login",
                          request_id=getattr(request, "request_id", ""),
                          client_ip=client_ip(request),
                          user_agent=request.headers.get("User-Agent", "")[:256])


@receiver(user_logged_in, dispatch_uid="uploads.audit.login")
def _logged_in(sender, request, user, **kwargs) -> None:
    audit.record("auth.login", context=_context(request, actor=user),
                 data={"path": getattr(request, "path", "")})


@receiver(user_login_failed, dispatch_uid="uploads.audit.login_failed")
def _login_failed(sender, credentials, request=None, **kwargs) -> None:
    audit.record("auth.login.failed", outcome=AuditOutcome.FAILURE, context=_context(request),
                 data={"username": str(credentials.get("username", ""))[:150],
                       "path": getattr(request, "path", "")})


@receiver(user_locked_out, dispatch_uid="uploads.audit.locked_out")
def _locked_out(sender, request, username, ip_address, **kwargs) -> None:
    audit.record("auth.locked_out", outcome=AuditOutcome.REJECTED, context=_context(request),
                 data={"username": str(username or "")[:150],
                       "path": getattr(request, "path", "")})


def token_id(token: AuthToken) -> str:
    """A non-secret handle for a token: the first 12 characters of its SHA-512 digest."""
    return token.digest[:12]


# Who is creating or revoking tokens right now, when someone is: a user logging in or out
# through the API, a staff member in the admin, a management command.
_acting: contextvars.ContextVar[RequestContext | None] = contextvars.ContextVar(
    "vodportal_token_actor", default=None)


@contextmanager
def acting_as(context: RequestContext) -> Iterator[RequestContext]:
    """Inside the block, tokens created or deleted (and accounts created) are audited as done
    by `context`'s actor, from its request; outside, as anonymous `api token` events."""
    marker = _acting.set(context)
    try:
        yield context
    finally:
        _acting.reset(marker)


def acting_context() -> RequestContext:
    """The context token and account events are recorded with (see `acting_as`)."""
    return _acting.get() or RequestContext(actor_label="api token",
                                           request_id=current_request_id.get())


def _token_event(action: str, token: AuthToken) -> None:
    audit.record(action, context=acting_context(),
                 data={"user": token.user.get_username(), "token_id": token_id(token),
                       "expiry": token.expiry.isoformat() if token.expiry else None})


@receiver(post_save, sender=AuthToken, dispatch_uid="uploads.audit.token_created")
def _token_created(sender, instance, created, **kwargs) -> None:
    if created:
        _token_event("auth.token.created", instance)


@receiver(post_delete, sender=AuthToken, dispatch_uid="uploads.audit.token_deleted")
def _token_deleted(sender, instance, **kwargs) -> None:
    _token_event("auth.token.deleted", instance)
