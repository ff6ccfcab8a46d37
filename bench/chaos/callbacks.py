"""Scenario (f): real uploads, so the sandbox sends its own signed notifications, and every
notification body replayed 3-5 extra times, concurrently and shuffled, with a fresh
signature. Each distinct body must be `accepted` exactly once, every other delivery
`duplicate`, and every uploaded row must end `ready`."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import oss2
import requests

from .load import KIND_NAMES, Api
from .scenarios import Context, Extra
from .services import Stack
from .verify import Snapshot, Verdict

# What each kind's finished upload makes the sandbox send.
EXPECTED_EVENTS = {"video": {"FileUploadComplete", "TranscodeComplete"},
                   "image": {"ImageUploadComplete"},
                   "attached_media": {"AttachedMediaUploadComplete"}}
# A real small file of each kind (the sandbox, like VOD, fails to process anything else).
SAMPLES = Path(__file__).resolve().parents[2] / "vodsandbox" / "samples"
SAMPLE_BY_KIND = {"video": "sample.mp4", "image": "sample.png", "attached_media": "sample.png"}
UPLOAD_THREADS = 8
REPLAY_THREADS = 16


def body_bytes(payload: dict) -> bytes:
    """The body exactly as the sandbox sent it (vodsandbox/notify.py `send`), so a replay
    has the same SHA-256 fingerprint as the original."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def signature_for(callback_url: str, timestamp: str, auth_key: str) -> str:
    """VOD's callback signature, md5hex("<CallbackURL>|<timestamp>|<AuthKey>") (the real
    algorithm, as uploads/callbacks.py checks it)."""
    return hashlib.md5(f"{callback_url}|{timestamp}|{auth_key}".encode()).hexdigest()


class Replayer:
    """Sends recorded notification bodies again, each its own number of times (3-5)."""

    def __init__(self, ctx: Context, api: Api) -> None:
        self.stack = ctx.stack
        self.rng = ctx.rng
        self.outcomes = api.outcomes
        self.bodies: dict[str, bytes] = {}
        self.quota: dict[str, int] = {}
        self.sent: Counter = Counter()
        self.answers: Counter = Counter()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=REPLAY_THREADS)

    def collect(self) -> int:
        """Take in bodies the sandbox has recorded since the last look; how many are new."""
        new = 0
        for note in self.stack.sandbox.notifications():
            body = body_bytes(note["payload"])
            digest = hashlib.sha256(body).hexdigest()
            with self._lock:
                if digest not in self.bodies:
                    self.bodies[digest] = body
                    self.quota[digest] = self.rng.randint(3, 5)
                    new += 1
        return new

    def _send(self, digest: str) -> None:
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", "X-VOD-TIMESTAMP": timestamp,
                   "X-VOD-SIGNATURE": signature_for(self.stack.callback_url, timestamp,
                                                    self.stack.callback_auth_key)}
        label = f"replay {digest[:12]}"
        try:
            response = requests.post(self.stack.callback_url, data=self.bodies[digest],
                                     headers=headers, timeout=(5, 30))
        except requests.RequestException as exc:
            self.outcomes.record(label, None, f"{type(exc).__name__}: {exc}")
            return
        self.outcomes.record(label, response)
        try:
            code = response.json().get("code")
        except (ValueError, AttributeError):
            code = None
        with self._lock:
            self.answers[code or response.status_code] += 1

    def replay(self, share: float) -> None:
        """Send about `share` of each body's remaining replays, all of them shuffled
        together and sent concurrently; waits for them."""
        batch = []
        with self._lock:
            for digest, quota in self.quota.items():
                left = quota - self.sent[digest]
                take = left if share >= 1 else min(left, max(1, round(quota * share)))
                batch += [digest] * take
                self.sent[digest] += take
        self.rng.shuffle(batch)
        list(self._pool.map(self._send, batch))

    def close(self) -> None:
        """Stop the sending threads."""
        self._pool.shutdown(wait=False, cancel_futures=True)


def upload(answer_body: dict, data: bytes) -> str:
    """Put `data` with the credential of a 201 answer, as scripts/upload_file.py does;
    '' or the error."""
    credential = answer_body["upload"]
    auth = oss2.StsAuth(credential["access_key_id"], credential["access_key_secret"],
                        credential["security_token"])
    bucket = oss2.Bucket(auth, credential["endpoint"], credential["bucket"])
    try:
        bucket.put_object(credential["object_key"], data)
    except oss2.exceptions.OssError as exc:
        return f"{type(exc).__name__}: {exc}"
    return ""


