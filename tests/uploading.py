"""Uploading the way a client app does, for the end-to-end tests: the API's credential, oss2
(the official OSS SDK) with StsAuth, real small media files (vodsandbox/samples/), and
waiting for VOD's events to move the record.

The `live_callbacks` fixture (tests/conftest.py) has the sandbox deliver its signed events
to the portal running in pytest-django's live server."""

from __future__ import annotations

from pathlib import Path

import oss2

from tests.conftest import wait_until

SAMPLES = Path(__file__).resolve().parent.parent / "vodsandbox" / "samples"
# The key the sandbox signs its events with and the portal checks them against.
LIVE_AUTH_KEY = "e2eAuthKey0123456789abcdef"


def sample(name: str) -> bytes:
    """The bytes of a real small media file shipped in vodsandbox/samples/."""
    return (SAMPLES / name).read_bytes()


def padded_mp4(size: int) -> bytes:
    """A real MP4 grown to `size` bytes with a `free` box (ISO BMFF's padding, which every
    reader skips): big enough for a multipart upload, still a media file."""
    head = sample("sample.mp4")
    padding = size - len(head)
    assert padding >= 8
    return head + padding.to_bytes(4, "big") + b"free" + bytes(padding - 8)


def bucket_for(upload: dict, **kwargs) -> oss2.Bucket:
    """oss2 as a client app would build it from the API's decoded credential."""
    auth = oss2.StsAuth(upload["access_key_id"], upload["access_key_secret"],
                        upload["security_token"])
    return oss2.Bucket(auth, upload["endpoint"], upload["bucket"], **kwargs)


def put(created: dict, data: bytes) -> None:
    """Upload `data` with the credential of an API answer (PutObject)."""
    upload = created["upload"]
    assert bucket_for(upload).put_object(upload["object_key"], data).status == 200


def wait_for_status(api, path: str, status: str, timeout: float = 5.0) -> dict:
    """Poll the API until the record reaches `status` (bounded)."""

    def reached():
        body = api.get(path).json()
        return body if body["status"] == status else None

    return wait_until(reached, timeout=timeout, what=f"{path} to become {status!r}")


def delivered(sandbox, event_type: str) -> dict:
    """The sandbox's record of a delivery the portal accepted with a 200."""
    return sandbox.wait_for_notifications(1, timeout=5, event_type=event_type,
                                          delivered=True)[0]


def create(api, route: str, **fields) -> dict:
    """POST /api/v1/<route>/ and the 201's body."""
    response = api.post(f"/api/v1/{route}/", fields, format="json")
    assert response.status_code == 201, response.content
    return response.json()
