"""POST /api/v1/vod/events/: VOD's callbacks, signed by VOD's real algorithm.

An event only names a media: the portal asks VOD (the sandbox) where it stands before it
moves the upload, so each test first puts the media where VOD would have it.
"""

import json
import time

import pytest

from tests.vod_events import (
    EVENTS_PATH,
    NEW_KEY,
    OLD_KEY,
    deliver,
    upload_complete,
    vod_signature,
)
from uploads.models import AuditEvent, UploadStatus, VideoUpload, VodEvent

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("vod_callback_keys")]


@pytest.fixture
def video(api):
    video_id = api.post("/api/v1/videos/", {"title": "t", "file_name": "t.mp4"},
                        format="json").json()["video_id"]
    return VideoUpload.objects.get(vod_id=video_id)


def test_signed_events_move_the_video_to_where_vod_says_it_is(client, video, sandbox):
    sandbox.set_status(video.vod_id, "UploadSucc", Size=4096)
    first = deliver(client, upload_complete(video.vod_id))
    assert first.status_code == 200 and first.json()["code"] == "accepted"
    video.refresh_from_db()
    assert video.status == UploadStatus.UPLOADED and video.file_size == 4096

    sandbox.set_status(video.vod_id, "Transcoding")
    deliver(client, {"EventType": "StreamTranscodeComplete", "VideoId": video.vod_id,
                     "Status": "success", "Definition": "HD"})
    assert VideoUpload.objects.get(pk=video.pk).status == UploadStatus.PROCESSING
    sandbox.set_status(video.vod_id, "Normal")
    deliver(client, {"EventType": "TranscodeComplete", "VideoId": video.vod_id,
                     "Status": "success", "StreamInfos": []})
    video.refresh_from_db()
    assert video.status == UploadStatus.READY and video.vod_status == "Normal"

    received = AuditEvent.objects.filter(action="vod.event.received", target_vod_id=video.vod_id)
    assert received.count() == 3
    assert received.first().actor_label == "vod callback"


def test_the_old_key_still_works_during_rotation(client, video):
    assert deliver(client, upload_complete(video.vod_id), key=OLD_KEY).status_code == 200


def test_a_duplicate_changes_nothing(client, video):
    payload = upload_complete(video.vod_id)
    deliver(client, payload)
    audit_count = AuditEvent.objects.count()

    again = deliver(client, payload)

    assert again.status_code == 200 and again.json()["code"] == "duplicate"
    assert AuditEvent.objects.count() == audit_count
    assert VodEvent.objects.filter(status="duplicate").count() == 1


def test_a_late_event_never_moves_backwards(client, video):
    VideoUpload.objects.filter(pk=video.pk).update(status=UploadStatus.READY)
    deliver(client, upload_complete(video.vod_id))
    assert VideoUpload.objects.get(pk=video.pk).status == UploadStatus.READY


def test_a_failed_transcode_fails_the_video(client, video, sandbox):
    sandbox.set_status(video.vod_id, "TranscodeFail")
    deliver(client, {"EventType": "TranscodeComplete", "VideoId": video.vod_id,
                     "Status": "fail", "ErrorCode": "InvalidMedia"})
    assert VideoUpload.objects.get(pk=video.pk).status == UploadStatus.FAILED


@pytest.mark.parametrize("claim, vod_says, stays", [
    ({"EventType": "TranscodeComplete", "Status": "success"}, "Uploading", "uploading"),
    ({"EventType": "TranscodeComplete", "Status": "fail"}, "Uploading", "uploading"),
    ({"EventType": "FileUploadComplete", "Status": "success", "Size": 10**9}, "Uploading",
     "uploading"),
    ({"EventType": "TranscodeComplete", "Status": "success"}, "UploadSucc", "uploaded"),
])
def test_a_forged_body_moves_nothing_vod_does_not_confirm(client, video, sandbox, claim,
                                                           vod_says, stays):
    """A validly signed delivery with a forged body (VOD signs the URL and timestamp,
    not the body): the upload goes only where VOD itself says it is."""
    sandbox.set_status(video.vod_id, vod_says)

    answer = deliver(client, {**claim, "VideoId": video.vod_id})

    assert answer.status_code == 200
    video.refresh_from_db()
    assert video.status == stays and video.file_size is None
    assert sandbox.count_calls("GetVideoInfos") == 1  # asked VOD, through the gateway


