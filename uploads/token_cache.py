"""A short-lived, shared cache of API tokens that knox has already accepted.

knox checks a token with two queries (the token with its user, then the user's other tokens
to sweep expired ones): about a fifth of an issuance's CPU (bench/README.md, "Capacity
under VOD latency"). A token knox accepted is remembered in Redis for
API_TOKEN_CACHE_SECONDS, keyed by its SHA-512 digest, so only the holder of the token can
hit its entry. The entry holds the user's row without its password hash, and the token's
row (its digest, as the database does).

Never stale after a change through the ORM: every entry carries the cache's generation, read
before knox looks at the database, and any save or delete of a user or a token (a revocation,
a deactivation, a logout) replaces the generation once it commits, which retires every entry.
A change that bypasses model signals (`QuerySet.update()`, raw SQL) or a generation that
could not be replaced (the cache down at that moment: logged) applies within
API_TOKEN_CACHE_SECONDS. An entry never outlives its token's expiry.

Off without REDIS_URL (a per-process cache could not be told of a revocation made in another
process), when API_TOKEN_CACHE_SECONDS is 0, and with knox's AUTO_REFRESH
(each use would have to move the token's expiry in the database anyway).
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import router
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import knox_settings

from .generations import Generation, redis_client

logger = logging.getLogger("uploads.auth")

_GENERATION = Generation("vodportal:api-token:generation", logger=logger,
                         when_down="API token cache unavailable: a user or token change "
                                   "applies to cached tokens within API_TOKEN_CACHE_SECONDS")
_ENTRY_PREFIX = "vodportal:api-token:"
# Never cached: a password hash has no business in a cache. The user is built with it
# deferred; code that needs it (rare on the API) loads it from the database.
_UNCACHED_USER_FIELDS = frozenset({"password"})


def enabled() -> bool:
    """Whether accepted tokens are cached (see the module's docstring)."""
    return (bool(settings.REDIS_URL) and settings.API_TOKEN_CACHE_SECONDS > 0
            and not knox_settings.AUTO_REFRESH)


def _entry_key(digest: str) -> str:
    return _ENTRY_PREFIX + digest


def _fields(model) -> list:
    left_out = _UNCACHED_USER_FIELDS if model is get_user_model() else frozenset()
    return [field for field in model._meta.concrete_fields if field.attname not in left_out]


def _dump(instance) -> list:
    return [getattr(instance, field.attname) for field in _fields(type(instance))]


def _load(model, values: list):
    """An instance of `model` from values `_dump` gave, through JSON."""
    fields = _fields(model)
    # Model.from_db: the documented way to build an instance from stored values (the
    # fields left out are deferred). to_python turns JSON's strings back into datetimes.
    return model.from_db(router.db_for_read(model), [field.attname for field in fields],
                         [field.to_python(value) for field, value in zip(fields, values, strict=True)])


def _encode(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not cached")


class Lookup:
    """One token's cache lookup: the cached (user, token), or the generation to cache what
    knox accepts under."""

    def __init__(self, digest: str):
        self.digest = digest
        self.generation: bytes | None = None
        self.found: tuple | None = None
        try:
            client = redis_client(settings.REDIS_URL)
            # The generation and the entry in one round trip.
            self.generation, entry = client.mget([_GENERATION.key, _entry_key(digest)])
            if self.generation is None:
                self.generation = _GENERATION.started(client)
        except redis.RedisError:
            logger.warning("API token cache unavailable: checking the token in the database")
            self.generation = None
            return
        if entry is not None:
            try:
                generation, user_values, token_values = json.loads(entry)
                if generation == self.generation.decode():
                    self.found = _rebuild(user_values, token_values)
            except (ValueError, TypeError, ValidationError):
                # Not what remember() writes (a foreign write, another version's shape):
                # knox decides, and its answer replaces the entry.
                logger.warning("API token cache: an unreadable entry was ignored")

    def remember(self, user, token: AuthToken) -> None:
        """Cache what knox accepted, under the generation read before knox ran."""
        if self.generation is None:
            return
        seconds = settings.API_TOKEN_CACHE_SECONDS
        if token.expiry is not None:
            seconds = min(seconds, int((token.expiry - timezone.now()).total_seconds()))
        if seconds <= 0:
            return
        entry = json.dumps([self.generation.decode(), _dump(user), _dump(token)],
                           default=_encode)
        try:
            redis_client(settings.REDIS_URL).set(_entry_key(self.digest), entry, ex=seconds)
        except redis.RedisError:
            logger.warning("API token cache unavailable: token not cached")


def _rebuild(user_values: list, token_values: list) -> tuple | None:
    """(user, token) as knox would return them, or None when the token has expired (knox
    then deletes it)."""
    token = _load(AuthToken, token_values)
    if token.expiry is not None and token.expiry < timezone.now():
        return None
    user = _load(get_user_model(), user_values)
    token.user = user
    return user, token


def _changed() -> None:
    if enabled():
        _GENERATION.retire_after_commit()


@receiver(post_save, sender=AuthToken, dispatch_uid="uploads.token_cache.token_saved")
def _token_saved(sender, instance, created, **kwargs) -> None:
    if not created:  # a new token changes no entry
        _changed()


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="uploads.token_cache.user_saved")
def _user_saved(sender, instance, update_fields=None, **kwargs) -> None:
    # Every session login saves last_login alone; nothing a token relies on changes.
    if not (update_fields and set(update_fields) <= {"last_login"}):
        _changed()


@receiver(post_delete, sender=AuthToken, dispatch_uid="uploads.token_cache.token_deleted")
@receiver(post_delete, sender=settings.AUTH_USER_MODEL,
          dispatch_uid="uploads.token_cache.user_deleted")
def _deleted(sender, instance, **kwargs) -> None:
    _changed()
