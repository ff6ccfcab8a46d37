"""Prometheus instruments, and the one-line calls the code paths make to move them.

Counted where it happens (the gateway, the limiter, the services, the throttles, the callback
endpoint); what the database knows (uploads in flight, the audit chain's head) is read at
scrape time by `collector.py`; `/metrics` is served by `view.py`. docs/metrics.md lists every
metric and why it is shaped so.

Across gunicorn workers the values live in prometheus_client's multiprocess mode: with
PROMETHEUS_MULTIPROC_DIR set (gunicorn.conf.py sets it in the master, before any worker
imports this), each worker writes its own memory-mapped files and a scrape adds them up.
Without it (runserver, the tests) they are plain in-process values.

Every call here is guarded: a metric that cannot be moved is logged, never raised, so
instrumentation cannot fail a request. Labels are bounded: kinds, operations, scopes and
event types come from code; VOD's error codes are cut to VOD's character set and length,
and past `_MAX_VALUES` distinct values per label a process reports "other".
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time

from prometheus_client import Counter, Gauge, Histogram

logger = logging.getLogger("uploads.metrics")

OTHER = "other"
# The kinds of upload (MediaUpload.kind).
KINDS = ("video", "image", "attached_media")
# Anything else a label can hold is text from code or from VOD: kept as VOD writes its codes
# (letters, digits, dots; a few use '_' or '-'), at most 64 characters.
_LABEL_TEXT = re.compile(r"[^A-Za-z0-9._-]")
_MAX_LABEL_LENGTH = 64
# Distinct values one label may take in a process before new ones become "other": far above
# what VOD's documented codes or our operations reach, far below what would hurt Prometheus.
_MAX_VALUES = 64

# VOD answers in tens to hundreds of milliseconds; timeouts sit at 3 s (connect) and 10 s
# (read), so the buckets run from 10 ms to 10 s.
VOD_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5,
                       2.5, 5.0, 10.0)
# The limiter books at most VOD_QPS_MAX_WAIT_MS (50 ms by default) ahead, plus a 20 ms lead;
# a late call may book again.
LIMITER_WAIT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3,
                        0.5, 1.0)

CREDENTIALS_ISSUED = Counter(
    "vodportal_credentials_issued",
    "Upload credentials handed out, by kind and by how (create: a new upload; refresh: a "
    "new credential for a video's upload).", ["kind", "via"])
CREDENTIALS_REFUSED = Counter(
    "vodportal_credentials_refused",
    "Requests for an upload credential that got none, by kind and error code (VOD's code, "
    "QpsLimitReached from our limiter, <dependency>_unavailable).", ["kind", "code"])
VOD_CALLS = Counter(
    "vodportal_vod_calls",
    "Requests sent to VOD (each attempt), by operation and outcome: ok or the class of the "
    "error (throttled, invalid_input, not_found, not_configured, unavailable, timeout, "
    "bad_response, duplicate_reference).", ["operation", "outcome"])
VOD_CALL_SECONDS = Histogram(
    "vodportal_vod_call_duration_seconds",
    "Time from sending a VOD request to its answer or failure, by operation.",
    ["operation"], buckets=VOD_LATENCY_BUCKETS)
VOD_CALLS_IN_FLIGHT = Gauge(
    "vodportal_vod_calls_in_flight",
    "VOD requests sent and not answered yet, by operation (live workers only).",
    ["operation"], multiprocess_mode="livesum")
LIMITER_WAIT_SECONDS = Histogram(
    "vodportal_vod_limiter_wait_seconds",
    "Time a VOD call spent in our QPS limiter before it was sent, by operation.",
    ["operation"], buckets=LIMITER_WAIT_BUCKETS)
# A call is late once it leaves more than VOD_QPS_MARGIN_MS (5 ms, strained or not) after its
# booked moment; the tail seen on a busy 2-core host reached a few hundred milliseconds.
LIMITER_LATE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
LIMITER_LATE_SECONDS = Histogram(
    "vodportal_vod_limiter_late_seconds",
    "How long after its booked moment a VOD call left our QPS limiter, for calls later "
    "than their margin (a starved thread); each holds its slot that much longer, so "
    "the sum is capacity lost, by operation.",
    ["operation"], buckets=LIMITER_LATE_BUCKETS)
LIMITER_HELD_UNTIL_ANSWERED = Counter(
    "vodportal_vod_limiter_held_until_answered",
    "Late VOD calls whose slot our limiter held until VOD's answer, Redis's replies to its "
    "extensions having been read late too (a starved thread): each costs the capacity of "
    "its VOD latency, by operation.", ["operation"])
LIMITER_REFUSALS = Counter(
    "vodportal_vod_limiter_refusals",
    "VOD calls our QPS limiter refused (429 QpsLimitReached; VOD not called), by operation.",
    ["operation"])
THROTTLE_REFUSALS = Counter(
    "vodportal_throttle_refusals",
    "API requests refused by a per-user rate (429 throttled), by scope.", ["scope"])
# REQUEST_MAX_QUEUE_MS refuses past 1 s by default; a healthy portal answers within a few
# milliseconds of the proxy handing a request over.
REQUEST_QUEUE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REQUEST_QUEUE_SECONDS = Histogram(
    "vodportal_request_queue_seconds",
    "Time from the proxy receiving a request (its X-Request-Start) to the portal starting "
    "on it: the wait for a free gunicorn thread and the CPU.", buckets=REQUEST_QUEUE_BUCKETS)
REQUESTS_SHED = Counter(
    "vodportal_requests_shed",
    "Requests answered 503 overloaded before any work: they waited longer than "
    "REQUEST_MAX_QUEUE_MS behind the proxy (the portal's CPU cannot keep up).")
CALLBACKS = Counter(
    "vodportal_callbacks",
    "VOD event notifications received, by event type and verdict (accepted, ignored, "
    "unconfirmed, unknown_media, duplicate, rejected, throttled).", ["event_type", "verdict"])

_seen_lock = threading.Lock()
_seen: dict[str, set[str]] = {}
_failed: set[str] = set()


def _guarded(function):
    """Run an instrumentation call; log (once per call site and process) instead of raising."""
    @functools.wraps(function)
    def guarded(*args, **kwargs):
        try:
            function(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a metric must never fail the request it observes
            level = logging.DEBUG if function.__name__ in _failed else logging.WARNING
            _failed.add(function.__name__)
            logger.log(level, "metrics: %s failed", function.__name__, exc_info=True)
    return guarded


def bounded(family: str, value, known=None) -> str:
    """`value` as a label value of bounded cardinality: one of `known` when given (else
    "other"); otherwise VOD's code character set and length, and "other" once this process
    has seen _MAX_VALUES distinct values for `family`."""
    text = str(value or "")
    if known is not None:
        return text if text in known else OTHER
    text = _LABEL_TEXT.sub("_", text)[:_MAX_LABEL_LENGTH] or "unknown"
    seen = _seen.get(family)
    if seen is not None and text in seen:
        return text  # the common case: no lock
    with _seen_lock:
        seen = _seen.setdefault(family, set())
        if text in seen:
            return text
        if len(seen) >= _MAX_VALUES:
            return OTHER
        seen.add(text)
    return text


def outcome_of(error: BaseException | None) -> str:
    """`ok`, or the error's class as a label: VodThrottled -> throttled,
    VodInvalidInput -> invalid_input (a closed family of classes)."""
    if error is None:
        return "ok"
    name = type(error).__name__.removeprefix("Vod")
    return bounded("outcome", re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower())


@_guarded
def credential_issued(kind: str, via: str) -> None:
    """A credential reached the caller's answer (`via`: "create" or "refresh")."""
    CREDENTIALS_ISSUED.labels(bounded("kind", kind, KINDS), bounded("via", via)).inc()


