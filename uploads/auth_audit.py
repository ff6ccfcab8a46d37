"""Logins in the audit trail: every success, every failure (with the username tried, never
the password) and every lockout by django-axes. Receivers of Django's and axes' signals."""

from __future__ import annotations

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from . import audit
from .audit import RequestContext
from .middleware import client_ip
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
