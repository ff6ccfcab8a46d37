"""The local user of a verified token: `ExternalIdentity(issuer, sub)` names it; created on
first sight with a username of its own, never an existing account's."""

from __future__ import annotations

import itertools
import logging
import re
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction

from .config import Provider, TokenRejected, Verified, providers

logger = logging.getLogger("uploads.auth")


def _usernames(provider: Provider, claims: dict[str, Any], subject: str):
    """`name@issuer-host`, then `name-2@issuer-host`, ...: never a bare name, so a provider's
    user can never be confused with (or take over) a local account of that name."""
    wanted = claims.get(provider.username_claim)
    name = wanted if isinstance(wanted, str) and wanted.strip() else subject
    name = re.sub(r"[^\w.@+-]", "_", name.strip())[:80] or "user"
    host = re.sub(r"[^\w.-]", "_", urlsplit(provider.issuer).hostname or "oidc")[:60]
    yield f"{name}@{host}"
    for number in itertools.count(2):
        yield f"{name}-{number}@{host}"


def _email(provider: Provider, claims: dict[str, Any]) -> str:
    email = claims.get(provider.email_claim)
    if not isinstance(email, str) or len(email) > 254:
        return ""
    try:
        EmailValidator()(email)
    except ValidationError:
        return ""
    return email


def user_for(verified: Verified, request=None):
    """The local user of a verified token, created on first sight (audited); TokenRejected
    for a user staff have disabled. Tolerates concurrent first requests of one identity."""
    from django.contrib.auth import get_user_model

    from ..models import ExternalIdentity

    lookup = {"issuer": verified.issuer, "subject": verified.subject}
    identity = ExternalIdentity.objects.select_related("user").filter(**lookup).first()
    for _attempt in range(3):
        if identity is not None:
            break
        try:
            identity = _create(verified, get_user_model(), ExternalIdentity, request)
        except IntegrityError:
            # Another request created this identity first (or took the username we chose).
            identity = ExternalIdentity.objects.select_related("user").filter(**lookup).first()
    if identity is None:
        raise TokenRejected("No account could be created for this identity.")
    if not identity.user.is_active:
        raise TokenRejected("User inactive or deleted.")
    return identity.user


def _create(verified: Verified, user_model, identity_model, request):
    from .. import audit
    from ..middleware import client_ip

    provider = providers()[verified.issuer]
    candidates = _usernames(provider, verified.claims, verified.subject)
    with transaction.atomic():
        while True:
            batch = [next(candidates) for _ in range(20)]
            taken = set(user_model.objects.filter(username__in=batch)
                        .values_list("username", flat=True))
            free = [name for name in batch if name not in taken]
            if free:
                break
        # is_staff / is_superuser stay False: a token never grants them.
        user = user_model(username=free[0], email=_email(provider, verified.claims))
        user.set_unusable_password()  # signs in through its provider only
        user.save()
        identity = identity_model.objects.create(user=user, issuer=verified.issuer,
                                                 subject=verified.subject)
        context = audit.RequestContext(actor=user, actor_label="oidc")
        if request is not None:
            context = audit.RequestContext(
                actor=user, actor_label="oidc", request_id=getattr(request, "request_id", ""),
                client_ip=client_ip(request),
                user_agent=request.headers.get("User-Agent", "")[:256])
        audit.record("auth.oidc.user_created", context=context,
                     data={"issuer": verified.issuer, "sub": verified.subject,
                           "username": user.username})
    logger.info("OIDC: created user %s for %s at %s", user.username, verified.subject,
                verified.issuer)
    return identity
