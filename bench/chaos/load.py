"""HTTP clients for the fault suite: create requests for the three kinds, the count of what
came back, and a load that runs in the background while a scenario breaks things."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

# kind -> (API route, id field in the answer, body for a title)
KINDS = {
    "video": ("videos", "video_id",
              lambda title: {"title": title, "file_name": "clip.mp4"}),
    "image": ("images", "image_id",
              lambda title: {"image_type": "default", "image_ext": "png", "title": title}),
    "attached_media": ("attached-media", "media_id",
                       lambda title: {"business_type": "watermark", "media_ext": "png",
                                      "title": title}),
}
KIND_NAMES = tuple(KINDS)
ERROR_FIELDS = ("code", "detail", "request_id")
# Error answers a client should retry, so they must say when (Retry-After). For 409 only
# the idempotency conflict qualifies; an invalid state will not mend by waiting.
RETRY_AFTER_STATUSES = {429: None, 502: None, 503: None, 504: None,
                        409: {"idempotency_key_in_use"}}
# ...except where waiting cannot help: our own VOD credentials are wrong.
NO_RETRY_CODES = {"vod_not_configured"}
EXAMPLES = 3


@dataclass
class Answer:
    """One request's outcome: the HTTP status (None: no answer at all), the JSON body when
    there was one, the headers, and the media id of a 201."""

    status: int | None
    body: dict | None = None
    headers: dict = field(default_factory=dict)
    media_id: str | None = None
    error: str = ""


def error_problem(response: requests.Response) -> str:
    """Why an error answer breaks the documented shape ('' when it does not, or is no
    error): JSON with code, detail and request_id, and Retry-After where a retry helps."""
    status = response.status_code
    if status < 400:
        return ""
    try:
        body = response.json()
    except ValueError:
        return f"{status} is not JSON: {response.text[:80]!r}"
    if not isinstance(body, dict) or any(name not in body for name in ERROR_FIELDS):
        return f"{status} lacks {'/'.join(ERROR_FIELDS)}: {str(body)[:120]}"
    code = body.get("code")
    if status in RETRY_AFTER_STATUSES and code not in NO_RETRY_CODES:
        codes = RETRY_AFTER_STATUSES[status]
        if (codes is None or code in codes) and not response.headers.get("Retry-After"):
            return f"{status} {code} without Retry-After (request_id {body['request_id']})"
    return ""


def retryable(answer: Answer) -> bool:
    """Whether a client should try again: no answer, 409 (key in use), 429 or 5xx."""
    return answer.status is None or answer.status in (409, 429) or answer.status >= 500


def retry_pause(answer: Answer, cap: float) -> float:
    """How long a polite client waits before its next request: Retry-After (at most `cap`)
    after a retryable answer, half a second when it names none, nothing otherwise."""
    if not retryable(answer):
        return 0.0
    try:
        return min(cap, max(0.2, float(answer.headers.get("Retry-After", 0.5))))
    except ValueError:
        return 0.5


class Outcomes:
    """What a scenario's requests got back: a status histogram, connection errors, 500s and
    malformed errors, with a few examples of each kind of trouble. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.statuses: Counter = Counter()
        self.conn_errors = 0
        self.server_errors = 0
        self.bad_errors = 0
        self.examples: dict[str, list[str]] = {}

    def _example(self, what: str, text: str) -> None:
        bucket = self.examples.setdefault(what, [])
        if len(bucket) < EXAMPLES:
            bucket.append(text)

    def record(self, label: str, response: requests.Response | None, error: str = "") -> None:
        """Count one request (`response` None: it got no HTTP answer)."""
        with self._lock:
            if response is None:
                self.conn_errors += 1
                self._example("conn errors", f"{label}: {error[:160]}")
                return
            self.statuses[response.status_code] += 1
            if response.status_code == 500:
                self.server_errors += 1
                self._example("500s", f"{label}: {response.text[:160]}")
            problem = error_problem(response)
            if problem:
                self.bad_errors += 1
                self._example("bad errors", f"{label}: {problem}")

    @property
    def total(self) -> int:
        """Requests counted, answered or not."""
        return sum(self.statuses.values()) + self.conn_errors

    def histogram(self) -> str:
        """e.g. `201:930 429:12 503:40`."""
        return " ".join(f"{status}:{count}" for status, count in sorted(self.statuses.items()))


