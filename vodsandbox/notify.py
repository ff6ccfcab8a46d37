"""Event notifications delivered as VOD delivers HTTP callbacks, from one background thread.

VOD POSTs the event as JSON and counts only an HTTP 200 answered within 5 s as delivered;
otherwise it tries again 1 s later, 3 tries in all, then drops the event. With an AuthKey
set it adds X-VOD-TIMESTAMP (Unix seconds) and
X-VOD-SIGNATURE = md5hex("<CallbackURL>|<timestamp>|<AuthKey>").

The same thread runs other timed jobs (a video's transcoding finishing), so the sandbox has
one place that holds pending work: reset() drops it, stop() drops it and joins the thread.
Deliveries never run on an OSS request's thread, so a slow receiver never slows an upload.

Every attempt is recorded for tests: {url, event_type, media_id, attempt, status, delivered,
error, time, payload, duplicate, headers}; `duplicate` marks the second delivery of an event
sent twice on purpose (callback_duplicates).

VOD warns that "duplicates and reordering are possible"; send() can play both: an event
delivered a second time, and a media's events held until its last one of a sequence is due,
then delivered newest first.
"""

from __future__ import annotations

import hashlib
import heapq
import http.client
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from .config import is_loopback_host

logger = logging.getLogger("vodsandbox")

ATTEMPTS = 3  # tries in all, as VOD makes them
RETRY_INTERVAL = 1.0  # seconds between a failed try and the next
TIMEOUT = 5.0  # seconds VOD waits for the 200


def vod_signature(url: str, timestamp: str, auth_key: str) -> str:
    """VOD's callback signature: md5hex("<CallbackURL>|<timestamp>|<AuthKey>")."""
    return hashlib.md5(f"{url}|{timestamp}|{auth_key}".encode()).hexdigest()


def is_loopback_url(url: str) -> bool:
    """Whether a URL points at this machine (the sandbox sends nothing further)."""
    return is_loopback_host(urlsplit(url).hostname or "")


