"""vodsandbox after the upload: statuses and events by template group and by what the bytes
are, deletion events, GetMezzanineInfo, the global-callback rule and the delivery faults.

Uploads go through oss2 with the credentials the real VOD SDK got from the sandbox; events
go to a receiver on loopback owned by each test. Real sample files made with ffmpeg live in
vodsandbox/samples. None of these tests touch the database.
"""

from __future__ import annotations

import json
import re
import struct

import pytest
from alibabacloud_vod20170321 import models as vod
from darabonba.runtime import RuntimeOptions

from tests.test_vodsandbox import sdk_client, vod_error
from tests.test_vodsandbox_oss import SAMPLES, Receiver, Upload
from vodsandbox import media

MP4 = (SAMPLES / "sample.mp4").read_bytes()
WEBM = (SAMPLES / "sample.webm").read_bytes()
MP3 = (SAMPLES / "sample.mp3").read_bytes()
PNG = (SAMPLES / "sample.png").read_bytes()
JPG = (SAMPLES / "sample.jpg").read_bytes()
WEBP = (SAMPLES / "sample.webp").read_bytes()
NOT_MEDIA = b"this is not a media file at all " * 64
MILLIS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d:\d{3}Z")
SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
TRANSCODED = ["FileUploadComplete", "VideoAnalysisComplete", "SnapshotComplete",
              "StreamTranscodeComplete", "StreamTranscodeComplete", "TranscodeComplete"]


@pytest.fixture
def receiver(sandbox):
    """A loopback receiver set as the sandbox's global callback, with quick transcoding."""
    server = Receiver()
    sandbox.configure(callback_url=server.url, transcode_delay=0.4)
    yield server
    sandbox.reset()  # drops pending deliveries before the receiver goes away
    server.close()


def video(sandbox, **params) -> Upload:
    params = {"title": "Clip", "file_name": "clip.mp4", **params}
    body = sdk_client(sandbox).create_upload_video(vod.CreateUploadVideoRequest(**params)).body
    return Upload(body.video_id, body.upload_address, body.upload_auth)


def image(sandbox, **params) -> Upload:
    params = {"image_type": "default", "image_ext": "png", **params}
    body = sdk_client(sandbox).create_upload_image(vod.CreateUploadImageRequest(**params)).body
    return Upload(body.image_id, body.upload_address, body.upload_auth)


def attached(sandbox, **params) -> Upload:
    params = {"business_type": "subtitle", "media_ext": "vtt", **params}
    body = sdk_client(sandbox).create_upload_attached_media(
        vod.CreateUploadAttachedMediaRequest(**params)).body
    return Upload(body.media_id, body.upload_address, body.upload_auth)


def put(upload, data: bytes) -> None:
    assert upload.bucket().put_object(upload.key, data).status == 200


def types(sandbox) -> list[str]:
    return [record["event_type"] for record in sandbox.notifications]


def events(receiver, event_type: str) -> list[dict]:
    return [d["json"] for d in receiver.received if d["json"]["EventType"] == event_type]


def box(kind: bytes, body: bytes = b"") -> bytes:
    """One ISO BMFF box."""
    return struct.pack(">I4s", 8 + len(body), kind) + body


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    return box(b"ftyp", major + b"\x00\x00\x00\x00" + b"".join(compatible))


# --- videos ----------------------------------------------------------------------------


def test_no_transcode_group_is_normal_with_only_file_upload_complete(sandbox, receiver):
    upload = video(sandbox, template_group_id="VOD_NO_TRANSCODE")
    put(upload, MP4)

    assert sandbox.get_video(upload.media_id)["Status"] == "Normal"
    sandbox.wait_for_notifications(1, event_type="FileUploadComplete", delivered=True)
    assert sandbox.wait_until_idle(3) and types(sandbox) == ["FileUploadComplete"]

    # A format VOD cannot play untranscoded stays UploadSucc; the account's default group
    # counts when the video names none.
    sandbox.configure(default_template_group_id="VOD_NO_TRANSCODE")
    movie = video(sandbox, file_name="clip.mov")
    put(movie, MP4)  # ISO BMFF: a valid .mov too
    assert sandbox.get_video(movie.media_id)["Status"] == "UploadSucc"
    assert sandbox.wait_until_idle(3) and types(sandbox) == ["FileUploadComplete"] * 2


