"""VOD event notifications as VOD sends them: the payloads, signed with VOD's real algorithm
(md5hex("<CallbackURL>|<timestamp>|<AuthKey>")), posted to the portal's endpoint.

Test modules that deliver events use the `vod_callback_keys` fixture (tests/conftest.py),
which configures the portal with CALLBACK_URL and both rotation keys."""

from __future__ import annotations

import hashlib
import json
import time

CALLBACK_URL = "https://uploads.example.com/api/v1/vod/events/"
EVENTS_PATH = "/api/v1/vod/events/"
OLD_KEY, NEW_KEY = "oldkey0123456789", "newkeyABCDEFGHIJ"


def vod_signature(timestamp: str, key: str, url: str = CALLBACK_URL) -> str:
    """md5hex("<CallbackURL>|<timestamp>|<AuthKey>"), as VOD documents it."""
    return hashlib.md5(f"{url}|{timestamp}|{key}".encode()).hexdigest()


def deliver(client, payload, *, key=NEW_KEY, timestamp=None, signature=None, raw=None,
            skew=0, **extra):
    """POST one event to the portal the way VOD does; the response."""
    timestamp = str(int(time.time()) + skew) if timestamp is None else timestamp
    headers = {"HTTP_X_VOD_TIMESTAMP": timestamp,
               "HTTP_X_VOD_SIGNATURE": signature or vod_signature(timestamp, key), **extra}
    body = raw if raw is not None else json.dumps(payload)
    return client.post(EVENTS_PATH, body, content_type="application/json", **headers)


def upload_complete(video_id: str, status: str = "success") -> dict:
    """A FileUploadComplete as VOD's event page shows it."""
    return {"EventTime": "2026-11-25T10:00:00Z", "EventType": "FileUploadComplete",
            "VideoId": video_id, "Status": status, "Size": 4096,
            "FileUrl": "https://example.com/x.mp4"}
