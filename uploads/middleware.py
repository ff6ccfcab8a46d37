"""Request ids: taken from X-Request-ID when sane, else generated; echoed on the response,
carried into every log line of the request (a contextvar), audit events and error bodies."""

import contextvars
import logging
import re
import uuid

from django.conf import settings

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


class RequestIdLogFilter(logging.Filter):
    """Adds `request_id` to every log record (empty outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = current_request_id.get()
        return True
