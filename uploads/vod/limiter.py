"""Our own ceiling on VOD calls per second, shared by every process through Redis.

VOD answers `Throttling` once the account passes its QPS limit (80/s per operation in most
regions, 40/s in some). A portal serving many users must stay under it rather than pass
VOD's refusal on, so every call first books a send time. A booking at most
`VOD_QPS_MAX_WAIT_MS` ahead is taken and the call is sent at that moment; a later one is
refused at once with our own throttled error (429 + Retry-After), and VOD is never asked.
Refusals cost one Redis round trip, not a wait, and bookings are served in order.

The rule. VOD receives a call at some moment between our send and its answer. Each call
holds a slot from its send moment until one second after the latest moment VOD can have
received it; at most `VOD_QPS_LIMIT` slots are held at any instant. Then no one-second span
of VOD's arrivals can hold more than the limit (every call arriving in a span still holds
its slot at the span's end). The latest arrival moment is:

- for a call from a warm process, its send moment plus `VOD_QPS_MARGIN_MS`: the spread
  between our send and VOD's arrival (the SDK signing and the network's one-way time; VOD's
  latency is its processing, after arrival). Known when booked, so nothing is written back.
- for the first calls of a process, its answer: the SDK's first request builds its HTTP
  session (about 0.1 s, before anything is sent). Their slot is held until the answer comes
  back, plus one second.

So capacity is `limit / (1 s + margin)`, whatever VOD's latency, while this process keeps
time. Lateness is measured from the earliest the booked moment can have been (from before
Redis was asked: a busy process may read Redis's answer late). A call that leaves later
than its moment plus `VOD_QPS_MARGIN_MS` (its thread starved of CPU) holds its slot from
when it leaves (asking Redis again when its reply to that is read late too, and only after
three late replies until its answer), or books anew if a later booking may already rely on
the old slot's end: a saturated process loses capacity, never the limit (as long as the SDK's
own work before the bytes leave stays within the margin: the README's "Limits:"). That
work is not measured; it grows with the load, so a slot's margin widens to
`VOD_QPS_OVERLOAD_MARGIN_MS` while the process refuses a tenth or more of its bookings
(`_margin`), and the widening is left to that work: a call still leaves within
`VOD_QPS_MARGIN_MS` of its moment or counts as late (`_exit_allowance`).

Pacing. Within that rule, calls also keep to an even pace of one per `1 / limit` seconds,
running ahead of it by at most `VOD_QPS_BURST` calls (the generic cell rate algorithm: a
quiet account lets a burst of that many go at once). Without it, a sustained overload
keeps the window's rhythm: the whole second's worth of slots frees at once, is taken at
once by the waiting excess, and the portal's CPU then handles every admission and, a VOD
latency later, every answer in the same fraction of each second, which queues the
refusals behind them. Paced, admissions are spread over the second (bench/README.md,
"Capacity under VOD latency"). A strained process books with no burst at all (`_tolerance`):
the window's waits look like idle time to the pace, and a burst allowance let each second's
first slots go back to back again.

The service books before it writes the upload row (`book_call`, at least 20 ms ahead, the
time that takes), so a request refused here leaves no row; the gateway's next call of that
operation uses the booking.
"""

from __future__ import annotations

import contextvars
import logging
import math
import threading
import time
import uuid
from collections import defaultdict, deque
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import redis
from django.conf import settings

from .. import metrics
from ..dependencies import DependencyUnavailable
from . import slots
from .types import VodThrottled

logger = logging.getLogger("uploads.vod")

# A send moment is booked at least this far ahead: the service books before it writes the
# upload row, and the call must leave within VOD_QPS_MARGIN_MS of its moment (a late one
# books anew, wasting its slot). Not counted as waiting (VOD_QPS_MAX_WAIT_MS).
_LEAD = 0.02
# A first call's slot is held this long until its answer shortens it (longer than any call
# can take), so a process that dies mid-call frees its slots by itself.
_UNTIL_ANSWERED = 120.0

def clear() -> None:
    """Forget every slot (tests; an operator after changing VOD_QPS_LIMIT), and this
    process's recent strain."""
    slots.store(settings.REDIS_URL).clear()
    _strains.clear()


# Whether this process has had an answer from VOD: until then, its SDK has not built its
# HTTP session, and a call may leave well after its send moment.
_warm = threading.Event()