def test_transcoding_sends_vods_events_in_order_and_ends_normal(sandbox, receiver):
    sandbox.configure(transcode_delay=0.8)
    upload = video(sandbox, user_data=json.dumps({"Extend": {"k": 1}}))
    put(upload, MP4)
    assert sandbox.get_video(upload.media_id)["Status"] == "UploadSucc"

    sandbox.wait_for_notifications(1, event_type="VideoAnalysisComplete")
    assert sandbox.get_video(upload.media_id)["Status"] == "Transcoding"
    sandbox.wait_for_notifications(1, event_type="TranscodeComplete", delivered=True)

    assert sandbox.get_video(upload.media_id)["Status"] == "Normal"
    assert [d["json"]["EventType"] for d in receiver.received] == TRANSCODED
    analysis = events(receiver, "VideoAnalysisComplete")[0]
    assert analysis["Status"] == "success" and analysis["Size"] == len(MP4)
    assert not {"Width", "Height", "Duration", "Fps", "Bitrate"} & set(analysis)  # not read
    streams = events(receiver, "StreamTranscodeComplete")
    assert [(s["Definition"], s["Status"], s["Format"]) for s in streams] == [
        ("LD", "success", "mp4"), ("SD", "success", "mp4")]
    done = events(receiver, "TranscodeComplete")[0]
    assert done["Status"] == "success" and done["VideoId"] == upload.media_id
    assert [s["Definition"] for s in done["StreamInfos"]] == ["LD", "SD"]
    assert all(d["json"]["Extend"] == '{"k":1}' for d in receiver.received)
    assert all(SECONDS.fullmatch(d["json"]["EventTime"]) for d in receiver.received)


def test_bytes_that_are_no_video_fail_the_transcoding(sandbox, receiver):
    sandbox.configure(transcode_definitions=("LD", "SD", "HD"))
    upload, truncated = video(sandbox), video(sandbox)
    put(upload, NOT_MEDIA)
    put(truncated, MP4[:-100])  # the mdat box no longer reaches its declared end

    sandbox.wait_for_notifications(2, event_type="TranscodeComplete", delivered=True)
    for media_id in (upload.media_id, truncated.media_id):
        assert sandbox.get_video(media_id)["Status"] == "TranscodeFail"
        mine = [r["payload"] for r in sandbox.notifications if r["media_id"] == media_id]
        assert [p["EventType"] for p in mine] == [
            "FileUploadComplete", "VideoAnalysisComplete"] + ["StreamTranscodeComplete"] * 3 \
            + ["TranscodeComplete"]
        assert mine[0]["Status"] == "success"  # the upload itself went through
        for payload in mine[1:]:
            assert payload["Status"] == "fail"
            if payload["EventType"] != "TranscodeComplete":
                assert payload["ErrorCode"] == "InvalidParameter.ResourceContentBad"
                assert payload["ErrorMessage"]
        streams = mine[-1]["StreamInfos"]
        assert [s["Definition"] for s in streams] == ["LD", "SD", "HD"]
        assert all(s["Status"] == "fail" and s["ErrorCode"] and s["ErrorMessage"]
                   for s in streams)


def test_a_reupload_restarts_and_reset_drops_pending_work(sandbox, receiver):
    sandbox.configure(transcode_delay=1.0)
    upload = video(sandbox)
    put(upload, NOT_MEDIA)
    put(upload, MP4)  # same credential, newer upload: only its processing counts
    sandbox.wait_for_notifications(1, event_type="TranscodeComplete", delivered=True)
    assert sandbox.get_video(upload.media_id)["Status"] == "Normal"
    assert sandbox.wait_until_idle(3)
    assert types(sandbox) == ["FileUploadComplete"] + TRANSCODED
    assert all(r["payload"]["Status"] == "success" for r in sandbox.notifications)

    again = video(sandbox)
    put(again, MP4)
    sandbox.wait_for_notifications(2, event_type="VideoAnalysisComplete")
    sandbox.reset()  # the streams and TranscodeComplete still pending are dropped
    assert sandbox.wait_until_idle(3) and sandbox.notifications == []
    assert [d["json"]["EventType"] for d in receiver.received][-1] in {
        "VideoAnalysisComplete", "SnapshotComplete"}


# --- images and attached media ---------------------------------------------------------


def test_images_are_normal_when_the_bytes_are_an_image_of_image_ext(sandbox, receiver):
    good = [(image(sandbox), PNG), (image(sandbox, image_ext="jpg"), JPG),
            (image(sandbox, image_ext="webp"), WEBP)]
    bad = [(image(sandbox), b"\x89PNG fake"), (image(sandbox, image_ext="jpg"), PNG),
           (image(sandbox, image_ext="gif"), NOT_MEDIA)]
    for upload, data in good + bad:
        put(upload, data)

    records = sandbox.wait_for_notifications(3, event_type="ImageUploadComplete",
                                             delivered=True)
    assert sandbox.wait_until_idle(3) and len(sandbox.notifications) == 3
    assert {r["media_id"] for r in records} == {upload.media_id for upload, _ in good}
    for upload, _ in good:
        assert sandbox.get_image(upload.media_id)["Status"] == "Normal"
    for upload, _ in bad:  # VOD sends no event for a failed upload
        assert sandbox.get_image(upload.media_id)["Status"] == "UploadFail"
    event = next(r["payload"] for r in records if r["media_id"] == good[0][0].media_id)
    assert MILLIS.fullmatch(event["EventTime"])  # VOD's colon before the milliseconds
    assert (event["Status"], event["Size"], event["AppId"]) == ("success", len(PNG),
                                                                "app-1000000")
    assert event["FileURL"].endswith(good[0][0].key)


