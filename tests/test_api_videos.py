"""POST/GET /api/v1/videos/ and refresh/, through the real SDK against the sandbox."""

import base64
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from uploads.models import AuditEvent, UploadStatus, VideoUpload

pytestmark = pytest.mark.django_db(transaction=True)

VIDEOS = "/api/v1/videos/"


def b64json(value: str) -> dict:
    return json.loads(base64.b64decode(value))


def create_video(api, **overrides):
    body = {"title": "Holiday in Hangzhou", "file_name": "movie.mp4", **overrides}
    return api.post(VIDEOS, body, format="json")


def test_create_returns_credential_the_sandbox_issued(api, user, sandbox):
    response = create_video(api, file_size=1048576, tags=["travel", "2026"],
                            description="West Lake", extend={"album": 7})

    assert response.status_code == 201, response.content
    body = response.json()
    video_id = body["video_id"]
    known = sandbox.get_video(video_id)
    assert known is not None, "the sandbox never issued this VideoId"
    assert body["status"] == "uploading"
    assert body["owner"] == "alice"
    assert body["tags"] == ["travel", "2026"]
    assert body["credentials_issued"] == 1

    # The raw values, exactly as VOD returned them, for the official upload SDKs.
    address = b64json(body["upload_address"])
    auth = b64json(body["upload_auth"])
    assert address["Endpoint"] == sandbox.base_url
    assert auth["AccessKeyId"].startswith("STS.")
    # The decoded form agrees with the raw one.
    upload = body["upload"]
    assert upload == {
        "endpoint": address["Endpoint"], "bucket": address["Bucket"],
        "object_key": address["FileName"], "access_key_id": auth["AccessKeyId"],
        "access_key_secret": auth["AccessKeySecret"], "security_token": auth["SecurityToken"],
        "expires_at": upload["expires_at"],
    }
    expires_at = timezone.datetime.fromisoformat(upload["expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=2900) < expires_at - timezone.now() <= timedelta(seconds=3000)
    assert response["Cache-Control"] == "no-store"


def test_create_records_the_row_and_sends_its_id_as_reference_id(api, user, sandbox):
    response = create_video(api, file_size=2048)
    video_id = response.json()["video_id"]

    row = VideoUpload.objects.get(vod_id=video_id)
    assert row.owner == user
    assert row.status == UploadStatus.UPLOADING
    assert row.file_size == 2048
    assert row.tags == ""  # omitted tags are stored as VOD's empty list, not as "[]"
    assert response.json()["tags"] == []
    assert row.upload_bucket and row.upload_object_key.endswith(".mp4")
    assert row.last_vod_request_id
    assert row.credential_expires_at > timezone.now()
    sent = sandbox.get_video(video_id)
    assert sent["ReferenceId"] == row.id.hex

    event = AuditEvent.objects.get(action="video.credential.issued")
    assert event.outcome == "success"
    assert event.actor == user and event.actor_label == "alice"
    assert event.target_vod_id == video_id and event.target_pk == str(row.pk)
    assert event.vod_request_id == row.last_vod_request_id
    assert event.client_ip == "127.0.0.1"
    assert event.request_id == response["X-Request-ID"]


def test_request_id_from_client_is_kept(api):
    response = api.post(VIDEOS, {"title": "t", "file_name": "a.mov"}, format="json",
                        HTTP_X_REQUEST_ID="client-req-42")
    assert response["X-Request-ID"] == "client-req-42"
    assert AuditEvent.objects.get(action="video.credential.issued").request_id == "client-req-42"


def test_refresh_keeps_the_address_and_renews_the_credential(api, sandbox):
    created = create_video(api).json()
    response = api.post(f"{VIDEOS}{created['video_id']}/refresh/")

    assert response.status_code == 200, response.content
    refreshed = response.json()
    assert refreshed["video_id"] == created["video_id"]
    assert b64json(refreshed["upload_address"]) == b64json(created["upload_address"])
    assert refreshed["upload"]["access_key_id"] != created["upload"]["access_key_id"]
    assert refreshed["upload"]["security_token"] != created["upload"]["security_token"]
    assert refreshed["credentials_issued"] == 2
    assert response["Cache-Control"] == "no-store"
    assert sandbox.count_calls("RefreshUploadVideo") == 1
    actions = list(AuditEvent.objects.exclude(action="auth.token.created")
                   .order_by("sequence").values_list("action", flat=True))
    assert actions == ["video.credential.issued", "video.credential.refreshed"]


def test_refresh_of_a_cancelled_video_is_a_conflict(api, user, sandbox):
    created = create_video(api).json()
    VideoUpload.objects.filter(vod_id=created["video_id"]).update(status=UploadStatus.CANCELLED)

    response = api.post(f"{VIDEOS}{created['video_id']}/refresh/")

    assert response.status_code == 409
    assert response.json()["code"] == "invalid_state"
    assert sandbox.count_calls("RefreshUploadVideo") == 0
    refused = AuditEvent.objects.get(action="upload.action.refused")
    assert refused.outcome == "rejected" and refused.target_vod_id == created["video_id"]
    assert refused.data == {"action": "video.credential.refreshed", "status": "cancelled"}


def test_list_and_detail_show_own_videos_without_secrets(api, other_api):
    mine = create_video(api, title="mine").json()
    create_video(other_api, title="theirs")

    listing = api.get(VIDEOS)
    assert listing.status_code == 200
    assert [item["video_id"] for item in listing.json()["results"]] == [mine["video_id"]]

    detail = api.get(f"{VIDEOS}{mine['video_id']}/")
    assert detail.status_code == 200
    text = detail.content.decode()
    for secret in (mine["upload"]["access_key_secret"], mine["upload"]["security_token"],
                   mine["upload_auth"]):
        assert secret not in text
    assert detail.json()["upload_location"]["object_key"] == mine["upload"]["object_key"]


def test_another_users_video_answers_404_like_an_unknown_one(api, other_api):
    theirs = create_video(other_api).json()["video_id"]

    for response in (api.get(f"{VIDEOS}{theirs}/"), api.post(f"{VIDEOS}{theirs}/refresh/"),
                     api.get(f"{VIDEOS}{'0' * 32}/")):
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"


def test_staff_with_the_view_permission_see_every_video(api, other_api, staff_api,
                                                          staff_user):
    from django.contrib.auth.models import Permission

    create_video(api)
    create_video(other_api)
    assert staff_api.get(VIDEOS).json()["results"] == []  # the staff flag alone: nothing

    staff_user.user_permissions.add(Permission.objects.get(codename="view_videoupload"))
    owners = {item["owner"] for item in staff_api.get(VIDEOS).json()["results"]}
    assert owners == {"alice", "bob"}


def test_list_filters_by_status(api):
    created = create_video(api).json()
    create_video(api)
    VideoUpload.objects.filter(vod_id=created["video_id"]).update(status=UploadStatus.READY)

    ready = api.get(VIDEOS, {"status": "ready"}).json()["results"]
    assert [item["video_id"] for item in ready] == [created["video_id"]]


def test_an_unknown_status_filter_is_a_400_naming_it(api):
    create_video(api)

    answer = api.get(VIDEOS, {"status": "bogus"})

    assert answer.status_code == 400 and list(answer.json()["errors"]) == ["status"]