def test_one_signature_serves_every_event_of_its_second(client, video, sandbox, api):
    """VOD signs the URL and the timestamp only: two different events sent in the same
    second carry the same signature, and both are genuine."""
    image_id = api.post("/api/v1/images/", {"image_type": "default"},
                        format="json").json()["image_id"]
    sandbox.set_status(video.vod_id, "UploadSucc", Size=4096)
    sandbox.set_status(image_id, "Normal", Size=10)
    timestamp = str(int(time.time()))
    signature = vod_signature(timestamp, NEW_KEY)

    for payload in (upload_complete(video.vod_id),
                    {"EventType": "ImageUploadComplete", "ImageId": image_id,
                     "Status": "success"}):
        answer = deliver(client, payload, timestamp=timestamp, signature=signature)
        assert answer.status_code == 200 and answer.json()["code"] == "accepted"

    assert VideoUpload.objects.get(pk=video.pk).status == UploadStatus.UPLOADED
    assert api.get(f"/api/v1/images/{image_id}/").json()["status"] == "ready"


def test_an_event_vod_cannot_confirm_is_acknowledged_and_left_for_vod_sync(client, video,
                                                                          sandbox):
    sandbox.set_status(video.vod_id, "UploadSucc")
    sandbox.faults.add(action="GetVideoInfos", code="ServiceUnAvailable")

    answer = deliver(client, upload_complete(video.vod_id))

    assert answer.status_code == 200
    assert VideoUpload.objects.get(pk=video.pk).status == UploadStatus.UPLOADING
    event = AuditEvent.objects.get(action="vod.event.received")
    assert event.outcome == "failure" and event.data["confirmed"] is False


def test_image_and_attached_media_events(client, api, sandbox):
    image_id = api.post("/api/v1/images/", {"image_type": "default"},
                        format="json").json()["image_id"]
    media_id = api.post("/api/v1/attached-media/", {"business_type": "subtitle",
                                                    "media_ext": "vtt"},
                        format="json").json()["media_id"]
    sandbox.set_status(image_id, "Normal", Size=10)
    sandbox.set_status(media_id, "Normal", Size=10)
    deliver(client, {"EventType": "ImageUploadComplete", "ImageId": image_id,
                     "Status": "success", "Size": 10})
    deliver(client, {"EventType": "AttachedMediaUploadComplete", "AttachedMediaId": media_id,
                     "Status": "success", "Size": 10})
    assert api.get(f"/api/v1/images/{image_id}/").json()["status"] == "ready"
    assert api.get(f"/api/v1/attached-media/{media_id}/").json()["status"] == "ready"


def test_unknown_event_types_and_media_are_stored_and_acknowledged(client):
    response = deliver(client, {"EventType": "SnapshotComplete", "VideoId": "a" * 32,
                                "Status": "success"})
    assert response.status_code == 200
    other = deliver(client, upload_complete("b" * 32))
    assert other.status_code == 200
    assert VodEvent.objects.filter(status="accepted").count() == 2


@pytest.mark.parametrize("mutation,reason", [
    (dict(signature="0" * 32), "signature does not match"),
    (dict(key="notthekey"), "signature does not match"),
    (dict(skew=-310), "outside the accepted window"),
    (dict(skew=310), "outside the accepted window"),
    (dict(timestamp="yesterday"), "not a Unix time"),
])
def test_bad_signatures_are_refused_stored_and_audited(client, video, mutation, reason):
    response = deliver(client, upload_complete(video.vod_id), **mutation)

    assert response.status_code == 403
    assert reason in response.json()["detail"]
    stored = VodEvent.objects.get()
    assert stored.status == "rejected" and reason in stored.reason
    assert video.vod_id in stored.body
    assert VideoUpload.objects.get(pk=video.pk).status == UploadStatus.UPLOADING
    rejected = AuditEvent.objects.get(action="vod.event.rejected")
    assert rejected.outcome == "rejected"


def test_missing_headers_are_refused(client, video):
    response = client.post(EVENTS_PATH, json.dumps(upload_complete(video.vod_id)),
                           content_type="application/json")
    assert response.status_code == 403
    assert VodEvent.objects.get().status == "rejected"


def test_a_signed_body_that_is_not_json_is_a_400(client):
    assert deliver(client, None, raw="not json").status_code == 400