@dataclass(eq=False)
class Booking:
    """A send moment booked for one `operation` call, and whether its slot is held until
    the answer (a first call, or a late one) rather than for a fixed time.

    Redis books on its own clock; this process learns the moment as "in `wait` seconds"
    from an answer that may have waited for this thread (a busy process: the GIL, the CPU).
    So the moment is known only within the Redis round trip: `send_at` (time.monotonic) is
    its latest estimate, never before the booked moment (the call waits for it), and
    `booked_at` its earliest, never after (lateness is measured from it)."""

    operation: str
    send_at: float
    call_id: str = ""
    until_answered: bool = False
    booked_at: float = 0.0
    margin: float = 0.0  # seconds: the spread its slot covers (see _margin)
    _token: contextvars.Token | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> Booking:
        """Inside the block, the first `vod_call_slot(operation)` uses this booking (and
        waits for its moment, so the caller's own work overlaps the wait); an unused one
        simply lapses."""
        self._token = _booked.set((*_booked.get(), self))
        return self

    def __exit__(self, *exc_info) -> None:
        _booked.reset(self._token)


# The share of its bookings a process must be refusing (over the last second) to count as
# overloaded: offered exactly VOD's limit it refuses well under 1 %, at three times the
# limit two thirds.
_OVERLOADED_SHARE = 0.1


class _Strain:
    """Whether this process is strained for one operation: it refused a tenth or more of
    its bookings over the last second.

    A late call alone does not strain it: widening the margin for a second after each one
    cost the sweep at exactly VOD's rate 0.3 to 0.6 calls a second (79.2, 79.2 and 78.9/s
    against 79.5, 79.6 and 79.5/s without, at VOD +50, +150 and +300 ms), and did not keep
    the sandbox from seeing an 81st call there (2 and 6 `Throttling` per 20 s with it, 3 and
    4 without; bench/README.md, "The overload margin split between the limiter and the
    SDK"). The late call itself holds its slot from when it leaves."""

    def __init__(self):
        self._lock = threading.Lock()
        self._answers: deque[tuple[float, bool]] = deque()
        self._refused = 0

    def note(self, refused: bool) -> None:
        """Count one booking's answer."""
        now = time.monotonic()
        with self._lock:
            self._answers.append((now, refused))
            self._refused += refused
            while now - self._answers[0][0] > 1.0:
                self._refused -= self._answers.popleft()[1]

    def strained(self) -> bool:
        """Whether at least _OVERLOADED_SHARE of the last second's bookings were refused."""
        with self._lock:
            return bool(self._answers) and self._refused >= _OVERLOADED_SHARE * len(
                self._answers)


_strains: dict[str, _Strain] = defaultdict(_Strain)


def _margin(strained: bool) -> float:
    """The spread (seconds) between send and VOD's arrival that a new slot must cover.

    VOD_QPS_MARGIN_MS while the process keeps up; VOD_QPS_OVERLOAD_MARGIN_MS while it is
    strained (`_Strain`). The limiter measures how late a call leaves it, not the SDK's own
    work after that (signing, building the request), and a request can wait in it for the
    worker's others when the process is busy (for the GIL with thread workers, for the
    greenlets run before it with gevent): at 240/s on 2 cores, with threads, 2 to 3 % of the
    calls took 6 to 19 ms from the limiter to the socket (up to 24 ms at 120/s on a slower
    host), and with 5 ms VOD saw 81 to 83 calls in a second; at VOD's 80/s the sandbox saw
    at most 80 with 5 ms on an Intel host, 81 a few times a minute on a slower AMD one. The
    wider margin
    (50 ms: 45 for that work, `_exit_allowance`; gevent workers measured up to 45 ms) costs
    capacity only while there is more traffic than VOD's limit anyway (76 admitted a second
    instead of 79)."""
    margin = settings.VOD_QPS_MARGIN_MS
    if strained:
        margin = max(margin, settings.VOD_QPS_OVERLOAD_MARGIN_MS)
    return margin / 1000


