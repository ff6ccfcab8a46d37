"""One error shape for every API failure: {code, detail, errors?, request_id, ...}.

VOD failures map to HTTP statuses a client can act on: its input refused 400, unknown id
404, throttled 429 with Retry-After, VOD down 503 with Retry-After, timeout 504, an
unreadable answer 502, our configuration wrong 503. A stack trace never reaches a client.
"""

import logging

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.utils import timezone
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .. import services
from ..dependencies import (
    DEFAULT_RETRY_AFTER_SECONDS,
    DependencyUnavailable,
    forget_broken_connections,
)
from ..services import InvalidState

logger = logging.getLogger("uploads.api")

# What each error status means, for the OpenAPI description.
ERROR_STATUSES = {
    400: "Invalid input (the body names each field), VOD refused the input, or the upload "
         "policy's limits (`file_too_large`, `file_size_required`, `extension_not_allowed`: "
         "with `limit`).",
    401: "Not authenticated: send `Authorization: Token <token>` (or `Bearer <access token>` "
         "from a configured OpenID Connect provider), or log in.",
    403: "Not allowed (for sessions: the CSRF token is missing or wrong), or the upload "
         "policy refuses it (`quota_exceeded` with `limit`, `resets_at` and Retry-After; "
         "`kind_not_allowed`).",
    404: "No such upload for you (another user's id answers the same).",
    405: "Method not allowed.",
    409: "The upload is in a state where this makes no sense, or a request with the same "
         "Idempotency-Key is still running (see Retry-After).",
    413: "The body is larger than this endpoint accepts.",
    415: "Send application/json.",
    422: "This Idempotency-Key was used with a different request body.",
    429: "Too many requests (yours, or VOD's limit): wait Retry-After seconds.",
    500: "Unexpected error (it is logged with the request id).",
    502: "VOD answered something unreadable (see Retry-After).",
    503: "The identity provider cannot be asked for its keys "
         "(`identity_provider_unavailable`), or "
         "VOD, the database or Redis is unavailable (`vod_unavailable`, "
         "`database_unavailable`, `redis_unavailable`; see Retry-After), vodportal is "
         "overloaded (`overloaded`: the request waited too long behind busy workers), or "
         "misconfigured (`vod_not_configured`).",
    504: "VOD did not answer in time.",
}

# (HTTP status, our stable code, what a client is told)
_VOD_ERRORS = {
    services.VodInvalidInput: (400, "vod_rejected_input", "VOD refused the request: {message}"),
    services.VodNotFound: (404, "not_found", "VOD does not know this media."),
    services.VodThrottled: (429, "vod_throttled",
                       "VOD is receiving too many requests; retry after the given delay."),
    services.VodUnavailable: (503, "vod_unavailable",
                         "VOD is unavailable at the moment; retry after the given delay."),
    services.VodTimeout: (504, "vod_timeout", "VOD did not answer in time; retry shortly."),
    services.VodBadResponse: (502, "vod_bad_response", "VOD answered with something unreadable."),
    services.VodNotConfigured: (503, "vod_not_configured",
                           "The upload service is not configured correctly; "
                           "its operators have been told."),
}


def error_response(request_id: str, http_status: int, code: str, detail: str, *,
                   headers: dict[str, str] | None = None, **extra) -> Response:
    """An answer in the API's one error shape: {code, detail, request_id, ...extra}."""
    return Response({"code": code, "detail": detail, **extra, "request_id": request_id},
                    status=http_status, headers=headers)


def _request_id(context) -> str:
    request = context.get("request") if context else None
    return getattr(request, "request_id", "") or ""


def _vod_error_response(exc: services.VodError, context) -> Response:
    http_status, code, detail = next(
        (mapping for cls, mapping in _VOD_ERRORS.items() if isinstance(exc, cls)),
        (503, "vod_unavailable", "VOD is unavailable at the moment."))
    if isinstance(exc, services.VodNotConfigured):
        logger.error("VOD refused our configuration: code=%s request_id=%s",
                     exc.code, exc.request_id)
    headers = {}
    if exc.retryable:
        # Waiting can mend it (throttling, VOD down, a timeout, a garbled answer): say when.
        headers["Retry-After"] = str(exc.retry_after or DEFAULT_RETRY_AFTER_SECONDS)
    elif exc.retry_after and http_status in (429, 503, 504):
        headers["Retry-After"] = str(exc.retry_after)
    return error_response(_request_id(context), http_status, code,
                          detail.format(message=exc.message), headers=headers,
                          vod_code=exc.code, vod_request_id=exc.request_id)


