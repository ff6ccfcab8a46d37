"""An open-loop load generator: requests leave at a constant arrival rate, answered or not.

A closed loop (wrk, N clients) sends the next request only once the previous one answered,
so a slow server slows the load down and its queueing never shows (coordinated omission).
Here request i is due at start + i / rate; at that moment it goes out on an idle keep-alive
connection, or on a new one when every connection is busy, and its latency is counted from
the moment it was due, so time spent waiting anywhere (the client's loop, the kernel's accept
queue, gunicorn's) counts.

Plain asyncio streams and HTTP/1.1; nothing to install.
"""

from __future__ import annotations

import asyncio
import time
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Awaitable, Callable

# gunicorn closes a keep-alive connection idle for `keepalive` (5 s) seconds; reusing one
# about to close would race it, so connections idle longer than this are dropped instead.
MAX_IDLE_SECONDS = 3.0


@dataclass
class Answer:
    """One request: when it was due and done (event-loop time), and how it ended."""

    due: float
    done: float
    status: int | None  # None: no answer (timeout or connection error)
    error: str | None = None  # "timeout", or the connection error's class name
    retry_after: str | None = None
    in_window: bool = False  # due inside the measured window (after the warm-up)
    started: float = 0.0  # when the generator got to it (later than due when it lags)

    @property
    def latency_ms(self) -> float:
        """From the moment the request was due to its answer's last byte."""
        return (self.done - self.due) * 1000


@dataclass
class OpenLoopResult:
    """Every answer of a run, and the measured window's bounds (event-loop time)."""

    answers: list[Answer]
    window: tuple[float, float]
    rate: float
    connections_opened: int
    most_in_flight: int
    marks: dict[str, object] = field(default_factory=dict)  # what the window hooks returned

    @property
    def measured(self) -> list[Answer]:
        """The answers to requests due inside the window."""
        return [answer for answer in self.answers if answer.in_window]

    @property
    def duration(self) -> float:
        """The window's length in seconds."""
        return self.window[1] - self.window[0]

    def served_per_second(self) -> float:
        """2xx answers completed inside the window, per second: the rate at which credentials
        went out while the load was steady (warm-up requests finishing in it count, the
        window's last requests finishing after it do not)."""
        start, end = self.window
        done = sum(1 for answer in self.answers
                   if answer.status is not None and 200 <= answer.status < 300
                   and start <= answer.done < end)
        return done / self.duration

    def late_ms(self, fraction: float) -> float:
        """How late the generator itself sent the window's requests (a percentile, ms): when
        this grows, the client, not the server, is adding latency."""
        return percentile([(answer.started - answer.due) * 1000 for answer in self.measured],
                          fraction)

    def statuses(self, measured_only: bool = True) -> Counter:
        """Answers by class: '2xx', '429', '5xx', 'other', 'timeout', 'conn'."""
        counts: Counter = Counter()
        for answer in (self.measured if measured_only else self.answers):
            counts[status_class(answer)] += 1
        return counts