def _tolerance(strained: bool) -> float:
    """How far a new booking may run ahead of the even pace (seconds): VOD_QPS_BURST calls'
    worth while the process keeps up, none while it is strained.

    Under a sustained overload the window keeps admissions waiting for its slots to free,
    which the pace counts as idle time: with a burst allowed, each second's first slots
    went back to back again, and their answers came back together a VOD latency later,
    queueing the refusals behind them (429 p90 20 to 27 ms, p99 30 to 57 ms at 240/s on 2
    cores with gevent workers). Without one, admissions stay one per 1/VOD_QPS_LIMIT s
    (p90 12 to 13 ms, p99 23 to 27 ms; bench/README.md, "gevent workers"). Nobody loses by
    it: the excess is refused either way; a quiet account still gets its burst at once."""
    if strained:
        return 0.0
    return pace_tolerance(settings.VOD_QPS_LIMIT, settings.VOD_QPS_BURST)


def _book(operation: str, lead: float = 0.0) -> Booking:
    """Book a send moment for one `operation` call, at least `lead` seconds ahead; raise
    when refused."""
    until_answered = not _warm.is_set()
    strained = _strains[operation].strained()
    margin = _margin(strained)
    hold = _UNTIL_ANSWERED if until_answered else 1 + margin
    call_id = uuid.uuid4().hex
    asked = time.monotonic()
    try:
        booked, wait = slots.store(settings.REDIS_URL).book(
            operation, settings.VOD_QPS_LIMIT, hold, settings.VOD_QPS_MAX_WAIT_MS / 1000,
            call_id, lead, _tolerance(strained))
    except redis.exceptions.RedisError as exc:
        # Nothing was sent to VOD: the caller may say so, and the client may retry.
        raise _store_down() from exc
    _strains[operation].note(refused=not booked)
    if not booked:
        raise _refused(operation, retry_after=max(1, math.ceil(wait)))
    return Booking(operation, time.monotonic() + wait, call_id, until_answered,
                   booked_at=asked + wait, margin=margin)


def pace_tolerance(limit: int, burst: int) -> float:
    """How far, in seconds, calls may run ahead of the even pace of one per 1/`limit`
    seconds: `burst` calls may leave back to back, the rest are spaced."""
    return max(0, burst - 1) / limit


def _refused(operation: str, *, retry_after: int) -> VodThrottled:
    """Our own throttled error: VOD was not called."""
    metrics.limiter_refused(operation)
    return VodThrottled("vodportal is holding VOD calls under the account's QPS limit.",
                        code="QpsLimitReached", retry_after=retry_after, operation=operation)


def _store_down() -> DependencyUnavailable:
    return DependencyUnavailable("redis", "The VOD rate limiter's store (Redis) is unavailable.")


def book_call(operation: str) -> Booking:
    """Book the next `operation` call before doing anything else for it.

    Raises VodThrottled (our own code `QpsLimitReached`) when no send moment within
    VOD_QPS_MAX_WAIT_MS can be had, and DependencyUnavailable when Redis cannot be asked;
    then nothing has been sent and nothing needs undoing.
    """
    if settings.VOD_QPS_LIMIT <= 0:
        return Booking(operation, 0.0)  # limit switched off: send at once
    return _book(operation, _LEAD)


# Bookings made ahead in this context and not yet used.
_booked: contextvars.ContextVar[tuple[Booking, ...]] = contextvars.ContextVar(
    "vod_booked", default=())


def _take_booking(operation: str) -> Booking | None:
    held = _booked.get()
    booking = next((entry for entry in held if entry.operation == operation), None)
    if booking is not None:
        # A second call of the operation books its own.
        _booked.set(tuple(entry for entry in held if entry is not booking))
    return booking


@contextmanager
def vod_call_slot(operation: str) -> Iterator[None]:
    """Let one `operation` call through at its booked moment: the `Booking` the caller is
    inside, or a fresh one (up to VOD_QPS_MAX_WAIT_MS ahead). Raises like `book_call`."""
    entered = time.monotonic()
    booking = _take_booking(operation)
    if booking is None and settings.VOD_QPS_LIMIT > 0:
        booking = _book(operation)
    if booking is not None:
        booking = _on_time(booking)
        metrics.limiter_waited(operation, time.monotonic() - entered)
    try:
        yield
    finally:
        _warm.set()  # VOD answered (or failed): the SDK's session exists now
        if booking is not None and booking.until_answered:
            _hold(booking, 1.0, sent=True)


# How many times a very late call books anew before giving up.
_REBOOKINGS = 3


