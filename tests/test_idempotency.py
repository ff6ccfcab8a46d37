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


def test_an_interrupted_image_is_redone_on_a_new_row_and_the_lost_one_discarded(
        api, sandbox, settings, capsys, time_passes):
    """Images have no ReferenceId and VOD cannot re-issue their credential: the retry makes
    a new row and image; the first image, made but never delivered, is found by its marker
    and deleted by vod_sync. One live image for the key."""
    from django.core.management import call_command

    from uploads.models import ImageUpload

    settings.VOD_READ_TIMEOUT_MS = 300
    settings.VOD_MAX_ATTEMPTS = 1
    body = {"image_type": "default", "image_ext": "png"}
    sandbox.faults.add(action="CreateUploadImage", timeout=True, apply_after=True, times=1)
    assert post(api, "/api/v1/images/", body, key="img-1").status_code == 504
    first = ImageUpload.objects.get()
    assert IdempotencyRecord.objects.get().state == "interrupted"

    retried = post(api, "/api/v1/images/", body, key="img-1")

    assert retried.status_code == 201, retried.content
    second = ImageUpload.objects.exclude(pk=first.pk).get()
    assert retried.json()["image_id"] == second.vod_id
    assert IdempotencyRecord.objects.get().upload_id == second.pk
    assert sandbox.count_images() == 2  # the lost one is still there...
    time_passes()
    call_command("vod_sync")
    capsys.readouterr()
    first.refresh_from_db()
    assert first.status == "failed" and first.error_code == "CredentialNeverDelivered"
    assert sandbox.state()["images"] == [second.vod_id]  # ...until vod_sync deletes it
    assert post(api, "/api/v1/images/", body, key="img-1").json() == retried.json()


def test_a_key_whose_request_died_is_taken_over_after_its_lease(api, sandbox, settings):
    """A worker killed mid-request leaves its key `running` for ever; past the lease a retry
    takes it over and goes on with the same row (for a video: found by ReferenceId)."""
    settings.VOD_READ_TIMEOUT_MS = 300
    settings.VOD_MAX_ATTEMPTS = 1
    settings.IDEMPOTENCY_WAIT_SECONDS = 0.2
    sandbox.faults.add(action="CreateUploadVideo", timeout=True, apply_after=True, times=1)
    post(api, key="died-1")
    # What a killed worker leaves: the key still running, its row requesting.
    IdempotencyRecord.objects.update(state="running")

    busy = post(api, key="died-1")
    assert busy.status_code == 409 and busy["Retry-After"] == "1"

    IdempotencyRecord.objects.update(
        claimed_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS + 1))
    taken_over = post(api, key="died-1")

    assert taken_over.status_code == 201, taken_over.content
    assert VideoUpload.objects.get().vod_id == taken_over.json()["video_id"]
    assert sandbox.count_videos() == 1 and sandbox.count_calls("CreateUploadVideo") == 1


@pytest.mark.parametrize("path, body, action, kind, id_field", [
    ("/api/v1/videos/", VIDEO, "CreateUploadVideo", "videos", "video_id"),
    ("/api/v1/images/", {"image_type": "default", "image_ext": "png"}, "CreateUploadImage",
     "images", "image_id"),
    ("/api/v1/attached-media/", {"business_type": "subtitle", "media_ext": "vtt"},
     "CreateUploadAttachedMedia", "attached_media", "media_id"),
])
def test_one_key_sent_by_many_clients_under_faults_makes_one_live_media(
        path, body, action, kind, id_field, user, sandbox, settings, capsys, time_passes):
    from django.core.management import call_command

    from tests.conftest import _token_client, concurrently

    settings.VOD_READ_TIMEOUT_MS = 300
    settings.VOD_MAX_ATTEMPTS = 1
    settings.IDEMPOTENCY_WAIT_SECONDS = 20 if connection.vendor == "sqlite" else 5
    sandbox.faults.add(action=action, timeout=True, apply_after=True, times=2)
    clients = [_token_client(user) for _ in range(6)]

    answers = concurrently(*[lambda client=client: post(client, path, body, key="crowd-1")
                             for client in clients])
    while not any(answer.status_code == 201 for answer in answers):
        answers.append(post(clients[0], path, body, key="crowd-1"))
        assert len(answers) < 20, [answer.status_code for answer in answers]

    issued = {answer.json()[id_field] for answer in answers if answer.status_code == 201}
    assert len(issued) == 1, issued
    assert {answer.status_code for answer in answers} <= {201, 409, 504}
    time_passes()
    call_command("vod_sync")
    capsys.readouterr()
    assert sandbox.state()[kind] == list(issued)
