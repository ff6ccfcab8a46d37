"""`manage.py vod_sync`: in-flight rows resolved from what VOD reports."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from uploads.models import AttachedMediaUpload, AuditEvent, ImageUpload, UploadStatus, VideoUpload

pytestmark = pytest.mark.django_db(transaction=True)


def sync(capsys, *args):
    call_command("vod_sync", *args)
    return capsys.readouterr().out


def issue_video(api, title="t"):
    video_id = api.post("/api/v1/videos/", {"title": title, "file_name": "t.mp4"},
                        format="json").json()["video_id"]
    return VideoUpload.objects.get(vod_id=video_id)


def expire(row):
    type(row).objects.filter(pk=row.pk).update(
        credential_expires_at=timezone.now() - timedelta(minutes=1),
        created_at=timezone.now() - timedelta(hours=2))


def test_rows_not_yet_due_are_left_alone(api, sandbox, capsys):
    issue_video(api)
    out = sync(capsys)
    assert "0 checked" in out
    assert sandbox.count_calls("GetVideoInfos") == 0


def test_due_rows_take_vods_status_in_batches_of_20(api, sandbox, capsys):
    videos = [issue_video(api, f"v{i}") for i in range(25)]
    for video in videos:
        expire(video)
        sandbox.set_status(video.vod_id, "Normal")

    out = sync(capsys)

    assert "25 checked, 25 changed, 0 failed" in out
    assert sandbox.count_calls("GetVideoInfos") == 2  # 20 + 5
    assert set(VideoUpload.objects.values_list("status", flat=True)) == {UploadStatus.READY}
    event = AuditEvent.objects.filter(action="upload.synced").first()
    assert event.actor_label == "vod_sync" and event.data["to"] == "ready"


def test_an_upload_vod_still_waits_for_expires(api, sandbox, capsys):
    video = issue_video(api)
    expire(video)
    sync(capsys)
    video.refresh_from_db()
    assert video.status == UploadStatus.EXPIRED and video.vod_status == "Uploading"
    # ...and a refresh brings it back.
    assert api.post(f"/api/v1/videos/{video.vod_id}/refresh/").status_code == 200
    assert VideoUpload.objects.get(pk=video.pk).status == UploadStatus.UPLOADING


def test_a_video_whose_answer_was_lost_is_found_by_reference_id_and_discarded(api, sandbox, capsys, settings):
    settings.VOD_READ_TIMEOUT_MS = 300
    settings.VOD_MAX_ATTEMPTS = 1
    sandbox.faults.add(action="CreateUploadVideo", timeout=True, times=1, apply_after=True)
    assert api.post("/api/v1/videos/", {"title": "lost", "file_name": "l.mp4"},
                    format="json").status_code == 504
    row = VideoUpload.objects.get()
    assert row.status == UploadStatus.REQUESTING and row.vod_id is None
    VideoUpload.objects.filter(pk=row.pk).update(created_at=timezone.now() - timedelta(hours=1))

    video_id = sandbox.state()["videos"][0]
    assert sandbox.get_video(video_id)["ReferenceId"] == row.reference_id

    out = sync(capsys)

    # Found by its ReferenceId; its credential reached nobody, so it is deleted in VOD and
    # its id kept on the row, with the deletion in the audit trail.
    row.refresh_from_db()
    assert f"video {video_id}: requesting -> failed" in out
    assert row.vod_id == video_id and row.status == UploadStatus.FAILED
    assert row.error_code == "CredentialNeverDelivered"
    assert sandbox.count_videos() == 0 and sandbox.count_calls("DeleteVideo") == 1
    event = AuditEvent.objects.get(action="upload.discarded")
    assert event.target_vod_id == video_id and event.data["from"] == "requesting"
    assert event.vod_request_id


def test_rows_vod_never_saw_end_as_failed(api, sandbox, capsys, settings):
    settings.VOD_MAX_ATTEMPTS = 1
    sandbox.faults.add(action="CreateUploadImage", code="InternalError")
    api.post("/api/v1/images/", {"image_type": "default"}, format="json")
    sandbox.faults.add(action="CreateUploadVideo", code="InternalError")
    api.post("/api/v1/videos/", {"title": "x", "file_name": "x.mp4"}, format="json")
    sandbox.faults.clear()
    old = timezone.now() - timedelta(hours=1)
    ImageUpload.objects.update(created_at=old)
    VideoUpload.objects.update(created_at=old)

    out = sync(capsys)

    assert "2 changed" in out
    for model in (ImageUpload, VideoUpload):
        row = model.objects.get()
        assert row.status == UploadStatus.FAILED and row.error_code == "NotFoundInVod"


def test_media_deleted_in_vod_end_as_failed(api, sandbox, capsys):
    media_id = api.post("/api/v1/attached-media/", {"business_type": "material",
                                                    "media_ext": "zip"},
                        format="json").json()["media_id"]
    row = AttachedMediaUpload.objects.get(vod_id=media_id)
    expire(row)
    sandbox.forget(media_id)

    sync(capsys)

    assert AttachedMediaUpload.objects.get().status == UploadStatus.FAILED


def test_vod_failures_leave_rows_for_the_next_run(api, sandbox, capsys):
    video = issue_video(api)
    expire(video)
    sandbox.faults.add(action="GetVideoInfos", code="ServiceUnAvailable")

    out = sync(capsys)

    assert "1 failed" in out and "failed to sync (ServiceUnAvailable" in out
    assert VideoUpload.objects.get().status == UploadStatus.UPLOADING
