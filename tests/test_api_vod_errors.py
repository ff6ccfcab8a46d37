"""VOD failures, injected by the sandbox, reach clients as mapped statuses and are audited."""

import pytest

from uploads.models import AuditEvent, ImageUpload, UploadStatus, VideoUpload

pytestmark = pytest.mark.django_db(transaction=True)

VIDEO = {"title": "Clip", "file_name": "clip.mp4"}


def post_video(api):
    return api.post("/api/v1/videos/", VIDEO, format="json")


def assert_failure_audited(code):
    event = AuditEvent.objects.get(action="video.credential.failed")
    assert event.outcome == "failure"
    assert event.data["code"] == code
    assert event.data["operation"] == "CreateUploadVideo"
    return event


def test_throttling_is_429_with_retry_after_and_not_retried(api, sandbox):
    sandbox.faults.add(action="CreateUploadVideo", code="Throttling")

    response = post_video(api)

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "vod_throttled" and body["vod_code"] == "Throttling"
    assert body["vod_request_id"] and body["request_id"] == response["X-Request-ID"]
    assert int(response["Retry-After"]) >= 1
    assert sandbox.count_calls("CreateUploadVideo") == 1
    row = VideoUpload.objects.get()
    assert row.status == UploadStatus.FAILED and row.error_code == "Throttling"
    assert_failure_audited("Throttling")


def test_throttling_retry_after_from_vod_is_passed_on(api, sandbox):
    sandbox.faults.add(action="CreateUploadVideo", code="Throttling.User", retry_after=7)

    response = post_video(api)

    assert response.status_code == 429
    assert response["Retry-After"] == "7"


def test_internal_error_is_retried_once_then_503(api, sandbox, settings):
    settings.VOD_MAX_ATTEMPTS = 2
    sandbox.faults.add(action="CreateUploadVideo", code="InternalError")

    response = post_video(api)

    assert response.status_code == 503
    assert response.json()["code"] == "vod_unavailable"
    assert response.json()["vod_code"] == "InternalError"
    assert "Retry-After" in response
    assert sandbox.count_calls("CreateUploadVideo") == 2
    # VOD may have acted on a 5xx: the row waits for vod_sync instead of being ended.
    row = VideoUpload.objects.get()
    assert row.status == UploadStatus.REQUESTING and row.error_code == "InternalError"
    assert_failure_audited("InternalError")


def test_a_passing_internal_error_is_mended_by_the_retry(api, sandbox, settings):
    settings.VOD_MAX_ATTEMPTS = 2
    sandbox.faults.add(action="CreateUploadVideo", code="InternalError", times=1)

    response = post_video(api)

    assert response.status_code == 201, response.content
    assert sandbox.count_calls("CreateUploadVideo") == 2
    assert VideoUpload.objects.get().status == UploadStatus.UPLOADING


def test_image_creation_is_not_repeated_after_a_5xx(api, sandbox, settings):
    settings.VOD_MAX_ATTEMPTS = 3
    sandbox.faults.add(action="CreateUploadImage", code="ServiceUnAvailable")

    response = api.post("/api/v1/images/", {"image_type": "default"}, format="json")

    assert response.status_code == 503
    # A repeat could create a second image that nobody knows about.
    assert sandbox.count_calls("CreateUploadImage") == 1
    assert ImageUpload.objects.get().status == UploadStatus.REQUESTING


def test_timeout_is_504_and_the_row_awaits_sync(api, sandbox, settings):
    settings.VOD_READ_TIMEOUT_MS = 300
    settings.VOD_MAX_ATTEMPTS = 1
    sandbox.faults.add(action="CreateUploadVideo", timeout=True)

    response = post_video(api)

    assert response.status_code == 504
    assert response.json()["code"] == "vod_timeout"
    row = VideoUpload.objects.get()
    assert row.status == UploadStatus.REQUESTING and row.error_code == "ReadTimeout"
    assert_failure_audited("ReadTimeout")


