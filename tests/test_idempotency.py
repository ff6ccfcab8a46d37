"""Idempotency-Key on the create endpoints: replay, 422 on another body, one VOD call."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.test_secrets import every_stored_value
from uploads.models import IdempotencyRecord, VideoUpload

pytestmark = pytest.mark.django_db(transaction=True)

VIDEO = {"title": "Clip", "file_name": "clip.mp4"}


def post(api, path="/api/v1/videos/", body=VIDEO, key="key-0001"):
    return api.post(path, body, format="json", HTTP_IDEMPOTENCY_KEY=key)


def test_the_same_key_and_body_replays_the_first_answer_without_calling_vod(api, sandbox):
    first = post(api)
    again = post(api)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and again["Cache-Control"] == "no-store"
    assert "Idempotent-Replayed" not in first
    assert sandbox.count_calls("CreateUploadVideo") == 1
    assert VideoUpload.objects.count() == 1


@pytest.mark.parametrize("path,body", [
    ("/api/v1/images/", {"image_type": "default"}),
    ("/api/v1/attached-media/", {"business_type": "material", "media_ext": "zip"}),
])
def test_every_create_endpoint_honours_the_key(api, sandbox, path, body):
    first, again = post(api, path, body), post(api, path, body)
    assert again.json() == first.json() and again["Idempotent-Replayed"] == "true"
    assert len(sandbox.calls) == 1


def test_the_same_key_with_another_body_is_422(api, sandbox):
    post(api)
    refused = post(api, body={**VIDEO, "title": "Another"})
    assert refused.status_code == 422
    assert refused.json()["code"] == "idempotency_key_reused"
    assert refused.json()["request_id"] == refused["X-Request-ID"]  # the one error shape
    assert sandbox.count_calls("CreateUploadVideo") == 1


def test_an_answer_that_can_no_longer_be_decrypted_is_a_clear_409(api, sandbox, settings):
    assert post(api).status_code == 201
    settings.SECRET_KEY = "rotated-" + settings.SECRET_KEY  # the stored answer's key is gone

    again = post(api)

    assert again.status_code == 409
    assert again.json() == {"code": "idempotency_key_unreadable",
                            "detail": again.json()["detail"],
                            "request_id": again["X-Request-ID"]}
    assert "new key" in again.json()["detail"]
    assert sandbox.count_calls("CreateUploadVideo") == 1  # never a second video for the key


def test_keys_are_per_user_and_per_endpoint(api, other_api, sandbox):
    post(api)
    assert post(other_api).status_code == 201  # bob's key-0001 is his own
    assert post(api, "/api/v1/images/", {"image_type": "default"}).status_code == 201
    assert len(sandbox.calls) == 3


def test_no_key_means_no_idempotency(api, sandbox):
    api.post("/api/v1/videos/", VIDEO, format="json")
    api.post("/api/v1/videos/", VIDEO, format="json")
    assert sandbox.count_calls("CreateUploadVideo") == 2


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "ünï"])
def test_a_malformed_key_is_a_400_naming_the_header(api, sandbox, key):
    response = post(api, key=key)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["errors"]
    assert sandbox.calls == []


def test_a_failed_request_frees_its_key(api, sandbox):
    sandbox.faults.add(action="CreateUploadVideo", code="Throttling", times=1)
    assert post(api).status_code == 429
    retried = post(api)
    assert retried.status_code == 201 and "Idempotent-Replayed" not in retried
    invalid = post(api, body={"title": ""}, key="key-0002")
    assert invalid.status_code == 400
    assert post(api, key="key-0002").status_code == 201


def test_keys_are_kept_24_hours_then_forgotten(api, sandbox):
    post(api)
    record = IdempotencyRecord.objects.get()
    assert timedelta(hours=23, minutes=59) < record.expires_at - record.created_at
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert "Idempotent-Replayed" not in post(api)
    assert sandbox.count_calls("CreateUploadVideo") == 2


def test_the_stored_answer_is_encrypted(api):
    answer = post(api).json()
    stored = list(every_stored_value())
    for secret in (answer["upload_auth"], answer["upload"]["access_key_secret"],
                   answer["upload"]["security_token"]):
        assert not any(secret in value for value in stored)


def test_two_concurrent_requests_with_one_key_make_one_vod_call(user, sandbox, settings):
    if connection.vendor == "sqlite":
        settings.IDEMPOTENCY_WAIT_SECONDS = 20  # the file database serializes writers
    from tests.conftest import _token_client

    clients = [_token_client(user) for _ in range(2)]
    sandbox.faults.add(action="CreateUploadVideo", latency=0.5)  # the first one is slow
    answers = []

    def send(client):
        try:
            answers.append(post(client, key="concurrent-1"))
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sandbox.count_calls("CreateUploadVideo") == 1
    assert sorted(answer.status_code for answer in answers) == [201, 201]
    assert answers[0].json()["video_id"] == answers[1].json()["video_id"]
    assert sum("Idempotent-Replayed" in answer for answer in answers) == 1


def test_a_request_still_running_past_the_wait_gets_409(user, sandbox, settings):
    from tests.conftest import _token_client

    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    slow, impatient = _token_client(user), _token_client(user)
    sandbox.faults.add(action="CreateUploadVideo", latency=1.0)
    answers = {}

    def first():
        try:
            answers["first"] = post(slow, key="slow-1")
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    while not IdempotencyRecord.objects.filter(key="slow-1").exists():
        pass
    answers["second"] = post(impatient, key="slow-1")
    thread.join()

    assert answers["second"].status_code == 409
    assert answers["second"]["Retry-After"] == "1"
    assert answers["second"].json()["request_id"] == answers["second"]["X-Request-ID"]
    assert answers["first"].status_code == 201
    assert sandbox.count_calls("CreateUploadVideo") == 1


def test_a_retry_after_a_lost_answer_resumes_the_same_video(api, sandbox, settings):
    """VOD made the video but its answer was lost (timeout): the retry with the same key
    resumes the same row and ReferenceId, so VOD never holds two videos for one request."""
    settings.VOD_READ_TIMEOUT_MS = 300
    settings.VOD_MAX_ATTEMPTS = 1
    sandbox.faults.add(action="CreateUploadVideo", timeout=True, times=1, apply_after=True)

    lost = post(api, key="lost-1")
    assert lost.status_code == 504
    assert IdempotencyRecord.objects.get().state == "interrupted"

    retried = post(api, key="lost-1")

    assert retried.status_code == 201, retried.content
    assert sandbox.count_videos() == 1
    row = VideoUpload.objects.get()  # one row: the first attempt's, resumed
    assert row.vod_id == retried.json()["video_id"]
    assert sandbox.get_video(row.vod_id)["ReferenceId"] == row.reference_id
    again = post(api, key="lost-1")
    assert again["Idempotent-Replayed"] == "true" and again.json() == retried.json()


def test_a_retry_after_vod_sync_discarded_the_video_gets_a_new_one(api, sandbox, settings):
    """vod_sync found the video whose answer was lost and deleted it (its credential never
    reached anyone): the retry makes a new row and video; VOD holds one video for the key."""
    from django.core.management import call_command

    settings.VOD_READ_TIMEOUT_MS = 300
    settings.VOD_MAX_ATTEMPTS = 1
    sandbox.faults.add(action="CreateUploadVideo", timeout=True, times=1, apply_after=True)
    post(api, key="lost-2")
    VideoUpload.objects.update(created_at=timezone.now() - timedelta(hours=1))
    call_command("vod_sync")
    first = VideoUpload.objects.get()
    assert first.vod_id and first.status == "failed"  # found by ReferenceId, then discarded
    assert first.error_code == "CredentialNeverDelivered" and sandbox.count_videos() == 0

    retried = post(api, key="lost-2")

    assert retried.status_code == 201, retried.content
    second = VideoUpload.objects.exclude(pk=first.pk).get()
    assert retried.json()["video_id"] == second.vod_id
    assert sandbox.state()["videos"] == [second.vod_id]
    assert IdempotencyRecord.objects.get().upload_id == second.pk