def test_without_configured_keys_every_callback_is_refused(client, video, settings):
    settings.VOD_CALLBACK_AUTH_KEYS = []
    assert deliver(client, upload_complete(video.vod_id)).status_code == 403


def test_the_signature_is_never_stored(client, video):
    timestamp = str(int(time.time()))
    signature = vod_signature(timestamp, NEW_KEY)
    deliver(client, upload_complete(video.vod_id), timestamp=timestamp, signature=signature)
    stored = VodEvent.objects.values()
    assert not any(signature in str(value) for row in stored for value in row.values())


def test_identical_deliveries_arriving_together_are_applied_once(video, sandbox):
    """VOD may deliver one event twice at the same moment: the database lets one delivery
    be accepted (race-free on PostgreSQL, where they truly run at once)."""
    from django.test import Client

    from tests.conftest import concurrently

    sandbox.set_status(video.vod_id, "UploadSucc", Size=4096)
    payload = upload_complete(video.vod_id)
    answers = concurrently(*[lambda: deliver(Client(), payload) for _ in range(8)])

    assert [answer.status_code for answer in answers] == [200] * 8
    codes = sorted(answer.json()["code"] for answer in answers)
    assert codes == ["accepted"] + ["duplicate"] * 7
    assert VodEvent.objects.filter(status="accepted").count() == 1
    assert VodEvent.objects.filter(status="duplicate").count() == 7
    moved = AuditEvent.objects.filter(action="vod.event.received", target_pk=str(video.pk))
    assert moved.count() == 1 and moved.get().data["to"] == UploadStatus.UPLOADED


def test_a_flood_of_refused_deliveries_is_cut_off_per_address(client, settings):
    """Unsigned POSTs are kept for staff to see, up to VOD_CALLBACK_REFUSED_RATE per
    address; past it they are answered 429 and leave nothing in the database."""
    settings.VOD_CALLBACK_REFUSED_RATE = "5/minute"
    answers = [deliver(client, {"EventType": "x"}, signature="0" * 32) for _ in range(8)]

    assert [answer.status_code for answer in answers] == [403] * 5 + [429] * 3
    assert int(answers[-1]["Retry-After"]) >= 1
    assert answers[-1].json()["code"] == "too_many_refused_callbacks"
    assert VodEvent.objects.count() == 5
    assert AuditEvent.objects.filter(action="vod.event.rejected").count() == 5
    # Another address has its own count; signed deliveries are never counted.
    assert deliver(client, {"EventType": "x"}, signature="0" * 32,
                   REMOTE_ADDR="192.0.2.7").status_code == 403
    assert deliver(client, {"EventType": "SnapshotComplete"}).status_code == 200


def test_refused_deliveries_are_pruned_after_their_retention(client, video, capsys):
    from datetime import timedelta

    from django.core.management import call_command
    from django.utils import timezone

    deliver(client, upload_complete(video.vod_id), signature="0" * 32)
    deliver(client, {"EventType": "SnapshotComplete"})
    VodEvent.objects.update(received_at=timezone.now() - timedelta(days=31))
    deliver(client, {"EventType": "x"}, signature="1" * 32)  # recent: kept

    call_command("vod_events_prune")

    assert "1 refused deliveries older than 30 days deleted" in capsys.readouterr().out
    assert sorted(VodEvent.objects.values_list("status", flat=True)) == ["accepted",
                                                                         "rejected"]
    pruned = AuditEvent.objects.get(action="vod.event.pruned")
    assert pruned.data["deleted"] == 1 and pruned.actor_label == "vod_events_prune"


def test_an_event_is_acknowledged_when_redis_keeps_vod_from_being_asked(client, video,
                                                                       sandbox, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # the VOD limiter's store, down
    settings.VOD_QPS_LIMIT = 10
    sandbox.set_status(video.vod_id, "UploadSucc")

    answer = deliver(client, upload_complete(video.vod_id))

    assert answer.status_code == 200 and answer.json()["code"] == "accepted"
    assert VideoUpload.objects.get(pk=video.pk).status == UploadStatus.UPLOADING
    event = AuditEvent.objects.get(action="vod.event.received")
    assert event.data == {"event_type": "FileUploadComplete", "confirmed": False,
                          "code": "redis_unavailable"}
    assert sandbox.count_calls("GetVideoInfos") == 0
