"""DELETE /api/v1/{kind}/{id}/: delete in VOD, keep the record as cancelled."""

import pytest

from uploads.models import AuditEvent, UploadStatus, VideoUpload

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("path,body,id_field,lookup", [
    ("/api/v1/videos/", {"title": "t", "file_name": "t.mp4"}, "video_id", "get_video"),
    ("/api/v1/images/", {"image_type": "default"}, "image_id", "get_image"),
    ("/api/v1/attached-media/", {"business_type": "material", "media_ext": "zip"}, "media_id",
     "get_attached_media"),
])
def test_cancel_deletes_in_vod_and_keeps_the_row(api, sandbox, path, body, id_field, lookup):
    media_id = api.post(path, body, format="json").json()[id_field]

    response = api.delete(f"{path}{media_id}/")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "cancelled"
    assert getattr(sandbox, lookup)(media_id) is None
    assert api.get(f"{path}{media_id}/").json()["status"] == "cancelled"
    event = AuditEvent.objects.get(action="upload.cancelled")
    assert event.target_vod_id == media_id and event.actor_label == "alice"


def test_cancel_twice_is_harmless(api, sandbox):
    video_id = api.post("/api/v1/videos/", {"title": "t", "file_name": "t.mp4"},
                        format="json").json()["video_id"]
    api.delete(f"/api/v1/videos/{video_id}/")
    again = api.delete(f"/api/v1/videos/{video_id}/")
    assert again.status_code == 200
    assert sandbox.count_calls("DeleteVideo") == 1
    assert AuditEvent.objects.filter(action="upload.cancelled").count() == 1


def test_cancel_of_another_users_upload_is_404(api, other_api, sandbox):
    video_id = api.post("/api/v1/videos/", {"title": "t", "file_name": "t.mp4"},
                        format="json").json()["video_id"]
    assert other_api.delete(f"/api/v1/videos/{video_id}/").status_code == 404
    assert sandbox.count_calls("DeleteVideo") == 0


def test_a_vod_failure_leaves_the_row_unchanged(api, sandbox):
    video_id = api.post("/api/v1/videos/", {"title": "t", "file_name": "t.mp4"},
                        format="json").json()["video_id"]
    sandbox.faults.add(action="DeleteVideo", code="Throttling")

    response = api.delete(f"/api/v1/videos/{video_id}/")

    assert response.status_code == 429
    assert VideoUpload.objects.get().status == UploadStatus.UPLOADING
    assert AuditEvent.objects.get(action="upload.cancelled").outcome == "failure"


def test_media_vod_already_forgot_is_still_cancelled(api, sandbox):
    video_id = api.post("/api/v1/videos/", {"title": "t", "file_name": "t.mp4"},
                        format="json").json()["video_id"]
    sandbox.forget(video_id)
    assert api.delete(f"/api/v1/videos/{video_id}/").json()["status"] == "cancelled"
