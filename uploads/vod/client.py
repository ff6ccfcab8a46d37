"""The SDK client, our retry policy, and translation of SDK failures into VodError."""

from __future__ import annotations

import binascii
import logging
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, TypeVar

import requests
from urllib3 import exceptions as urllib3_exceptions
from alibabacloud_credentials.client import Client as CredentialClient
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from alibabacloud_tea_openapi.utils_models import Config
from alibabacloud_vod20170321.client import Client
from darabonba.runtime import RuntimeOptions
from django.conf import settings

from .. import metrics
from ..dependencies import DependencyUnavailable
from . import limiter
from .types import (
    VodBadResponse,
    VodDuplicateReference,
    VodError,
    VodInvalidInput,
    VodNotConfigured,
    VodNotFound,
    VodThrottled,
    VodTimeout,
    VodUnavailable,
)

logger = logging.getLogger("uploads.vod")

# How long to ask a throttled client to wait when VOD does not say.
DEFAULT_RETRY_AFTER_SECONDS = 1

T = TypeVar("T")


# Something the request named, not the media, does not exist: the caller's input is wrong
# (a category the account does not have), not "VOD does not know this media".
_INPUT_NOT_FOUND_CODES = {"InvalidCateId.NotFound"}
_NOT_CONFIGURED_CODES = {
    "InvalidAccessKeyId.NotFound",
    "InvalidAccessKeyId.Inactive",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "InvalidSecurityToken.Expired",
    "InvalidSecurityToken.Malformed",
    "InvalidTemplateGroupId.NotFound",
    "InvalidStorage.NotFound",
    "Forbidden.OperateApp",
    "Forbidden.InitFailed",
    "OperationDenied",
    "OperationDenied.Suspended",
    "NoPermission",
    "Forbidden",
}
_DUPLICATE_REFERENCE_CODES = {"InvalidParameter.ReferenceId", "ReferenceId.Duplicate"}


def _classify(exc: AlibabaCloudException, operation: str) -> VodError:
    """Turn an SDK response exception into ours, by VOD's code first, then HTTP status."""
    code = str(exc.code or "Unknown")
    status = exc.status_code
    data = exc.data if isinstance(exc.data, dict) else {}
    message = str(data.get("Message") or exc.message or code)
    kwargs = {"code": code, "http_status": status, "request_id": str(exc.request_id or ""),
              "operation": operation}
    if code.startswith("Throttling"):
        return VodThrottled(message, retry_after=exc.retry_after or DEFAULT_RETRY_AFTER_SECONDS,
                            **kwargs)
    if code in _DUPLICATE_REFERENCE_CODES:
        return VodDuplicateReference(message, **kwargs)
    if code in _INPUT_NOT_FOUND_CODES:
        return VodInvalidInput(message, **kwargs)
    if code in _NOT_CONFIGURED_CODES or code.startswith(("Forbidden.RAM", "NoPermission")):
        return VodNotConfigured(message, **kwargs)
    if status == 404 or code.endswith(".NotFound"):
        return VodNotFound(message, **kwargs)
    if status is not None and status >= 500:
        return VodUnavailable(message, retry_after=DEFAULT_RETRY_AFTER_SECONDS, **kwargs)
    if status == 403:
        return VodNotConfigured(message, **kwargs)
    return VodInvalidInput(message, **kwargs)


def _root_cause(exc: BaseException) -> BaseException:
    """The exception under the SDK's wrappers.

    darabonba wraps a network failure twice: UnretryableException(inner_exception=
    RetryError(str(error))), raised inside `except IOError`, so the original requests
    exception survives only as the RetryError's __context__. An unparseable body comes as
    UnretryableException(inner_exception=RuntimeError) caused by json's JSONDecodeError,
    whose own context (a StopIteration) is suppressed (`raise ... from None`) and not followed.
    """
    seen = set()
    current = exc
    while id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, requests.exceptions.RequestException):
            return current
        context = None if current.__suppress_context__ else current.__context__
        following = getattr(current, "inner_exception", None) or current.__cause__ or context
        if following is None:
            return current
        current = following
    return current


def _translate(exc: Exception, operation: str) -> VodError:
    """Map anything the SDK call raised to a VodError."""
    if isinstance(exc, AlibabaCloudException):
        return _classify(exc, operation)
    inner = _root_cause(exc)
    if isinstance(inner, (requests.exceptions.ChunkedEncodingError,
                          requests.exceptions.ContentDecodingError)):
        # An answer began (status and headers came) but its body broke off or was mangled:
        # VOD may have acted, and what it said is lost.
        return VodBadResponse("VOD's answer was cut short.", code="IncompleteResponse",
                              operation=operation)
    if isinstance(inner, requests.exceptions.ConnectTimeout):
        return VodUnavailable("VOD could not be reached in time.", code="ConnectTimeout",
                              connect_failed=True, operation=operation,
                              retry_after=DEFAULT_RETRY_AFTER_SECONDS)
    if isinstance(inner, requests.exceptions.Timeout):
        return VodTimeout("VOD did not answer in time.", code="ReadTimeout", operation=operation,
                          retry_after=DEFAULT_RETRY_AFTER_SECONDS)
    if isinstance(inner, requests.exceptions.ConnectionError):
        # Refused or unresolvable: the request never left; anything else (a reset, a closed
        # connection) may have happened after VOD received it.
        refused = isinstance(getattr(inner.args[0] if inner.args else None, "reason", None),
                             urllib3_exceptions.NewConnectionError)
        return VodUnavailable("The connection to VOD failed.", code="ConnectionError",
                              connect_failed=refused, operation=operation,
                              retry_after=DEFAULT_RETRY_AFTER_SECONDS)
    if isinstance(inner, (ValueError, KeyError, TypeError, binascii.Error)):
        return VodBadResponse("VOD answered with a body that could not be read.",
                              code="BadResponse", operation=operation)
    return VodUnavailable(f"VOD call failed: {type(inner).__name__}.", code="SdkError",
                          operation=operation)