def test_attached_media_are_checked_by_business_type(sandbox, receiver):
    subtitle = attached(sandbox)
    watermark = attached(sandbox, business_type="watermark", media_ext="png")
    archive = attached(sandbox, business_type="material", media_ext="zip")
    binary_subtitle = attached(sandbox)
    fake_watermark = attached(sandbox, business_type="watermark", media_ext="png")
    put(subtitle, "WEBVTT\n\n00:00.000 --> 00:01.000\nHallo Welt — ü\n".encode())
    put(watermark, PNG)
    put(archive, NOT_MEDIA)  # no check for zip: accepted as is
    put(binary_subtitle, b"\x00\x01\xff\xfe binary")
    put(fake_watermark, JPG)

    records = sandbox.wait_for_notifications(3, event_type="AttachedMediaUploadComplete",
                                             delivered=True)
    assert sandbox.wait_until_idle(3) and len(sandbox.notifications) == 3
    assert {r["media_id"] for r in records} == {subtitle.media_id, watermark.media_id,
                                                archive.media_id}
    assert all(SECONDS.fullmatch(r["payload"]["EventTime"]) for r in records)
    for upload in (binary_subtitle, fake_watermark):
        assert sandbox.get_attached_media(upload.media_id)["Status"] == "UploadFail"
    assert sandbox.get_attached_media(watermark.media_id)["Status"] == "Normal"


# --- sniffing --------------------------------------------------------------------------


def test_heic_is_told_by_its_ftyp_brand_and_boxes():
    heic = ftyp(b"heic", b"mif1", b"heic") + box(b"meta", b"\0" * 20) + box(b"mdat", b"x" * 9)
    generic = ftyp(b"mif1", b"miaf") + box(b"meta") + box(b"mdat")
    assert media.is_container(heic, "heic") and media.is_container(generic, "HEIC")
    assert not media.is_container(MP4, "heic")  # an isom movie, not an image
    assert not media.is_container(heic[:-3], "heic")  # boxes no longer tile the file
    assert not media.is_container(PNG, "heic")
    assert not media.is_container(heic, "mp4")  # no moov