def _on_time(booking: Booking) -> Booking:
    """Wait for the booking's moment. A call that leaves later than the margin allows (its
    thread starved of CPU, the caller's work longer than the lead, or the booking's answer
    slow to reach this thread) holds its slot from when it leaves instead; one so late that
    a later booking may rely on its old end books anew. Raises VodThrottled when no new
    moment can be had, DependencyUnavailable when Redis cannot be told."""
    late_by = 0.0
    for _ in range(_REBOOKINGS + 1):
        delay = booking.send_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        # From the earliest the moment can have been: any wait for the booking's answer
        # counts as lateness (measured from send_at, a call whose answer sat 40 ms behind
        # busy threads looked on time while VOD saw 85 calls in a second).
        late_by = time.monotonic() - booking.booked_at
        if not booking.call_id or booking.until_answered or late_by <= _exit_allowance(booking):
            return booking
        metrics.limiter_late(booking.operation, late_by)
        if _extended(booking, booking.margin):
            return booking
        booking = _book(booking.operation)
    logger.warning("VOD limiter: a %s call kept missing its moment (last by %.0f ms)",
                   booking.operation, late_by * 1000)
    raise _refused(booking.operation, retry_after=1)


def _exit_allowance(booking: Booking) -> float:
    """How late a call may leave the limiter and still be on time: VOD_QPS_MARGIN_MS, even
    when its slot covers the wider overload margin. The rest of that margin is for the SDK's
    work after the limiter, which waits for the worker's other requests in a strained
    process. With the whole
    margin allowed here, calls left up to 15 ms late, then spent up to 24 ms more in the SDK,
    and the sandbox saw 81 and 82 calls in a second at 120/s offered, on a 2-core host where
    the portal was not even saturated (bench/README.md, "The overload margin split between
    the limiter and the SDK")."""
    return min(booking.margin, settings.VOD_QPS_MARGIN_MS / 1000)


# How many times a late call asks Redis to extend its slot before holding it until its answer.
_EXTENSION_TRIES = 3


def _extended(booking: Booking, margin: float) -> bool:
    """Make a late call's slot last from now (about when it leaves); False when it is too
    late for that and must book anew.

    Extending is safe while no booking already made can lie past the slot's old end:
    bookings reach at most VOD_QPS_MAX_WAIT_MS plus the lead ahead of now. The new end is
    set on Redis's clock, at a moment known only to lie between asking and reading the
    reply, so it is set later than needed by every delay seen so far plus the margin, and
    kept once a reply comes back within the margin: this thread is running promptly again,
    as a call on time is trusted to be. A reply read later than that (the thread starved
    again) is asked again, up to _EXTENSION_TRIES times, then the slot is held until the
    call's answer (VOD cannot have received it later). Holding it until the answer at the
    first late reply cost a whole VOD latency each time, most of the limiter's loss at
    80/s and VOD +300 ms on 2 busy cores; accepting a late reply as long as it was no later
    than the previous one let a starved thread leave the limiter and stall again inside
    the SDK, and VOD saw 81 and 82 calls in a second under overload (bench/README.md)."""
    def may_extend() -> bool:
        late_by = time.monotonic() - booking.booked_at
        return late_by < 1 + margin - settings.VOD_QPS_MAX_WAIT_MS / 1000 - _LEAD

    allowance = margin
    for _ in range(_EXTENSION_TRIES):
        if not may_extend():
            return False
        asked = time.monotonic()
        _hold(booking, 1 + margin + allowance, sent=False)
        took = time.monotonic() - asked
        if took <= margin:
            return True
        allowance = max(allowance, took)
    if not may_extend():
        return False
    _hold(booking, _UNTIL_ANSWERED, sent=False)
    booking.until_answered = True
    metrics.limiter_held_until_answered(booking.operation)
    return True


def _hold(booking: Booking, seconds: float, *, sent: bool) -> None:
    """Hold the booking's slot until `seconds` from now."""
    try:
        slots.store(settings.REDIS_URL).hold_from_now(booking.operation, booking.call_id, seconds)
    except redis.exceptions.RedisError as exc:
        if not sent:
            raise _store_down() from exc
        # VOD has answered by now: losing its answer for the limiter's bookkeeping would be
        # worse. The slot frees itself after _UNTIL_ANSWERED.
        logger.warning("VOD limiter: could not free a slot of %s (Redis unavailable)",
                       booking.operation)