class Api:
    """The portal's create endpoints for a few users; one keep-alive session per thread,
    as an app's HTTP client has."""

    def __init__(self, base_url: str, tokens: list[str], outcomes: Outcomes) -> None:
        self.base_url = base_url
        self.tokens = tokens
        self.outcomes = outcomes
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def create(self, kind: str, title: str, user: int, key: str | None = None) -> Answer:
        """POST a create of `kind` with `title` as user number `user` (optionally with an
        Idempotency-Key); the answer is counted in the outcomes."""
        route, id_field, body_for = KINDS[kind]
        headers = {"Authorization": f"Token {self.tokens[user % len(self.tokens)]}"}
        if key:
            headers["Idempotency-Key"] = key
        label = f"POST {route}/ {title}"
        try:
            response = self._session().post(f"{self.base_url}/api/v1/{route}/",
                                            json=body_for(title), headers=headers,
                                            timeout=(5, 60))
        except requests.RequestException as exc:
            # A broken pooled connection must not poison this thread's next request.
            self._local.session = None
            self.outcomes.record(label, None, f"{type(exc).__name__}: {exc}")
            return Answer(status=None, error=f"{type(exc).__name__}: {exc}")
        self.outcomes.record(label, response)
        try:
            body = response.json()
        except ValueError:
            body = None
        media_id = body.get(id_field) if response.status_code == 201 and \
            isinstance(body, dict) else None
        return Answer(status=response.status_code, body=body if isinstance(body, dict) else None,
                      headers=dict(response.headers), media_id=media_id)


class Load:
    """Creates over all three kinds from `threads` clients, in the background, until
    `maximum` requests, or `stop()` once at least `minimum` were sent, or `max_seconds`."""

    def __init__(self, api: Api, prefix: str, *, threads: int, minimum: int, maximum: int,
                 max_seconds: float = 120.0) -> None:
        self.api = api
        self.prefix = prefix
        self.minimum = minimum
        self.maximum = maximum
        self.deadline = time.monotonic() + max_seconds
        self._lock = threading.Lock()
        self._next = 0
        self.done = 0
        self._stopping = threading.Event()
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name=f"chaos-load-{n}") for n in range(threads)]
        self.answers: list[tuple[str, str, Answer]] = []

    def start(self) -> Load:
        """Start the clients; returns self."""
        for thread in self._threads:
            thread.start()
        return self

    def _take(self) -> int | None:
        with self._lock:
            index = self._next
            if index >= self.maximum or time.monotonic() > self.deadline \
                    or (self._stopping.is_set() and index >= self.minimum):
                return None
            self._next += 1
            return index

    def _work(self) -> None:
        while (index := self._take()) is not None:
            kind = KIND_NAMES[index % len(KIND_NAMES)]
            title = f"{self.prefix}-{index}"
            answer = self.api.create(kind, title, user=index)
            with self._lock:
                self.done += 1
                self.answers.append((kind, title, answer))
            # Clients back off as told: without it, fast refusals (Redis down) would use up
            # the whole bounded load in the first seconds of an outage.
            time.sleep(retry_pause(answer, cap=1.0))

    @property
    def finished(self) -> bool:
        """Whether every client has stopped."""
        return not any(thread.is_alive() for thread in self._threads)

    def wait_progress(self, count: int, timeout: float = 30.0) -> None:
        """Wait until `count` more requests have completed (or the load ended, or
        `timeout`): spreads a scenario's disruptions over the load."""
        target = self.done + count
        deadline = time.monotonic() + timeout
        while self.done < target and not self.finished and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self, timeout: float = 120.0) -> int:
        """Let the clients finish (after `minimum` requests); returns how many were sent."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(max(0.1, timeout))
        return self.done
