"""App accounts and their API tokens, without a shell: what the management commands
(`create_app_user`, `issue_token`, `list_tokens`, `revoke_tokens`) and the token admin share.

A token is shown once, to whoever made it, and is never stored or logged: knox keeps only
its SHA-512 digest, and everything else names a token by `token_id` (the digest's first 12
characters). Tokens are created and deleted through the ORM inside `acting_as(context)`, so
the receivers in `auth_audit` audit each one with the caller as actor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from knox.models import AuthToken
from knox.settings import knox_settings

from .. import audit
from ..audit import RequestContext
from ..auth_audit import acting_as, token_id

# token_id is the digest's first 12 hex characters (auth_audit.token_id).
TOKEN_ID_LENGTH = 12
_TOKEN_ID = re.compile(r"[0-9a-f]{%d}" % TOKEN_ID_LENGTH)


class AccountError(Exception):
    """A refusal whose message can be shown to the operator as is (it holds no secret)."""


@dataclass(frozen=True)
class TokenRow:
    """What may be shown about a token: never the token, its full digest or its token_key."""

    username: str
    token_id: str
    created: datetime
    expiry: datetime | None
    last_used: datetime | None


def user_create(*, username: str, email: str = "", password: str | None,
                context: RequestContext):
    """Create an active, non-staff user and audit `auth.user.created` (username only).

    Without a password the account's password is unusable: it can only use API tokens.
    Raises AccountError for a taken or invalid username, a bad email or a password the
    validators refuse (their messages never contain the password).
    """
    users = get_user_model()
    username_field = users._meta.get_field(users.USERNAME_FIELD)
    username = users.normalize_username(username)
    try:
        username_field.clean(username, None)
        if email:
            validate_email(email)
    except ValidationError as exc:
        raise AccountError("; ".join(exc.messages)) from exc
    if users._default_manager.filter(**{users.USERNAME_FIELD: username}).exists():
        raise AccountError(f"a user named {username!r} already exists")
    if password is not None:
        if not password:
            raise AccountError("the password is empty")
        try:
            password_validation.validate_password(
                password, users(**{users.USERNAME_FIELD: username, "email": email}))
        except ValidationError as exc:
            raise AccountError("password refused: " + " ".join(exc.messages)) from exc
    try:
        # The user and its audit event commit together, or neither does.
        with transaction.atomic():
            # create_user makes the password unusable when it is None.
            user = users._default_manager.create_user(username, email=email,
                                                      password=password)
            audit.record("auth.user.created", context=context,
                         data={"username": username, "password_login": password is not None})
    except IntegrityError as exc:  # another process took the name since the check above
        raise AccountError(f"a user named {username!r} already exists") from exc
    return user


def user_named(username: str):
    """The user with this username; AccountError if there is none."""
    users = get_user_model()
    try:
        return users._default_manager.get(**{users.USERNAME_FIELD: username})
    except users.DoesNotExist:
        raise AccountError(f"no user named {username!r}") from None


def default_expiry() -> timedelta | None:
    """knox's TOKEN_TTL (settings REST_KNOX, API_TOKEN_TTL_DAYS): None means never."""
    return knox_settings.TOKEN_TTL


def token_expiry(hours: int | None) -> timedelta | None:
    """The lifetime a new token gets for `hours` (None: the default, TOKEN_TTL).

    TOKEN_TTL is also the longest lifetime allowed: the settings say how long a token may
    live, and neither a command nor the admin may go past that. 0 (never expires) is
    accepted only when TOKEN_TTL is None, i.e. when the settings already allow it.
    """
    ttl = default_expiry()
    if hours is None:
        return ttl
    if hours < 0:
        raise AccountError("the expiry must be a positive number of hours")
    if hours == 0:
        if ttl is not None:
            raise AccountError("tokens that never expire are not allowed here (REST_KNOX "
                               "TOKEN_TTL is set)")
        return None
    lifetime = timedelta(hours=hours)
    if ttl is not None and lifetime > ttl:
        raise AccountError(f"the expiry may be at most {max_expiry_hours()} hours (REST_KNOX "
                           f"TOKEN_TTL, API_TOKEN_TTL_DAYS)")
    return lifetime


def max_expiry_hours() -> int | None:
    """The longest lifetime allowed, in whole hours (None: no limit)."""
    ttl = default_expiry()
    return None if ttl is None else int(ttl.total_seconds() // 3600)


def token_issue(*, user, expiry: timedelta | None,
                context: RequestContext) -> tuple[AuthToken, str]:
    """Create a knox token for an active `user`, audited (`auth.token.created`) as done by
    `context`. Returns the row and the token itself, which exists nowhere else: show it
    once and drop it."""
    if not user.is_active:
        raise AccountError(f"user {user.get_username()!r} is not active")
    with acting_as(context), transaction.atomic():
        return AuthToken.objects.create(user=user, expiry=expiry)


def token_id_valid(value: str) -> bool:
    """Whether `value` has the shape of a token id (12 lower-case hex characters)."""
    return bool(_TOKEN_ID.fullmatch(value))


def tokens(*, username: str | None = None, token_id_prefix: str | None = None) -> QuerySet:
    """Tokens (with their user and last use joined), newest first, optionally of one user
    and/or whose token id starts with `token_id_prefix`."""
    found = AuthToken.objects.select_related("user", "use").order_by("-created")
    if username is not None:
        users = get_user_model()
        found = found.filter(**{f"user__{users.USERNAME_FIELD}": username})
    if token_id_prefix is not None:
        found = found.filter(digest__startswith=token_id_prefix.lower())
    return found


def token_pks(token_ids: Iterable[str]) -> list[str]:
    """The primary keys (digests) of the tokens with these token ids; other values are
    ignored. The admin's checkboxes carry token ids so its pages never hold a digest."""
    wanted = {value for value in token_ids if token_id_valid(value)}
    if not wanted:
        return []
    match = Q()
    for value in wanted:
        match |= Q(digest__startswith=value)
    return list(AuthToken.objects.filter(match).values_list("pk", flat=True))


def last_used(token: AuthToken) -> datetime | None:
    """When the token was last used, to the minute; None if never (no ApiTokenUse row)."""
    # A reverse one-to-one that is absent raises a subclass of AttributeError.
    use = getattr(token, "use", None)
    return use.last_used_at if use is not None else None


def token_rows(found: Iterable[AuthToken]) -> list[TokenRow]:
    """What may be shown of each token."""
    return [TokenRow(username=token.user.get_username(), token_id=token_id(token),
                     created=token.created, expiry=token.expiry, last_used=last_used(token))
            for token in found]


def tokens_revoke(found: Iterable[AuthToken], *, context: RequestContext) -> int:
    """Delete each token through the ORM (so each deletion is audited, `auth.token.deleted`,
    as done by `context`, and the token cache forgets it); returns how many."""
    revoked = 0
    with acting_as(context), transaction.atomic():
        for token in found:
            token.delete()
            revoked += 1
    return revoked
