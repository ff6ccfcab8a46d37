"""End to end: the API issues a credential, oss2 uploads with it, VOD's callbacks move the record.

The portal runs in pytest-django's live server so the sandbox can deliver its signed event
notifications to POST /api/v1/vod/events/ over HTTP, exactly as VOD would. The client side
is oss2 (the official OSS SDK) with StsAuth and the decoded `upload` block of the API answer.

With SQLite the live server shares the test's in-memory database connection, so the test
never reads the database while a callback may be in flight: it waits for the sandbox to
report a delivery first (its record is written after the portal has answered), then asks
the API.
"""

from __future__ import annotations

import os

import oss2
import pytest

from tests.conftest import wait_until
from uploads.models import VodEvent, VodEventStatus

pytestmark = pytest.mark.django_db(transaction=True)

AUTH_KEY = "e2eAuthKey0123456789abcdef"
# Long enough to see `uploaded` before TranscodeComplete arrives, short enough to wait for.
TRANSCODE_DELAY = 0.8


@pytest.fixture
def callbacks(live_server, settings, sandbox):
    """The portal asks VOD to call it back at the live server; the sandbox signs with our key."""
    settings.VOD_CALLBACK_URL = live_server.url + "/api/v1/vod/events/"
    settings.VOD_CALLBACK_AUTH_KEYS = [AUTH_KEY]
    sandbox.configure(callback_auth_key=AUTH_KEY, transcode_delay=TRANSCODE_DELAY)
    yield settings.VOD_CALLBACK_URL
    # No delivery may reach the portal after the test's tables are emptied.
    assert sandbox.wait_until_idle(10)


def bucket_for(upload: dict, **kwargs) -> oss2.Bucket:
    """oss2 as a client app would build it from the API's decoded credential."""
    auth = oss2.StsAuth(upload["access_key_id"], upload["access_key_secret"],
                        upload["security_token"])
    return oss2.Bucket(auth, upload["endpoint"], upload["bucket"], **kwargs)


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