def _delivered(stack: Stack, media: dict[str, str]) -> bool:
    """Whether the sandbox is done with every uploaded media's events (delivered, or given
    up after its tries) and every media is Normal."""
    done: dict[str, set] = defaultdict(set)
    for note in stack.sandbox.notifications():
        if note["delivered"] or note["attempt"] >= 3:
            done[note["media_id"]].add(note["event_type"])
    return all(EXPECTED_EVENTS[kind] <= done[media_id] for media_id, kind in media.items())


def callbacks(ctx: Context, api: Api, before: Snapshot) -> Extra:
    """(f) ~60 uploads end to end with every notification replayed 3-5 times."""
    stack = ctx.stack
    count = ctx.scaled(60, 6)
    prefix = ctx.prefix("f")
    uploaded: dict[str, str] = {}  # media id -> kind
    failures: list[str] = []
    lock = threading.Lock()

    def one(index: int) -> None:
        kind = KIND_NAMES[index % len(KIND_NAMES)]
        answer = api.create(kind, f"{prefix}-{index}", user=index)
        if answer.status != 201 or not answer.body:
            return
        problem = upload(answer.body, (SAMPLES / SAMPLE_BY_KIND[kind]).read_bytes())
        with lock:
            if problem:
                failures.append(f"{kind} {answer.media_id}: {problem}")
            else:
                uploaded[answer.media_id] = kind

    replayer = Replayer(ctx, api)
    pool = ThreadPoolExecutor(max_workers=UPLOAD_THREADS)
    try:
        futures = [pool.submit(one, index) for index in range(count)]
        # Meanwhile: replay what has arrived so far, about one in three of each body's quota.
        while not all(future.done() for future in futures):
            if replayer.collect():
                replayer.replay(share=0.34)
            time.sleep(0.3)
        for future in futures:
            future.result()
        deadline = time.monotonic() + 60
        while not _delivered(stack, uploaded) and time.monotonic() < deadline:
            replayer.collect()
            replayer.replay(share=0.34)
            time.sleep(0.3)
        # After: the rest of every body's replays, shuffled together.
        replayer.collect()
        replayer.replay(share=1.0)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        replayer.close()
    notes = [f"{len(uploaded)}/{count} uploaded, {len(replayer.bodies)} distinct bodies, "
             f"{sum(replayer.sent.values())} replays "
             f"({', '.join(f'{k} {v}' for k, v in replayer.answers.most_common())})"]
    if failures:
        notes.append(f"{len(failures)} OSS uploads failed, e.g. {failures[0]}")

    def after(verdict: Verdict) -> list[str]:
        fingerprints = list(replayer.bodies)
        with stack.db() as connection:
            rows = connection.execute(
                "SELECT fingerprint, status FROM uploads_vodevent WHERE fingerprint = ANY(%s)",
                [fingerprints]).fetchall()
        statuses: dict[str, Counter] = defaultdict(Counter)
        for fingerprint, status in rows:
            statuses[fingerprint][status] += 1
        for fingerprint in fingerprints:
            seen = statuses[fingerprint]
            event = json.loads(replayer.bodies[fingerprint])
            label = f"{event.get('EventType')} {fingerprint[:12]}"
            if seen["accepted"] > 1:
                verdict.duplicated.append(f"{label}: accepted {seen['accepted']} times")
            elif seen["accepted"] == 0:
                verdict.wrong.append(f"{label}: never accepted ({dict(seen)})")
            others = {k: v for k, v in seen.items() if k not in ("accepted", "duplicate")}
            if others:
                verdict.wrong.append(f"{label}: deliveries ended {others}")
        final = {row.vod_id: row for row in verdict.new_rows.values() if row.vod_id}
        for media_id, kind in uploaded.items():
            row = final.get(media_id)
            if row is None or row.status != "ready":
                verdict.wrong.append(f"{kind} {media_id} uploaded, row "
                                     f"{row.status if row else 'missing'} (expected ready)")
        total = sum(sum(c.values()) for c in statuses.values())
        return [f"{total} VodEvent rows for {len(fingerprints)} bodies"]

    return Extra(notes=notes, after=after)