def status_class(answer: Answer) -> str:
    """'2xx', '429', '5xx', 'other' (any other status), 'timeout' or 'conn' (no answer)."""
    if answer.status is None:
        return "timeout" if answer.error == "timeout" else "conn"
    if 200 <= answer.status < 300:
        return "2xx"
    if answer.status == 429:
        return "429"
    if answer.status >= 500:
        return "5xx"
    return "other"


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (0 < fraction <= 1) of `values`; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer
        self.idle_since = 0.0

    def close(self) -> None:
        self.writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bool]:
    """Status, headers (lower-case names) and whether the connection may be reused; the body
    is read and thrown away."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("closed before the status line")
    version, status, _ = status_line.decode("latin-1").split(" ", 2)
    headers: dict[str, str] = {}
    while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    keep = version == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while size := int((await reader.readline()).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readline()
    else:
        await reader.read()  # until the server closes
        keep = False
    return int(status), headers, keep


def build_requests(host: str, port: int, path: str, tokens: list[str],
                   body: bytes) -> list[bytes]:
    """One POST per token (`Authorization: Token <token>`), as raw HTTP/1.1 bytes."""
    return [(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
             f"Content-Type: application/json\r\nAuthorization: Token {token}\r\n"
             f"Content-Length: {len(body)}\r\n\r\n").encode() + body for token in tokens]


async def _run(host: str, port: int, requests: list[bytes], rate: float, warmup: float,
               duration: float, timeout: float,
               hooks: dict[str, Callable[[], object]]) -> OpenLoopResult:
    loop = asyncio.get_running_loop()
    idle: list[_Connection] = []
    answers: list[Answer] = []
    opened = in_flight = most = 0

    async def exchange(payload: bytes) -> tuple[int, dict[str, str]]:
        nonlocal opened
        connection = None
        while idle:
            candidate = idle.pop()  # the most recently used: the least likely to be closing
            if loop.time() - candidate.idle_since < MAX_IDLE_SECONDS:
                connection = candidate
                break
            candidate.close()
        if connection is None:
            connection = _Connection(*await asyncio.open_connection(host, port))
            opened += 1
        try:
            connection.writer.write(payload)
            await connection.writer.drain()
            status, headers, keep = await _read_response(connection.reader)
        except BaseException:
            connection.close()
            raise
        if keep:
            connection.idle_since = loop.time()
            idle.append(connection)
        else:
            connection.close()
        return status, headers

    async def one(payload: bytes, due: float, in_window: bool) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        answer = Answer(due=due, done=0.0, status=None, in_window=in_window,
                        started=loop.time())
        try:
            # As the proxy in front would (nginx: "t=${msec}"): when the request arrived.
            arrived = time.time() - (loop.time() - due)
            stamped = payload.replace(b"\r\n\r\n", f"\r\nX-Request-Start: t={arrived:.3f}"
                                      "\r\n\r\n".encode(), 1)
            status, headers = await asyncio.wait_for(exchange(stamped), timeout)
            answer.status, answer.retry_after = status, headers.get("retry-after")
        except TimeoutError:
            answer.error = "timeout"
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            answer.error = type(exc).__name__  # refused, reset, or a garbled answer
        answer.done = loop.time()
        in_flight -= 1
        answers.append(answer)

    async def mark(at: float, name: str) -> None:
        # The hook (reading /proc) runs in a thread, so the schedule never waits on it.
        await asyncio.sleep(max(0.0, at - loop.time()))
        if name in hooks:
            marks[name] = await loop.run_in_executor(None, hooks[name])

    marks: dict[str, object] = {}
    start = loop.time() + 0.05
    window = (start + warmup, start + warmup + duration)
    markers = [asyncio.create_task(mark(window[0], "start")),
               asyncio.create_task(mark(window[1], "end"))]
    tasks = []
    total = int(round(rate * (warmup + duration)))
    for index in range(total):
        due = start + index / rate
        if (delay := due - loop.time()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(requests[index % len(requests)], due,
                                             window[0] <= due < window[1])))
    await asyncio.gather(*markers)
    await asyncio.gather(*tasks)
    for connection in idle:
        connection.close()
    return OpenLoopResult(answers=answers, window=window, rate=rate, connections_opened=opened,
                          most_in_flight=most, marks=marks)


def run_open_loop(url: str, path: str, tokens: list[str], body: bytes, *, rate: float,
                  warmup: float, duration: float, timeout: float = 30.0,
                  on_start: Callable[[], object] | None = None,
                  on_end: Callable[[], object] | None = None) -> OpenLoopResult:
    """POST `body` to `url` + `path` at `rate` per second for `warmup` + `duration` seconds
    (tokens in turn), then wait for every answer (at most `timeout` each). `on_start` and
    `on_end` run when the measured window opens and closes; what they return is in
    `result.marks["start"]` / `["end"]`."""
    host, port = url.split("://", 1)[1].rstrip("/").rsplit(":", 1)
    hooks = {name: hook for name, hook in (("start", on_start), ("end", on_end)) if hook}
    coroutine: Awaitable[OpenLoopResult] = _run(
        host, int(port), build_requests(host, int(port), path, tokens, body), rate, warmup,
        duration, timeout, hooks)
    return asyncio.run(coroutine)