# --- The client ------------------------------------------------------------------------


@dataclass(frozen=True)
class _ClientSettings:
    region: str
    endpoint: str
    protocol: str
    connect_timeout_ms: int
    read_timeout_ms: int
    sandbox: bool
    sandbox_key_id: str
    sandbox_key_secret: str = field(repr=False)


def _current_client_settings() -> _ClientSettings:
    return _ClientSettings(
        region=settings.VOD_REGION,
        endpoint=settings.VOD_ENDPOINT,
        protocol=settings.VOD_PROTOCOL,
        connect_timeout_ms=settings.VOD_CONNECT_TIMEOUT_MS,
        read_timeout_ms=settings.VOD_READ_TIMEOUT_MS,
        sandbox=settings.VOD_SANDBOX,
        sandbox_key_id=settings.VOD_SANDBOX_ACCESS_KEY_ID,
        sandbox_key_secret=settings.VOD_SANDBOX_ACCESS_KEY_SECRET,
    )


@lru_cache(maxsize=4)
def _build_client(conf: _ClientSettings) -> Client:
    """One SDK client per settings snapshot: it owns the HTTP connection pool."""
    options = {
        "region_id": conf.region,
        "protocol": conf.protocol,
        "connect_timeout": conf.connect_timeout_ms,
        "read_timeout": conf.read_timeout_ms,
    }
    if conf.endpoint:
        options["endpoint"] = conf.endpoint
    if conf.sandbox:
        # Explicit sandbox keys: the credentials chain (and its ECS metadata step) is never
        # consulted when talking to the local sandbox.
        config = Config(access_key_id=conf.sandbox_key_id,
                        access_key_secret=conf.sandbox_key_secret, **options)
    else:
        config = Config(credential=CredentialClient(), **options)
    return Client(config)


def get_client() -> Client:
    """The process's SDK client for the current settings (rebuilt if they change)."""
    return _build_client(_current_client_settings())


def credentials_resolvable() -> bool:
    """Whether an AccessKey can be obtained, without calling VOD."""
    conf = _current_client_settings()
    if conf.sandbox:
        return bool(conf.sandbox_key_id and conf.sandbox_key_secret)
    try:
        credential = CredentialClient().get_credential()
    except Exception:  # noqa: BLE001 - any failure of the chain means "not resolvable"
        logger.warning("VOD credentials could not be resolved from the credentials chain")
        return False
    return bool(credential.access_key_id and credential.access_key_secret)


def runtime_options() -> RuntimeOptions:
    """The SDK's per-call options.

    Retries are ours (see call_vod); the SDK's own loop is left off so each attempt is seen.
    `max_idle_conns` sizes the SDK's HTTP connection pool (urllib3, one per process): its
    default of 40 is fewer than the calls a gevent worker has in flight when VOD is slow,
    and each call past it would open, then discard, a new TLS connection."""
    return RuntimeOptions(autoretry=False, max_attempts=1,
                          max_idle_conns=settings.VOD_HTTP_CONNECTIONS)


def backoff(attempt: int) -> None:
    """Wait before repeating a call that failed on its `attempt`-th try (linear backoff)."""
    time.sleep(settings.VOD_RETRY_BACKOFF_MS / 1000 * attempt)


def call_vod(operation: str, send: Callable[[Client], T], *, idempotent: bool) -> T:
    """Send one VOD request with our retry policy; raise VodError on failure.

    A call is repeated only when it failed in a way a retry can mend, and only when the repeat
    cannot create a second media: idempotent calls, or requests that never reached VOD.
    """
    attempts = max(1, settings.VOD_MAX_ATTEMPTS)
    for attempt in range(1, attempts + 1):
        started = time.perf_counter()
        sent = None  # set once the request leaves: only then did VOD get a call
        try:
            client = get_client()  # built before the send moment is booked (the first takes ms)
            with limiter.vod_call_slot(operation):
                sent = metrics.vod_call_sent(operation)
                result = send(client)
        except DependencyUnavailable:
            raise  # the limiter could not be asked: VOD was not called
        except Exception as exc:  # noqa: BLE001 - every SDK failure is translated below
            error = exc if isinstance(exc, VodError) else _translate(exc, operation)
            metrics.vod_call_done(operation, sent, error)
            elapsed_ms = (time.perf_counter() - started) * 1000
            logger.warning("vod %s failed: code=%s status=%s request_id=%s attempt=%d ms=%.1f",
                           operation, error.code, error.http_status, error.request_id, attempt,
                           elapsed_ms)
            repeatable = error.retryable and not isinstance(error, VodThrottled) and (
                idempotent or getattr(error, "connect_failed", False))
            if attempt < attempts and repeatable:
                backoff(attempt)
                continue
            raise error from None
        metrics.vod_call_done(operation, sent, None)
        logger.debug("vod %s ok ms=%.1f", operation, (time.perf_counter() - started) * 1000)
        return result
    raise AssertionError("unreachable")  # pragma: no cover
