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

import oss2
import pytest

from tests.uploading import (
    bucket_for,
    delivered,
    padded_mp4,
    put,
    sample,
    wait_for_status,
)
from uploads.models import VodEvent, VodEventStatus

pytestmark = pytest.mark.django_db(transaction=True)

# Long enough to see `uploaded` before TranscodeComplete arrives, short enough to wait for.
TRANSCODE_DELAY = 0.8


@pytest.fixture
def callbacks(live_callbacks, sandbox):
    """Events delivered to the live portal, transcoding quick enough to wait for."""
    sandbox.configure(transcode_delay=TRANSCODE_DELAY)
    return live_callbacks


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
    data = sample("sample.mp4")

    put(created, data)

    uploaded = delivered(sandbox, "FileUploadComplete")
    assert uploaded["url"] == callbacks and uploaded["status"] == 200
    assert uploaded["payload"]["Extend"] == '{"client":"e2e"}'
    body = wait_for_status(api, path, "uploaded")
    assert body["file_size"] == len(data)

    delivered(sandbox, "TranscodeComplete")
    body = wait_for_status(api, path, "ready")
    assert body["vod_status"] == "Normal"
    assert sandbox.get_video(created["video_id"])["Status"] == "Normal"
    accepted = VodEvent.objects.filter(status=VodEventStatus.ACCEPTED)
    assert accepted.order_by("pk").first().event_type == "FileUploadComplete"
    assert accepted.order_by("pk").last().event_type == "TranscodeComplete"


def test_large_video_multipart_upload_goes_ready(api, sandbox, callbacks, tmp_path):
    created = create_video(api, file_name="big.mp4")
    upload = created["upload"]
    source = tmp_path / "big.mp4"
    source.write_bytes(padded_mp4(10 * 1024 * 1024 + 512 * 1024))  # over oss2's 10 MB

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
        bucket_for(created["upload"]).put_object(key, sample("sample.mp4"))
    assert (refused.value.status, refused.value.code) == (403, "SecurityTokenExpired")

    refreshed = api.post(f"/api/v1/videos/{created['video_id']}/refresh/")
    assert refreshed.status_code == 200, refreshed.content
    fresh = refreshed.json()["upload"]
    assert fresh["object_key"] == key and fresh["access_key_id"] != created["upload"][
        "access_key_id"]
    assert bucket_for(fresh).put_object(key, sample("sample.mp4")).status == 200

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

    data = sample("sample.png")
    put(created, data)

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

    put(created, b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n")

    event = delivered(sandbox, "AttachedMediaUploadComplete")
    assert event["payload"]["AttachedMediaId"] == created["media_id"]
    wait_for_status(api, f"/api/v1/attached-media/{created['media_id']}/", "ready")


def test_events_signed_with_another_key_are_refused_every_try(api, sandbox, callbacks):
    sandbox.configure(callback_auth_key="notTheKeyThePortalKnows")
    created = create_video(api)

    put(created, sample("sample.mp4"))

    attempts = sandbox.wait_for_notifications(3, timeout=6, event_type="FileUploadComplete")
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, 403), (2, 403), (3, 403)]
    assert sandbox.wait_until_idle(10)  # TranscodeComplete is refused three times too
    assert api.get(f"/api/v1/videos/{created['video_id']}/").json()["status"] == "uploading"
    assert set(VodEvent.objects.values_list("status", flat=True)) == {VodEventStatus.REJECTED}
