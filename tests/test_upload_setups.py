"""End to end, one test per account setup: the real SDK creates the media (through the API),
oss2 uploads a real file, the sandbox sends the events VOD would send for that setup (every
type, signed), and the API reports where the upload ended. Each runs as VOD delivers: in
order once, and with every event duplicated and each media's events newest first.

The test reads the API only once the sandbox has nothing left to deliver (with SQLite the
live server shares the test's database connection).
"""

from __future__ import annotations

import pytest

from tests.uploading import create, delivered, put, sample
from uploads.models import AuditEvent, VodEvent, VodEventStatus

pytestmark = pytest.mark.django_db(transaction=True)

DELIVERIES = {
    "in order": {},
    "duplicated and reordered": {"callback_duplicates": 1.0, "callback_reorder": True},
}
SUBTITLE = b"WEBVTT\n\n00:00.000 --> 00:01.000\nHello\n"


@pytest.fixture(params=DELIVERIES)
def deliveries(request, live_callbacks, sandbox):
    """The sandbox delivering to the live portal, in one of VOD's delivery modes."""
    sandbox.configure(transcode_delay=0.6, **DELIVERIES[request.param])
    return request.param


def settled(api, sandbox, path: str) -> dict:
    """The record once every event of the upload has been delivered (or given up)."""
    assert sandbox.wait_until_idle(15)
    return api.get(path).json()


def event_types(sandbox) -> list[str]:
    """The event types the portal accepted with a 200, in the order they came."""
    return [record["event_type"] for record in sandbox.notifications if record["delivered"]]


def test_a_transcoded_video_goes_ready(api, sandbox, deliveries):
    created = create(api, "videos", title="Holiday", file_name="holiday.mp4")
    put(created, sample("sample.mp4"))

    body = settled(api, sandbox, f"/api/v1/videos/{created['video_id']}/")

    assert body["status"] == "ready" and body["vod_status"] == "Normal"
    assert body["error"] is None and body["file_size"] == len(sample("sample.mp4"))
    types = event_types(sandbox)
    assert {"FileUploadComplete", "VideoAnalysisComplete", "StreamTranscodeComplete",
            "TranscodeComplete"} <= set(types)
    if deliveries == "in order":
        assert types[0] == "FileUploadComplete" and types[-1] == "TranscodeComplete"
        moves = [(event.data["event_type"], event.data["to"]) for event in
                 AuditEvent.objects.filter(action="vod.event.received",
                                           data__changed=True).order_by("pk")]
        assert moves == [("FileUploadComplete", "uploaded"),
                         ("StreamTranscodeComplete", "processing"),
                         ("TranscodeComplete", "ready")]
    else:
        assert types[0] == "TranscodeComplete" and types[-1] == "FileUploadComplete"
        assert VodEvent.objects.filter(status=VodEventStatus.DUPLICATE).count() \
            == len(types) // 2


@pytest.mark.parametrize("file_name, vod_status", [
    ("clip.mov", "UploadSucc"),  # VOD only stores a format it cannot play as it is
    ("clip.mp4", "Normal"),      # MP4 plays without transcoding
])
def test_a_video_of_a_no_transcoding_group_goes_ready_on_its_upload(api, sandbox, settings,
                                                                     deliveries, file_name,
                                                                     vod_status):
    settings.VOD_TEMPLATE_GROUP_ID = "VOD_NO_TRANSCODE"
    created = create(api, "videos", title="Clip", file_name=file_name)
    put(created, sample("sample.mp4"))

    body = settled(api, sandbox, f"/api/v1/videos/{created['video_id']}/")

    assert body["status"] == "ready" and body["vod_status"] == vod_status
    assert "TranscodeComplete" not in event_types(sandbox)
    assert "StreamTranscodeComplete" not in event_types(sandbox)


def test_bytes_that_are_not_a_video_fail_with_vods_error(api, sandbox, deliveries):
    created = create(api, "videos", title="Not a video", file_name="movie.mp4")
    put(created, b"these bytes are no media container at all" * 100)

    body = settled(api, sandbox, f"/api/v1/videos/{created['video_id']}/")

    assert body["status"] == "failed" and body["vod_status"] == "TranscodeFail"
    assert body["error"]["code"] and body["error"]["message"]
    failure = delivered(sandbox, "TranscodeComplete")["payload"]
    assert failure["Status"] == "fail"


@pytest.mark.parametrize("image_ext", ["png", "jpg", "webp"])
def test_an_image_goes_ready(api, sandbox, deliveries, image_ext):
    created = create(api, "images", image_type="default", image_ext=image_ext,
                     original_file_name=f"photo.{image_ext}")
    put(created, sample(f"sample.{image_ext}"))

    body = settled(api, sandbox, f"/api/v1/images/{created['image_id']}/")

    assert body["status"] == "ready" and body["vod_status"] == "Normal"
    assert event_types(sandbox)[0] == "ImageUploadComplete"


@pytest.mark.parametrize("business_type, media_ext, data", [
    ("subtitle", "vtt", SUBTITLE),
    ("watermark", "png", sample("sample.png")),
])
def test_attached_media_goes_ready(api, sandbox, deliveries, business_type, media_ext, data):
    created = create(api, "attached-media", business_type=business_type, media_ext=media_ext,
                     file_name=f"file.{media_ext}")
    put(created, data)

    body = settled(api, sandbox, f"/api/v1/attached-media/{created['media_id']}/")

    assert body["status"] == "ready" and body["vod_status"] == "Normal"
    assert event_types(sandbox)[0] == "AttachedMediaUploadComplete"


def test_a_ready_video_deleted_through_the_api_ends_deleted(api, sandbox, deliveries):
    created = create(api, "videos", title="Holiday", file_name="holiday.mp4")
    put(created, sample("sample.mp4"))
    path = f"/api/v1/videos/{created['video_id']}/"
    assert settled(api, sandbox, path)["status"] == "ready"

    assert api.delete(path).json()["status"] == "deleted"

    body = settled(api, sandbox, path)  # DeleteMediaComplete came, and changed nothing
    assert body["status"] == "deleted" and body["vod_status"] == "Deleted"
    assert "DeleteMediaComplete" in event_types(sandbox)