class Notifier:
    """A timed job queue on one lazily started daemon thread, and the callback deliverer."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._jobs: list[tuple[float, int, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._generation = 0  # bumped by clear(): results of older work are discarded
        self._running = 0  # jobs being run right now
        self._records: list[dict] = []
        # Events held for reordering, per media id: (generation, event, duplicate chance).
        self._held: dict[str, list[tuple[int, dict, float]]] = {}
        # Draws for callback_duplicates; a rate of 0 or 1 never draws, so tests of those are
        # exact. seed() makes the rates in between repeatable.
        self._random = random.Random()
        self._thread: threading.Thread | None = None
        self._stop_flag = threading.Event()
        # The generation of the job the notifier thread is running: work a job asks for
        # (a retry, the event after a transcoding) belongs to that job's generation.
        self._local = threading.local()
        self.thread_name = "vodsandbox-notify"
        self.allow_remote = False

    # --- jobs ----------------------------------------------------------------------------

    def _origin(self) -> int | None:
        """The generation new work belongs to; None when it comes from a job started before
        the last reset()/stop() (called with the lock held)."""
        inherited = getattr(self._local, "generation", None)
        if inherited is not None and inherited != self._generation:
            return None
        return self._generation

    def schedule(self, delay: float, job: Callable[[], None]) -> None:
        """Run `job` on the notifier thread after `delay` seconds (unless cleared first).

        Asked for by a job that began before a reset()/stop(), it is dropped: no event
        of a forgotten upload goes out, and no thread starts again after stop()."""
        with self._cond:
            generation = self._origin()
            if generation is None:
                return
            heapq.heappush(self._jobs, (time.monotonic() + max(0.0, delay), next(self._seq),
                                        generation, job))
            if self._thread is None:
                # Each thread has its own stop flag, so a thread still finishing a job after
                # stop() can never pick up work meant for its successor.
                self._stop_flag = threading.Event()
                self._thread = threading.Thread(target=self._run, args=(self._stop_flag,),
                                                name=self.thread_name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _run(self, stop_flag: threading.Event) -> None:
        while True:
            with self._cond:
                while not stop_flag.is_set() and (not self._jobs
                                                  or self._jobs[0][0] > time.monotonic()):
                    timeout = self._jobs[0][0] - time.monotonic() if self._jobs else None
                    self._cond.wait(timeout)
                if stop_flag.is_set():
                    return
                _, _, generation, job = heapq.heappop(self._jobs)
                if generation != self._generation:
                    continue
                self._running += 1
                self._local.generation = generation
            try:
                job()
            except Exception:
                # A bug in one job must not end the thread every later notification needs.
                logger.exception("vodsandbox notifier job failed")
            finally:
                self._local.generation = None
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()

    def clear(self) -> None:
        """Drop pending jobs and the record; work already running is discarded when done."""
        with self._cond:
            self._jobs.clear()
            self._records.clear()
            self._held.clear()
            self._generation += 1
            self._cond.notify_all()

    def stop(self, join_timeout: float = TIMEOUT + 1.0) -> None:
        """Drop pending jobs, end the thread and wait for it (an attempt in flight may take
        TIMEOUT); the record stays for inspection."""
        with self._cond:
            thread = self._thread
            self._jobs.clear()
            self._held.clear()
            self._generation += 1
            self._stop_flag.set()
            self._thread = None
            self._cond.notify_all()
        if thread is not None:
            thread.join(join_timeout)

    def seed(self, value: int | None) -> None:
        """Make the callback_duplicates draws repeatable (None: from the system again)."""
        self._random.seed(value)

    def idle(self) -> bool:
        """Whether no job is pending or running."""
        with self._cond:
            return not self._jobs and not self._running

    def wait_until_idle(self, timeout: float = 10.0) -> bool:
        """Wait until nothing is pending or running; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._jobs or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                # Pending jobs may be due later with no notify in between: wake to re-check.
                self._cond.wait(min(remaining, 0.05))
            return True

    # --- deliveries ----------------------------------------------------------------------

    def send(self, url: str, payload: dict, auth_key: str | None, media_id: str = "", *,
             duplicates: float = 0.0, reorder: bool = False, final: bool = True) -> None:
        """Deliver one event to `url` as VOD does (first try now, on the notifier thread).

        Fault modes VOD warns of ("duplicates and reordering are possible"):
        `duplicates` is the chance (0..1) the event is also delivered a second time (its
        records say `duplicate: True`); with `reorder`, a media's events are held until its
        `final` event of the sequence is sent, then all go out newest first.
        """
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        event = {"url": url, "event_type": payload.get("EventType", ""), "media_id": media_id,
                 "payload": payload, "body": body, "auth_key": auth_key, "duplicate": False}
        with self._cond:
            generation = self._origin()
            if generation is None:
                return
            if reorder:
                held = self._held.setdefault(media_id, [])
                held.append((generation, event, duplicates))
                if not final:
                    return
                del self._held[media_id]
                # Held across a reset()? Those belong to forgotten uploads: dropped.
                batch = [(e, d) for g, e, d in reversed(held) if g == generation]
            else:
                batch = [(event, duplicates)]
        for item, chance in batch:
            self.schedule(0.0, lambda item=item: self._attempt(item, 1, generation))
            if chance > 0 and (chance >= 1.0 or self._random.random() < chance):
                twin = dict(item, duplicate=True)
                self.schedule(0.0, lambda twin=twin: self._attempt(twin, 1, generation))

    def _attempt(self, event: dict, attempt: int, generation: int) -> None:
        with self._cond:
            if generation != self._generation:
                return  # queued before a reset()
        url = event["url"]
        headers = {"Content-Type": "application/json", "User-Agent": "vodsandbox-callback"}
        if event["auth_key"]:
            timestamp = str(int(time.time()))
            headers["X-VOD-TIMESTAMP"] = timestamp
            headers["X-VOD-SIGNATURE"] = vod_signature(url, timestamp, event["auth_key"])
        refused = not (self.allow_remote or is_loopback_url(url))
        if refused:
            # No traffic may leave the machine by accident: record why, never retry.
            status, error = None, "not sent: the callback URL is not on loopback"
        else:
            status, error = self._post(url, event["body"], headers)
        delivered = status == 200
        if not delivered and error is None:
            error = f"answered HTTP {status}, not 200"
        record = {"url": url, "event_type": event["event_type"], "media_id": event["media_id"],
                  "attempt": attempt, "status": status, "delivered": delivered, "error": error,
                  "time": datetime.now(UTC), "payload": event["payload"],
                  "duplicate": event["duplicate"],
                  "headers": {k: v for k, v in headers.items() if k.startswith("X-VOD-")}}
        with self._cond:
            if generation != self._generation:
                return  # the sandbox was reset while this try was in flight
            self._records.append(record)
            self._cond.notify_all()
        if not delivered and not refused and attempt < ATTEMPTS:
            self.schedule(RETRY_INTERVAL, lambda: self._attempt(event, attempt + 1, generation))
        elif not delivered:
            logger.info("vodsandbox dropped %s for %s after %d tries", event["event_type"],
                        url, attempt)

    @staticmethod
    def _post(url: str, body: bytes, headers: dict) -> tuple[int | None, str | None]:
        """One POST without redirects or proxies: (status, None) or (None, why it failed)."""
        parts = urlsplit(url)
        connection_class = (http.client.HTTPSConnection if parts.scheme == "https"
                            else http.client.HTTPConnection)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = connection_class(parts.hostname, parts.port, timeout=TIMEOUT)
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.status, None
        except (OSError, http.client.HTTPException) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()

    # --- inspection ----------------------------------------------------------------------

    def records(self) -> list[dict]:
        """Every delivery attempt so far, oldest first (copies)."""
        with self._cond:
            return [dict(record) for record in self._records]

    def wait_for(self, count: int = 1, timeout: float = 5.0, *, event_type: str | None = None,
                 delivered: bool | None = None) -> list[dict]:
        """Wait until at least `count` attempts match; the matching ones, oldest first.

        TimeoutError (listing what was seen) when they do not arrive within `timeout`.
        """
        def matching() -> list[dict]:
            return [dict(r) for r in self._records
                    if event_type in (None, r["event_type"])
                    and delivered in (None, r["delivered"])]

        deadline = time.monotonic() + timeout
        with self._cond:
            while len(found := matching()) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(r["event_type"], r["attempt"], r["status"], r["error"])
                            for r in self._records]
                    raise TimeoutError(f"{len(found)} of {count} notifications after "
                                       f"{timeout} s; attempts seen: {seen}")
                self._cond.wait(remaining)
            return found
