"""Fault injection: errors, latency, timeouts, broken answers and connection resets per
action, and a per-action QPS limit."""

from __future__ import annotations

import collections
import dataclasses
import itertools
import random
import threading
import time
from dataclasses import asdict, dataclass
from http import HTTPStatus

from .errors import VodError, status_for
from .wire import Response

# How a `body` fault spoils the answer it replaces.
BODY_FAULTS = ("truncated", "non_json")


@dataclass
class Fault:
    """One injected fault. See Faults.add for what each field does."""

    id: int
    action: str = "*"
    code: str | None = None
    rate: float = 1.0
    times: int | None = None
    latency: float = 0.0
    timeout: bool = False
    retry_after: int | None = None
    apply_after: bool = False
    status: int | None = None
    message: str | None = None
    body: str | None = None
    reset: bool = False
    fired: int = 0

    @property
    def replaces_answer(self) -> bool:
        """Whether the fault changes what the client gets (not only when it gets it)."""
        return bool(self.code or self.timeout or self.reset or self.body)

    def matches(self, action: str) -> bool:
        """Whether this fault applies to a call of `action` and is not spent."""
        return self.action in ("*", action) and (self.times is None or self.times > 0)

    def error(self) -> VodError:
        """The error this fault answers with."""
        headers = {"x-acs-retry-after": str(self.retry_after)} if self.retry_after else {}
        return VodError(self.code or "InternalError", self.message, status=self.status,
                        headers=headers)

    def as_dict(self) -> dict:
        """The fault as plain data (for listing and the control endpoints)."""
        return asdict(self)


@dataclass(frozen=True)
class Decision:
    """What the faults say about one request."""

    latency: float = 0.0
    fault: Fault | None = None  # the fault that replaces the answer, if any

    @property
    def timeout(self) -> bool:
        """Whether the answer is to be held and dropped."""
        return bool(self.fault and self.fault.timeout)

    @property
    def apply_after(self) -> bool:
        """Whether the call is carried out before the fault replaces its answer.

        A `body` fault without a `code` spoils the operation's own answer, so that call is
        always carried out."""
        fault = self.fault
        return bool(fault and (fault.apply_after or (fault.body and not fault.code)))


class Faults:
    """The set of active faults; thread-safe."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)
        self._random = random.Random(seed)

    def add(self, action: str = "*", code: str | None = None, rate: float = 1.0,
            times: int | None = None, latency: float = 0.0, timeout: bool = False,
            retry_after: int | None = None, apply_after: bool = False,
            status: int | None = None, message: str | None = None, body: str | None = None,
            reset: bool = False) -> Fault:
        """Inject a fault into calls of `action` ("*": every action).

        code: answer with this VOD error code (its usual HTTP status unless `status` is set).
        rate: the chance (0..1) that a matching call is hit.
        times: hit at most this many calls, then the fault is spent (None: no end).
        latency: seconds to wait before answering (added up over every fault that hits).
        timeout: hold the connection without answering (SandboxConfig.timeout_hold_seconds,
            or until reset/stop), then close it: the client sees a read timeout.
        retry_after: send `x-acs-retry-after: N` with the error (the SDK raises
            ThrottlingException for it).
        apply_after: carry the call out first, then lose or replace its answer, as when VOD
            acted but the answer never arrived.
        body: spoil the answer on the wire. "truncated": the head announces the whole body
            (Content-Length) but only its first half is sent before the connection closes.
            "non_json": an HTML error page (what a load balancer in front of VOD sends) in
            place of the JSON, with the same status. Without `code` the operation's own
            answer is spoiled, so the call is carried out (VOD acted); with `code` its error
            answer is.
        reset: send no answer and close the connection with a TCP RST (SO_LINGER 0), after
            the request was read: the client sees "connection reset by peer". With
            `apply_after` the call is carried out first.
        A fault with only `latency` slows calls down and lets them through.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if times is not None and times < 0:
            raise ValueError("times must be positive (or None for no end)")
        if latency < 0:
            raise ValueError("latency must not be negative")
        if status is not None and not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status")
        if body is not None and body not in BODY_FAULTS:
            raise ValueError(f"body must be one of {', '.join(BODY_FAULTS)}")
        if reset and (timeout or code or body):
            raise ValueError("a reset sends no answer: it takes no code, body or timeout")
        if timeout and body:
            raise ValueError("a timeout sends no answer: there is no body to spoil")
        fault = Fault(id=next(self._ids), action=action or "*", code=code, rate=float(rate),
                      times=times, latency=float(latency), timeout=bool(timeout),
                      retry_after=int(retry_after) if retry_after else None,
                      apply_after=bool(apply_after), status=status, message=message,
                      body=body, reset=bool(reset))
        if fault.status is None and fault.code:
            fault.status = status_for(fault.code)
        with self._lock:
            self._faults.append(fault)
        return fault

    def remove(self, fault_id: int) -> bool:
        """Remove one fault by id; False when there is none."""
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if f.id != fault_id]
            return len(self._faults) != before

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        """The active faults as plain dicts."""
        with self._lock:
            return [f.as_dict() for f in self._faults]

    def decide(self, action: str) -> Decision:
        """Roll the dice for one call: the latency to add and the fault that answers, if any."""
        latency = 0.0
        chosen = None
        with self._lock:
            for fault in self._faults:
                if not fault.matches(action) or self._random.random() >= fault.rate:
                    continue
                # A fault that would not change the answer does not spend itself on a call
                # another fault already answers.
                answers = fault.replaces_answer
                if answers and chosen is not None:
                    continue
                fault.fired += 1
                if fault.times is not None:
                    fault.times -= 1
                latency += fault.latency
                if answers:
                    chosen = fault
        return Decision(latency=latency, fault=chosen)


def spoil(response: Response, how: str) -> Response:
    """The answer as a broken network or gateway delivers it (see Faults.add's `body`)."""
    if how == "truncated":
        return dataclasses.replace(response, cut_after=len(response.body) // 2,
                                   fault="truncated")
    status = HTTPStatus(response.status)
    title = f"{status.value} {status.phrase}"
    page = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>Tengine</center>\r\n"
            "</body>\r\n</html>\r\n")
    return Response(status=response.status, headers={"Content-Type": "text/html"},
                    body=page.encode(), code=response.code, fault="non_json")


class QpsLimiter:
    """At most `limit` calls per action in any sliding one-second window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[str, collections.deque] = collections.defaultdict(collections.deque)

    def admit(self, action: str, limit: int | None) -> bool:
        """Count a call; False (and not counted) when the action is over its limit."""
        if limit is None:
            return True
        now = time.monotonic()
        with self._lock:
            window = self._windows[action]
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True

    def clear(self) -> None:
        """Forget every window."""
        with self._lock:
            self._windows.clear()