@_guarded
def credential_refused(kind: str, error: BaseException) -> None:
    """A credential request ended without one, for `error` (a VodError or a dependency)."""
    CREDENTIALS_REFUSED.labels(bounded("kind", kind, KINDS),
                               bounded("code", getattr(error, "code", ""))).inc()


def vod_call_sent(operation: str) -> float | None:
    """A VOD request is being sent now: returns the moment to pass to `vod_call_done`."""
    try:
        VOD_CALLS_IN_FLIGHT.labels(bounded("operation", operation)).inc()
    except Exception:  # noqa: BLE001 - as _guarded; the call goes on unmeasured
        logger.debug("metrics: vod_call_sent failed", exc_info=True)
        return None
    return time.perf_counter()


@_guarded
def vod_call_done(operation: str, sent: float | None, error: BaseException | None) -> None:
    """The VOD request sent at `sent` ended (`error` None: answered). Nothing when it was
    never sent (`sent` None: the limiter refused it, or vod_call_sent failed)."""
    if sent is None:
        return
    label = bounded("operation", operation)
    VOD_CALLS_IN_FLIGHT.labels(label).dec()
    VOD_CALL_SECONDS.labels(label).observe(time.perf_counter() - sent)
    VOD_CALLS.labels(label, outcome_of(error)).inc()


@_guarded
def limiter_waited(operation: str, seconds: float) -> None:
    """A VOD call left the limiter after `seconds` in it."""
    LIMITER_WAIT_SECONDS.labels(bounded("operation", operation)).observe(max(0.0, seconds))


@_guarded
def limiter_late(operation: str, seconds: float) -> None:
    """A VOD call left the limiter `seconds` after its booked moment, later than VOD_QPS_MARGIN_MS:
    its slot is held that much longer (or it books anew)."""
    LIMITER_LATE_SECONDS.labels(bounded("operation", operation)).observe(seconds)


@_guarded
def limiter_held_until_answered(operation: str) -> None:
    """A late call's slot is held until VOD answers (its extensions' replies came late)."""
    LIMITER_HELD_UNTIL_ANSWERED.labels(bounded("operation", operation)).inc()


@_guarded
def limiter_refused(operation: str) -> None:
    """The limiter refused a VOD call (no send moment within VOD_QPS_MAX_WAIT_MS)."""
    LIMITER_REFUSALS.labels(bounded("operation", operation)).inc()


@_guarded
def throttled(scope: str) -> None:
    """A per-user rate refused an API request."""
    THROTTLE_REFUSALS.labels(bounded("scope", scope)).inc()


@_guarded
def request_queued(seconds: float, *, shed: bool) -> None:
    """A request reached the portal `seconds` after the proxy received it; `shed`: it was
    refused for that (503 overloaded)."""
    REQUEST_QUEUE_SECONDS.observe(seconds)
    if shed:
        REQUESTS_SHED.inc()


@_guarded
def callback(event_type: str, verdict: str, *, known=()) -> None:
    """A VOD callback was answered with `verdict`; `event_type` counts as itself only when
    in `known` (the event types VOD documents), else as "other" ("" for none read)."""
    event_label = bounded("event_type", event_type, known) if event_type else "none"
    CALLBACKS.labels(event_label, bounded("verdict", verdict)).inc()