def _summarize(errors) -> str:
    if isinstance(errors, dict):
        names = [name for name in errors if name != "non_field_errors"]
        if names:
            return "Invalid input: " + ", ".join(names) + "."
    return "Invalid input."


def dependency_error_response(exc: Exception, request_id: str) -> Response | None:
    """503 naming the dependency that is down (Redis, the database), with Retry-After; None
    for any other exception."""
    if isinstance(exc, DependencyUnavailable):
        dependency, code, retry_after = exc.dependency, exc.code, exc.retry_after
    elif isinstance(exc, (OperationalError, InterfaceError)):
        dependency, code, retry_after = ("the database", "database_unavailable",
                                         DEFAULT_RETRY_AFTER_SECONDS)
        forget_broken_connections()  # so that the next request gets a working connection
    else:
        return None
    logger.warning("dependency unavailable: %s (%s) request_id=%s", code,
                   type(exc).__name__, request_id)
    return error_response(request_id, status.HTTP_503_SERVICE_UNAVAILABLE, code,
                          f"{dependency.capitalize()} is unavailable at the moment; retry "
                          "after the given delay.",
                          headers={"Retry-After": str(retry_after)})


def _policy_response(exc: services.PolicyRefused, request_id: str) -> Response:
    """400 or 403 naming the limit the owner's upload policy sets (and for a quota, when it
    resets, with Retry-After)."""
    extra: dict = {}
    headers = {}
    if exc.limit is not None:
        extra["limit"] = exc.limit
    if exc.resets_at is not None:
        extra["resets_at"] = exc.resets_at.isoformat()
        headers["Retry-After"] = str(max(1, int((exc.resets_at - timezone.now())
                                                  .total_seconds())))
    if exc.field_name:
        extra["errors"] = {exc.field_name: [exc.detail]}
    return error_response(request_id, exc.status, exc.code, exc.detail, headers=headers,
                          **extra)


def payload_too_large(request_id: str) -> Response:
    """413 in the error shape: the body is over the endpoint's size limit."""
    return error_response(request_id, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                          "payload_too_large", "The request body is too large.")


def exception_handler(exc, context):
    """DRF's handler, reshaped into our error body; VOD, dependency and unexpected errors
    added."""
    request_id = _request_id(context)
    if isinstance(exc, services.VodError):
        return _vod_error_response(exc, context)
    dependency = dependency_error_response(exc, request_id)
    if dependency is not None:
        return dependency
    if isinstance(exc, RequestDataTooBig):
        return payload_too_large(request_id)
    if isinstance(exc, services.PolicyRefused):
        return _policy_response(exc, request_id)
    if isinstance(exc, services.NotPermitted):
        return error_response(request_id, status.HTTP_403_FORBIDDEN, "permission_denied",
                              str(exc))
    if isinstance(exc, InvalidState):
        return error_response(request_id, status.HTTP_409_CONFLICT, "invalid_state", str(exc),
                              status=exc.status)
    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("Unhandled error in API view (request_id=%s)", request_id)
        return error_response(request_id, status.HTTP_500_INTERNAL_SERVER_ERROR, "server_error",
                              "An unexpected error occurred.")
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid_input", "detail": _summarize(exc.detail),
                         "errors": exc.detail if isinstance(exc.detail, dict)
                         else {"non_field_errors": exc.detail},
                         "request_id": request_id}
        return response
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else ""
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = {"code": code, "detail": str(detail), "request_id": request_id}
    return response


def json_not_found(request, exception=None):
    """404 for URLs no route matches: the API's error shape under /api/, else Django's page."""
    if not request.path.startswith("/api/"):
        return defaults.page_not_found(request, exception)
    return JsonResponse({"code": "not_found", "detail": "No such resource.",
                         "request_id": getattr(request, "request_id", "")}, status=404)


def json_server_error(request):
    """500 outside DRF's handling: the API's error shape under /api/, else Django's page."""
    if not request.path.startswith("/api/"):
        return defaults.server_error(request)
    return JsonResponse({"code": "server_error", "detail": "An unexpected error occurred.",
                         "request_id": getattr(request, "request_id", "")}, status=500)
