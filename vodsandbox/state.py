"""What the sandbox remembers: media, ReferenceIds, nonces and the call log, behind one lock.

Also the sandbox's clock, which tests move forward to expire credentials without sleeping.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

ISO_SECONDS = "%Y-%m-%dT%H:%M:%SZ"
# Remembered nonces below this count are never pruned.
_NONCE_PRUNE_FLOOR = 4096


def iso(moment: datetime) -> str:
    """VOD's time format: UTC to the second, with a Z."""
    return moment.astimezone(UTC).strftime(ISO_SECONDS)


def iso_millis(moment: datetime) -> str:
    """VOD's millisecond form, as ImageUploadComplete's EventTime: `yyyy-MM-ddTHH:mm:ss:SSSZ`
    (a colon, not a dot, before the milliseconds, as VOD documents it)."""
    utc = moment.astimezone(UTC)
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}:{utc.microsecond // 1000:03d}Z"


class Clock:
    """Real time plus an offset that only tests move.

    The offset ages what the sandbox issued (credential expiry, creation times). Request
    freshness (x-acs-date, Timestamp) is checked against `wall()`, the real time, because the
    client signs with the real time: advancing the sandbox must not make every later request
    look stale.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    def time(self) -> float:
        """Seconds since the epoch, on the sandbox's clock."""
        with self._lock:
            return time.time() + self._offset

    def now(self) -> datetime:
        """The sandbox's current time, timezone-aware UTC."""
        return datetime.fromtimestamp(self.time(), tz=UTC)

    @staticmethod
    def wall() -> datetime:
        """The real current time (what clients sign with)."""
        return datetime.now(UTC)

    @property
    def offset(self) -> float:
        """Seconds the sandbox's clock is ahead of real time."""
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> datetime:
        """Move the sandbox's clock forward (or back, if negative); return the new now()."""
        with self._lock:
            self._offset += float(seconds)
        return self.now()

    def reset(self) -> None:
        """Back to real time."""
        with self._lock:
            self._offset = 0.0


@dataclass
class Credential:
    """One STS-like upload credential issued for one media."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    issued_at: datetime
    expires_at: datetime

    def as_dict(self) -> dict:
        """The credential as plain data (what get_video()'s "Credential" holds)."""
        return {"AccessKeyId": self.access_key_id, "AccessKeySecret": self.access_key_secret,
                "SecurityToken": self.security_token, "IssuedAt": self.issued_at,
                "ExpiresAt": self.expires_at, "ExpireUTCTime": iso(self.expires_at)}


@dataclass
class Media:
    """A video, image or attached media the sandbox has issued."""

    kind: str  # "video", "image" or "attached"
    media_id: str
    params: dict
    status: str
    created: datetime
    address: dict
    credentials: list[Credential]
    reference_id: str | None = None
    details: dict = field(default_factory=dict)  # kind-specific: URLs, types, extensions
    modified: datetime | None = None

    @property
    def credential(self) -> Credential:
        """The newest credential."""
        return self.credentials[-1]

    def snapshot(self) -> dict:
        """A plain-dict copy for inspection: received params first, the sandbox's view over them."""
        view = dict(self.params)
        view.update(self.details)
        view.update({
            "MediaId": self.media_id,
            {"video": "VideoId", "image": "ImageId", "attached": "MediaId"}[self.kind]:
                self.media_id,
            "Kind": self.kind,
            "Status": self.status,
            "ReferenceId": self.reference_id,
            "CreationTime": iso(self.created),
            "ModificationTime": iso(self.modified or self.created),
            "Params": dict(self.params),
            "UploadAddress": dict(self.address),
            "Credential": self.credential.as_dict(),
            "CredentialExpiresAt": self.credential.expires_at,
            "CredentialsIssued": len(self.credentials),
            "RefreshCount": len(self.credentials) - 1,
        })
        return copy.deepcopy(view)


class Store:
    """Thread-safe memory of everything the sandbox issued and every call it received."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._media: dict[str, Media] = {}
        self._references: dict[str, str] = {}  # ReferenceId -> VideoId
        self._sts: dict[str, str] = {}  # STS AccessKeyId -> media id (for the OSS side)
        self._nonces: dict[tuple[str, str], float] = {}  # (AccessKeyId, nonce) -> forget at
        self._prune_nonces_above = _NONCE_PRUNE_FLOOR
        self._calls: list[dict] = []
        # Called with each list of media a Delete* action removed (the sandbox sends VOD's
        # DeleteMediaComplete through it); None: nobody listens.
        self.on_deleted: Callable[[list[Media]], None] | None = None

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._media.clear()
            self._references.clear()
            self._sts.clear()
            self._nonces.clear()
            self._calls.clear()

    # --- media ---------------------------------------------------------------------------

    def add_media(self, media: Media) -> Media:
        """Remember a new media; for a video with a ReferenceId, refuse a second one.

        Returns the media stored under that ReferenceId when it was taken already (the caller
        turns that into VOD's error), else the new media itself.
        """
        with self._lock:
            if media.reference_id:
                existing = self._references.get(media.reference_id)
                if existing is not None:
                    return self._media[existing]
                self._references[media.reference_id] = media.media_id
            self._media[media.media_id] = media
            self._sts[media.credential.access_key_id] = media.media_id
            return media

    def add_credential(self, media_id: str, credential: Credential, now: datetime) -> None:
        """Issue another credential for a media (RefreshUploadVideo)."""
        with self._lock:
            media = self._media[media_id]
            media.credentials.append(credential)
            media.modified = now
            self._sts[credential.access_key_id] = media_id

    def get(self, media_id: str, kind: str | None = None) -> Media | None:
        """The live record, for its fixed parts (id, kind, address); read the changing ones
        through snapshot(), which copies them under the lock."""
        with self._lock:
            media = self._media.get(media_id)
        if media is None or (kind is not None and media.kind != kind):
            return None
        return media

    def snapshot(self, media_id: str, kind: str | None = None) -> dict | None:
        """A copy of one media's state, or None."""
        with self._lock:
            media = self._media.get(media_id)
            if media is None or (kind is not None and media.kind != kind):
                return None
            return media.snapshot()

    def video_by_reference(self, reference_id: str) -> Media | None:
        """The video created with this ReferenceId, if any."""
        with self._lock:
            media_id = self._references.get(reference_id)
            return self._media.get(media_id) if media_id else None

    def by_sts_key(self, access_key_id: str) -> tuple[Media, Credential] | None:
        """The media and credential an STS AccessKeyId was issued for (for the OSS side)."""
        with self._lock:
            media = self._media.get(self._sts.get(access_key_id, ""))
            if media is None:
                return None
            for credential in media.credentials:
                if credential.access_key_id == access_key_id:
                    return media, credential
            return None

    def sts_token_known(self, security_token: str) -> bool:
        """Whether some credential the sandbox issued carries this SecurityToken (the OSS
        side tells a token of another credential from a made-up one)."""
        with self._lock:
            return any(credential.security_token == security_token
                       for media in self._media.values() for credential in media.credentials)

    def delete(self, media_id: str, kind: str) -> bool:
        """Forget one media; a deleted video's ReferenceId becomes free again."""
        return self.remove(media_id, kind) is not None

    def remove(self, media_id: str, kind: str) -> Media | None:
        """Forget one media and return it (None when there was none of that kind)."""
        with self._lock:
            media = self._media.get(media_id)
            if media is None or media.kind != kind:
                return None
            del self._media[media_id]
            if media.reference_id:
                self._references.pop(media.reference_id, None)
            for credential in media.credentials:
                self._sts.pop(credential.access_key_id, None)
            return media

    def announce_deleted(self, removed: list[Media]) -> None:
        """Tell the listener (on_deleted) which media a Delete* action removed; called outside
        the lock, since the listener schedules notifications."""
        listener = self.on_deleted
        if listener is not None and removed:
            listener(list(removed))

    def media_ids(self, kind: str | None = None) -> list[str]:
        """Ids of every media of a kind (all kinds when None), oldest first."""
        with self._lock:
            return [m.media_id for m in self._media.values() if kind in (None, m.kind)]

    def created_snapshots(self, kind: str) -> list[tuple[datetime, dict]]:
        """(exact creation moment, snapshot) of every media of a kind, oldest first.

        Read under one lock so a search sees one state. The moment is kept apart because the
        snapshot's CreationTime is cut to the second, too coarse for the search index's lag.
        """
        with self._lock:
            return [(m.created, m.snapshot()) for m in self._media.values() if m.kind == kind]

    def set_status(self, media_id: str, status: str, now: datetime,
                   details: dict | None = None) -> dict | None:
        """Move a media to a status (and merge details such as Size); its snapshot, or None."""
        with self._lock:
            media = self._media.get(media_id)
            if media is None:
                return None
            media.status = status
            media.details.update(details or {})
            media.modified = now
            return media.snapshot()

    def forget(self, media_id: str) -> bool:
        """Delete a media of any kind; False when there is none."""
        with self._lock:
            media = self._media.get(media_id)
        return media is not None and self.delete(media_id, media.kind)

    # --- nonces --------------------------------------------------------------------------

    def use_nonce(self, access_key_id: str, nonce: str, now: float, remember_for: float) -> bool:
        """Record a signature nonce; False when it was used already within the window."""
        key = (access_key_id, nonce)
        with self._lock:
            forget_at = self._nonces.get(key)
            if forget_at is not None and forget_at > now:
                return False
            self._nonces[key] = now + remember_for
            # Prune now and then so a long run does not grow without bound. Nonces live for
            # the whole skew window, so under load most survive a pruning: the next one waits
            # until the memory has doubled, keeping the cost per call constant.
            if len(self._nonces) > self._prune_nonces_above:
                self._nonces = {k: t for k, t in self._nonces.items() if t > now}
                self._prune_nonces_above = max(_NONCE_PRUNE_FLOOR, 2 * len(self._nonces))
            return True

    # --- call log ------------------------------------------------------------------------

    def log_call(self, entry: dict) -> None:
        """Append one API call to the log as it arrives (its answer is filled in later)."""
        with self._lock:
            self._calls.append(entry)

    def complete_call(self, entry: dict, **answer) -> None:
        """Fill in how a logged call was answered."""
        with self._lock:
            entry.update(answer)

    def calls(self) -> list[dict]:
        """A copy of the call log, oldest first."""
        with self._lock:
            return copy.deepcopy(self._calls)

    def arrivals(self) -> dict[str, list[list]]:
        """When each call arrived, per action, oldest first: [epoch seconds on the sandbox
        clock (to the microsecond), HTTP status, error code]. The log's `time` is kept to the
        microsecond, but answers show it to the second (VOD's format): too coarse to find
        the busiest one-second window."""
        with self._lock:
            by_action: dict[str, list[list]] = {}
            for call in self._calls:
                by_action.setdefault(call["action"], []).append(
                    [call["time"].timestamp(), call["status"], call["code"]])
            return by_action

    def count_calls(self, action: str | None = None) -> int:
        """How many calls were received (of one action, when given)."""
        with self._lock:
            return sum(1 for call in self._calls if action in (None, call["action"]))

    def counts(self) -> dict:
        """Media and call counts, for /_sandbox/state."""
        with self._lock:
            by_kind = {"video": 0, "image": 0, "attached": 0}
            for media in self._media.values():
                by_kind[media.kind] += 1
            actions: dict[str, int] = {}
            for call in self._calls:
                actions[call["action"]] = actions.get(call["action"], 0) + 1
            return {"videos": by_kind["video"], "images": by_kind["image"],
                    "attached_media": by_kind["attached"], "calls": len(self._calls),
                    "calls_by_action": actions}


def expiry(now: datetime, ttl_seconds: int) -> datetime:
    """When a credential issued now expires, to the second (as ExpireUTCTime says it)."""
    return (now + timedelta(seconds=ttl_seconds)).replace(microsecond=0)