def test_latency_below_the_timeout_still_succeeds(api, sandbox):
    sandbox.faults.add(action="CreateUploadVideo", latency=0.2)
    assert post_video(api).status_code == 201


def test_a_retried_video_after_a_lost_answer_is_not_created_twice(api, sandbox, settings):
    """The first attempt reaches VOD, but its answer is lost to a timeout; the retry is
    refused as a duplicate ReferenceId and the video is found again by ReferenceId."""
    settings.VOD_READ_TIMEOUT_MS = 300
    settings.VOD_MAX_ATTEMPTS = 2
    sandbox.faults.add(action="CreateUploadVideo", timeout=True, times=1, apply_after=True)

    response = post_video(api)

    assert response.status_code == 201, response.content
    video_id = response.json()["video_id"]
    assert sandbox.count_videos() == 1
    row = VideoUpload.objects.get()
    assert row.vod_id == video_id and row.status == UploadStatus.UPLOADING
    assert sandbox.get_video(video_id)["ReferenceId"] == row.reference_id


def test_wrong_access_key_secret_is_503_not_configured(api, sandbox, settings):
    settings.VOD_SANDBOX_ACCESS_KEY_SECRET = "not-the-sandbox-secret"

    response = post_video(api)

    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "vod_not_configured"
    assert body["vod_code"] == "SignatureDoesNotMatch"
    assert "not-the-sandbox-secret" not in response.content.decode()
    assert VideoUpload.objects.get().status == UploadStatus.FAILED


def test_unknown_access_key_is_503_not_configured(api, settings):
    settings.VOD_SANDBOX_ACCESS_KEY_ID = "NobodyKnowsThisKey"

    response = post_video(api)

    assert response.status_code == 503
    assert response.json()["vod_code"] == "InvalidAccessKeyId.NotFound"


def test_vod_unreachable_is_503(api, settings):
    settings.VOD_ENDPOINT = "127.0.0.1:9"  # discard port: nothing listens
    settings.VOD_MAX_ATTEMPTS = 1

    response = post_video(api)

    assert response.status_code == 503
    assert response.json()["vod_code"] == "ConnectionError"
    # The request never reached VOD: nothing can exist there, so the row is ended.
    assert VideoUpload.objects.get().status == UploadStatus.FAILED


def test_refresh_of_a_video_vod_no_longer_knows_is_404(api, sandbox):
    video_id = post_video(api).json()["video_id"]
    sandbox.reset()  # the sandbox forgets every media

    response = api.post(f"/api/v1/videos/{video_id}/refresh/")

    assert response.status_code == 404
    assert response.json()["vod_code"] == "InvalidVideo.NotFound"
    event = AuditEvent.objects.get(action="video.credential.failed")
    assert event.data["operation"] == "RefreshUploadVideo"
    assert VideoUpload.objects.get().credentials_issued == 1


def test_unexpected_errors_are_json_500_without_a_trace(api, monkeypatch):
    from uploads.api import views

    def broken(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(views.services, "video_issue", broken)
    api.raise_request_exception = False

    response = post_video(api)

    assert response.status_code == 500
    assert response.json()["code"] == "server_error"
    assert "secret internals" not in response.content.decode()
    assert "Traceback" not in response.content.decode()


def test_a_category_the_account_lacks_is_a_400_not_a_missing_media(api, sandbox):
    """VOD's InvalidCateId.NotFound is about the request's CateId, not about a media."""
    sandbox.configure(category_ids=[1001])

    response = api.post("/api/v1/videos/", {**VIDEO, "cate_id": 999}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "vod_rejected_input" and body["vod_code"] == "InvalidCateId.NotFound"
    assert VideoUpload.objects.get().status == UploadStatus.FAILED
    assert api.post("/api/v1/videos/", {**VIDEO, "cate_id": 1001},
                    format="json").status_code == 201