def create_video(api, **fields) -> dict:
    response = api.post("/api/v1/videos/", {"title": "Holiday", "file_name": "holiday.mp4",
                                            **fields}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def test_small_video_put_object_goes_uploaded_then_ready(api, sandbox, callbacks):
    # Long enough for the portal to see UploadSucc when it confirms FileUploadComplete.
    sandbox.configure(transcode_delay=2.0)
    created = create_video(api, extend={"client": "e2e"})
    path = f"/api/v1/videos/{created['video_id']}/"
    assert created["status"] == "uploading"
    data = os.urandom(64 * 1024)

    result = bucket_for(created["upload"]).put_object(created["upload"]["object_key"], data)
    assert result.status == 200

    uploaded = delivered(sandbox, "FileUploadComplete")
    assert uploaded["url"] == callbacks and uploaded["status"] == 200
    assert uploaded["payload"]["Extend"] == '{"client":"e2e"}'
    body = wait_for_status(api, path, "uploaded")
    assert body["file_size"] == len(data)

    delivered(sandbox, "TranscodeComplete")
    body = wait_for_status(api, path, "ready")
    assert body["vod_status"] == "Normal"
    assert sandbox.get_video(created["video_id"])["Status"] == "Normal"
    assert list(VodEvent.objects.order_by("pk").values_list("event_type", "status")) == [
        ("FileUploadComplete", VodEventStatus.ACCEPTED),
        ("TranscodeComplete", VodEventStatus.ACCEPTED)]


def test_large_video_multipart_upload_goes_ready(api, sandbox, callbacks, tmp_path):
    created = create_video(api, file_name="big.mp4")
    upload = created["upload"]
    source = tmp_path / "big.mp4"
    source.write_bytes(os.urandom(10 * 1024 * 1024 + 512 * 1024))  # over oss2's 10 MB

    oss2.resumable_upload(bucket_for(upload), upload["object_key"], str(source),
                          store=oss2.ResumableStore(root=str(tmp_path)), num_threads=2)

    operations = [r["operation"] for r in sandbox.oss_requests]
    assert operations[0] == "InitiateMultipartUpload"
    assert operations.count("UploadPart") >= 2 and operations[-1] == "CompleteMultipartUpload"
    assert sandbox.get_object(upload["object_key"]) == source.read_bytes()
    delivered(sandbox, "FileUploadComplete")
    delivered(sandbox, "TranscodeComplete")
    body = wait_for_status(api, f"/api/v1/videos/{created['video_id']}/", "ready")
    assert body["file_size"] == source.stat().st_size


def test_expired_credential_is_refused_then_refreshed_and_accepted(api, sandbox, callbacks):
    created = create_video(api)
    key = created["upload"]["object_key"]
    sandbox.clock.advance(3001)

    with pytest.raises(oss2.exceptions.ServerError) as refused:
        bucket_for(created["upload"]).put_object(key, b"too late")
    assert (refused.value.status, refused.value.code) == (403, "SecurityTokenExpired")

    refreshed = api.post(f"/api/v1/videos/{created['video_id']}/refresh/")
    assert refreshed.status_code == 200, refreshed.content
    fresh = refreshed.json()["upload"]
    assert fresh["object_key"] == key and fresh["access_key_id"] != created["upload"][
        "access_key_id"]
    assert bucket_for(fresh).put_object(key, b"in time").status == 200

    delivered(sandbox, "TranscodeComplete")
    wait_for_status(api, f"/api/v1/videos/{created['video_id']}/", "ready")


def test_a_credential_used_on_another_media_key_is_refused(api, other_api, sandbox,
                                                           callbacks):
    mine, theirs = create_video(api), create_video(other_api)

    with pytest.raises(oss2.exceptions.ServerError) as refused:
        bucket_for(mine["upload"]).put_object(theirs["upload"]["object_key"], b"hijack")
    assert (refused.value.status, refused.value.code) == (403, "AccessDenied")

    assert sandbox.get_object(theirs["upload"]["object_key"]) is None
    assert sandbox.wait_until_idle(2) and sandbox.notifications == []
    assert other_api.get(f"/api/v1/videos/{theirs['video_id']}/").json()["status"] \
        == "uploading"


def test_image_upload_goes_ready(api, sandbox, callbacks):
    response = api.post("/api/v1/images/", {"image_type": "cover", "image_ext": "png"},
                        format="json")
    assert response.status_code == 201, response.content
    created = response.json()

    data = b"\x89PNG\r\n\x1a\n" + os.urandom(256)
    bucket_for(created["upload"]).put_object(created["upload"]["object_key"], data)

    event = delivered(sandbox, "ImageUploadComplete")
    assert event["payload"]["ImageId"] == created["image_id"]
    body = wait_for_status(api, f"/api/v1/images/{created['image_id']}/", "ready")
    assert body["file_size"] == len(data)


def test_attached_media_upload_goes_ready(api, sandbox, callbacks):
    response = api.post("/api/v1/attached-media/", {"business_type": "subtitle",
                                                    "file_name": "episode.vtt"},
                        format="json")
    assert response.status_code == 201, response.content
    created = response.json()

    bucket_for(created["upload"]).put_object(created["upload"]["object_key"], b"WEBVTT\n")

    event = delivered(sandbox, "AttachedMediaUploadComplete")
    assert event["payload"]["AttachedMediaId"] == created["media_id"]
    wait_for_status(api, f"/api/v1/attached-media/{created['media_id']}/", "ready")


def test_events_signed_with_another_key_are_refused_every_try(api, sandbox, callbacks):
    sandbox.configure(callback_auth_key="notTheKeyThePortalKnows")
    created = create_video(api)

    bucket_for(created["upload"]).put_object(created["upload"]["object_key"], b"data")

    attempts = sandbox.wait_for_notifications(3, timeout=6, event_type="FileUploadComplete")
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 403), (2, 403), (3, 403)]
    assert sandbox.wait_until_idle(10)  # TranscodeComplete is refused three times too
    assert api.get(f"/api/v1/videos/{created['video_id']}/").json()["status"] == "uploading"
    assert set(VodEvent.objects.values_list("status", flat=True)) == {VodEventStatus.REJECTED}
