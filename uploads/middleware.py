"""Request ids: taken from X-Request-ID when sane, else generated; echoed on the response,
carried into every log line of the request (a contextvar), audit events and error bodies."""

import contextvars
import logging
import re
import time
import uuid

from django.conf import settings
from django.http import JsonResponse

from . import metrics

_ACCEPTABLE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
current_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id",
                                                                         default="")


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or the right entry of X-Forwarded-For when
    NUM_PROXIES trusted proxies stand in front (the same rule DRF's throttles use)."""
    num_proxies = getattr(settings, "NUM_PROXIES", 0) or 0
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if num_proxies and forwarded:
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-min(num_proxies, len(hops))]
    return request.META.get("REMOTE_ADDR") or None


class RequestIdMiddleware:
    """Gives every request an id that logs, audit events and error bodies carry."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = (incoming if _ACCEPTABLE_REQUEST_ID.match(incoming)
                              else uuid.uuid4().hex)
        token = current_request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            current_request_id.reset(token)
        response["X-Request-ID"] = request.request_id
        return response


class NulQueryStringMiddleware:
    """Answers 400 to a query string holding a NUL character, before any view sees it.

    No URL has a use for one, and PostgreSQL's text columns cannot hold it: any filter,
    search or lookup that passed it on (the admin's list filters, a VOD id, a username)
    would fail with a DataError, a 500. One check here instead of one per parameter."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "%00" in query or "\x00" in query:
            return JsonResponse(
                {"code": "invalid_input", "detail": "The query string holds a NUL character "
                 "(%00), which no parameter accepts.",
                 "request_id": getattr(request, "request_id", "")}, status=400)
        return self.get_response(request)


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every log record (empty outside a request).

    Django logs a request's 4xx/5xx (`django.request`) after the middleware has returned,
    when the context no longer holds the id: such a record carries the request itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = (current_request_id.get()
                                 or getattr(getattr(record, "request", None), "request_id", ""))
        return True


class TooManyRequestsLogFilter(logging.Filter):
    """Drops Django's "Too Many Requests" WARNING (`django.request`), one per 429.

    A 429 is the portal working as designed (a per-user rate, or VOD's QPS limit), and each
    one is in the access log with its request id, in the metrics and, for the VOD limit, in
    the audit trail. Under an overload of three times VOD's limit that warning was two
    lines in three of the log, and 3.5 % of a refusal's CPU (py-spy, bench/README.md, "The
    overload margin split between the limiter and the SDK")."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", None) != 429


logger = logging.getLogger("uploads.api")
# X-Request-Start as proxies write it: "t=1733000000.123" (nginx's $msec), or a bare number
# of seconds, milliseconds or microseconds since the epoch.
_REQUEST_START = re.compile(r"^(?:t=)?(\d{9,16})(?:\.(\d{1,6}))?$")


def queued_for(request) -> float | None:
    """Seconds since the proxy in front received the request (its X-Request-Start), or None
    when there is no such header or it makes no sense (in the future, unparseable)."""
    match = _REQUEST_START.match(request.headers.get("X-Request-Start", "").strip())
    if not match:
        return None
    whole, fraction = match.group(1), match.group(2) or ""
    started = float(f"{whole}.{fraction}" if fraction else whole)
    while started > 1e11:  # milliseconds or microseconds
        started /= 1000
    waited = time.time() - started
    return waited if waited >= 0 else None


class QueueTimeMiddleware:
    """Answers 503 `overloaded` (Retry-After: 1), before any work, to a request that has
    waited longer than REQUEST_MAX_QUEUE_MS since the proxy in front received it.

    When the portal's CPU cannot keep up, requests wait in gunicorn's queue; by the time a
    thread takes one, its client may have given up, and issuing it would spend a VOD call
    and an upload row on nobody. Only the proxy knows when a request arrived: it must set
    X-Request-Start (nginx: `proxy_set_header X-Request-Start "t=${msec}";`). Without the
    header nothing is refused. A client that forges it can only get itself refused.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit = settings.REQUEST_MAX_QUEUE_MS / 1000
        waited = queued_for(request)
        if waited is None:
            return self.get_response(request)
        shed = 0 < limit < waited
        metrics.request_queued(waited, shed=shed)
        if shed:
            logger.info("overloaded: refused a request queued for %.0f ms", waited * 1000)
            return JsonResponse(
                {"code": "overloaded", "detail": "vodportal is overloaded; this request "
                 f"waited {waited * 1000:.0f} ms before it could be served. Retry after the "
                 "given delay.", "request_id": getattr(request, "request_id", "")},
                status=503, headers={"Retry-After": "1"})
        return self.get_response(request)