def test_webp_and_other_signatures():
    assert media.is_container(WEBP, "webp")
    wave = b"RIFF" + struct.pack("<I", 4) + b"WAVE"
    assert media.is_container(wave, "wav") and not media.is_container(wave, "webp")
    assert not media.is_container(WEBP[:20], "webp")  # RIFF size beyond the file
    assert media.is_container(WEBM, "webm") and media.is_container(WEBM, "mkv")
    assert media.is_container(MP3, "mp3") and not media.is_container(MP3, "flac")
    assert media.is_container(b"\xff\xfb\x90\x64" + b"\0" * 100, "mp3")  # frame sync
    assert media.is_container(b"\xff\xf1\x50\x80\x02\x1f\xfc", "aac")  # ADTS
    assert not media.is_container(b"\xff\xf1\x50\x80\x02\x1f\xfc", "mp3")
    ts = (b"\x47" + b"\0" * 187) * 3
    assert media.is_container(ts, "ts") and not media.is_container(ts[:-1], "ts")
    assert media.is_container((b"\0\0\0\0\x47" + b"\0" * 187) * 2, "mts")  # 192-byte packets
    old_mov = box(b"mdat", b"x" * 8) + box(b"moov", b"y" * 8)  # QuickTime before ftyp
    assert media.is_container(old_mov, "mov") and not media.is_container(old_mov, "mp4")
    for ext, data in [("flv", b"FLV\x01\x05"), ("ogg", b"OggS\0\x02"), ("flac", b"fLaC\0"),
                      ("amr", b"#!AMR\n\x3c"), ("gif", b"GIF89a\x01\0"), ("jpeg", JPG),
                      ("wmv", bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c") + b"\0" * 8),
                      ("avi", b"RIFF" + struct.pack("<I", 4) + b"AVI ")]:
        assert media.is_container(data, ext), ext
        assert not media.is_container(NOT_MEDIA, ext), ext
    assert media.is_container(NOT_MEDIA, "rmvb") and not media.has_check("rmvb")


# --- deletion --------------------------------------------------------------------------


def test_delete_video_sends_delete_media_complete_and_others_send_nothing(sandbox, receiver):
    client = sdk_client(sandbox)
    upload, picture, subtitle = video(sandbox), image(sandbox), attached(sandbox)

    client.delete_video(vod.DeleteVideoRequest(video_ids=upload.media_id))
    client.delete_image(vod.DeleteImageRequest(delete_image_type="ImageId",
                                               image_ids=picture.media_id))
    client.delete_attached_media(vod.DeleteAttachedMediaRequest(media_ids=subtitle.media_id))

    record = sandbox.wait_for_notifications(1, event_type="DeleteMediaComplete",
                                            delivered=True)[0]
    payload = dict(record["payload"])
    assert SECONDS.fullmatch(payload.pop("EventTime"))
    assert payload == {"EventType": "DeleteMediaComplete", "Status": "success",
                       "MediaType": "video", "DeleteType": "all", "MediaId": upload.media_id}
    assert sandbox.wait_until_idle(3) and types(sandbox) == ["DeleteMediaComplete"]


# --- GetMezzanineInfo --------------------------------------------------------------------


def mezzanine(sandbox, **fields):
    return sdk_client(sandbox).get_mezzanine_info_with_options(
        vod.GetMezzanineInfoRequest(**fields), RuntimeOptions()).body


def test_get_mezzanine_info_through_the_sdk(sandbox):
    upload = video(sandbox, file_name="holiday.mp4", reference_id="mezz-0001")
    before = mezzanine(sandbox, video_id=upload.media_id).mezzanine
    assert (before.status, before.size, before.file_name) == ("Uploading", None,
                                                              "holiday.mp4")

    put(upload, MP4)
    body = mezzanine(sandbox, reference_id="mezz-0001", auth_timeout=600, output_type="oss",
                     addition_type="video,audio")
    info = body.mezzanine
    assert body.request_id and info.video_id == upload.media_id
    assert (info.status, info.size, info.output_type) == ("Normal", len(MP4), "oss")
    assert info.file_url.endswith(f"/{sandbox.bucket}/{upload.key}")
    assert SECONDS.fullmatch(info.creation_time)
    assert not info.video_stream_list and not info.audio_stream_list  # not decoded
    assert info.duration is None and info.width is None

    error = vod_error(lambda: mezzanine(sandbox, video_id="0" * 32))
    assert (error.code, error.status_code) == ("InvalidVideo.NotFound", 404)
    error = vod_error(lambda: mezzanine(sandbox, video_id=upload.media_id, auth_timeout=0))
    assert error.code == "InvalidParameter"


# --- where events go, and delivery faults ----------------------------------------------


def test_userdata_callback_needs_the_global_callback(sandbox):
    own = Receiver()
    try:
        user_data = json.dumps({"MessageCallback": {"CallbackURL": own.url}})
        silent = image(sandbox, user_data=user_data)
        put(silent, PNG)
        assert sandbox.get_image(silent.media_id)["Status"] == "Normal"
        assert sandbox.wait_until_idle(2) and sandbox.notifications == []

        sandbox.configure(callback_url="http://127.0.0.1:9/global")
        heard = image(sandbox, user_data=user_data)
        put(heard, PNG)
        record = sandbox.wait_for_notifications(1, delivered=True)[0]
        assert record["url"] == own.url and len(own.received) == 1
    finally:
        sandbox.reset()
        own.close()


def test_duplicates_deliver_each_event_twice(sandbox, receiver):
    sandbox.configure(callback_duplicates=1.0)
    upload = image(sandbox)
    put(upload, PNG)

    records = sandbox.wait_for_notifications(2, event_type="ImageUploadComplete",
                                             delivered=True)
    assert sorted(r["duplicate"] for r in records) == [False, True]
    assert records[0]["payload"] == records[1]["payload"]
    assert receiver.received[0]["json"] == receiver.received[1]["json"]


def test_reorder_delivers_a_medias_events_newest_first(sandbox, receiver):
    sandbox.configure(callback_reorder=True)
    upload = video(sandbox)
    put(upload, MP4)

    sandbox.wait_for_notifications(6, delivered=True)
    assert [d["json"]["EventType"] for d in receiver.received] == TRANSCODED[::-1]
    assert not any(r["duplicate"] for r in sandbox.notifications)

    sdk_client(sandbox).delete_video(vod.DeleteVideoRequest(video_ids=upload.media_id))
    sandbox.wait_for_notifications(1, event_type="DeleteMediaComplete", delivered=True)
