"""Every media VOD creates ends on exactly one row, with a verdict only on VOD's word.

Faults are injected through the sandbox; the real SDK talks to it over HTTP. A create whose
answer is lost leaves its row `requesting`; a retry with the same Idempotency-Key or
`vod_sync` settles it by looking the media up (videos by ReferenceId, images and attached
media by their marker tag with SearchMedia, whose index lags).
"""

import pytest
from django.core.management import call_command

from uploads import audit
from uploads.vod import limiter
from uploads.models import (
    AttachedMediaUpload,
    AuditEvent,
    IdempotencyRecord,
    ImageUpload,
    UploadStatus,
    VideoUpload,
)

pytestmark = pytest.mark.django_db(transaction=True)

VIDEO = {"title": "Clip", "file_name": "clip.mp4"}
IMAGE = {"image_type": "default", "image_ext": "png", "title": "Poster"}
ATTACHED = {"business_type": "watermark", "media_ext": "png"}
MARKED = {  # kinds found again by their marker tag: (path, body, action, model, sandbox getter)
    "image": ("/api/v1/images/", IMAGE, "CreateUploadImage", ImageUpload, "get_image"),
    "attached_media": ("/api/v1/attached-media/", ATTACHED, "CreateUploadAttachedMedia",
                       AttachedMediaUpload, "get_attached_media"),
}


@pytest.fixture(autouse=True)
def quick_faults(settings):
    settings.VOD_READ_TIMEOUT_MS = 300
    settings.VOD_MAX_ATTEMPTS = 1


def create(api, path="/api/v1/videos/", body=VIDEO, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post(path, body, format="json", **headers)


def sync(capsys, *args) -> str:
    call_command("vod_sync", "--grace", "10", *args)
    return capsys.readouterr().out


@pytest.mark.parametrize("kind", MARKED)
def test_images_and_attached_media_carry_their_rows_marker_in_vod(kind, api, sandbox):
    path, body, _, model, getter = MARKED[kind]
    answer = create(api, path, {**body, "tags": ["red", "blue"]})
    row = model.objects.get()
    media = getattr(sandbox, getter)(answer.json()[f"{'image' if kind == 'image' else 'media'}_id"])
    assert media["Tags"].split(",") == ["red", "blue", row.marker_tag]
    assert len(row.marker_tag.encode()) <= 32 and row.tags == "red,blue"
    assert answer.json()["tags"] == ["red", "blue"]  # the marker is ours, not the user's


@pytest.mark.parametrize("kind", MARKED)
def test_a_lost_image_is_found_by_its_marker_only_once_the_index_has_caught_up(
        kind, api, sandbox, capsys, settings, time_passes):
    path, body, action, model, _ = MARKED[kind]
    settings.VOD_SEARCH_LAG_SECONDS = 60
    sandbox.configure(search_lag=30)
    sandbox.faults.add(action=action, timeout=True, apply_after=True, times=1)
    assert create(api, path, body).status_code == 504
    row = model.objects.get()
    assert row.status == UploadStatus.REQUESTING and row.vod_id is None

    # Young: VOD's index may not show it yet, so a miss proves nothing.
    out = sync(capsys, "--grace", "0")
    assert "1 checked, 0 changed" in out
    assert model.objects.get().status == UploadStatus.REQUESTING
    assert sandbox.count_calls("SearchMedia") == 1

    time_passes(120)
    sync(capsys, "--grace", "0")

    row.refresh_from_db()
    assert row.status == UploadStatus.FAILED and row.error_code == "CredentialNeverDelivered"
    assert row.vod_id and sandbox.count_calls(action.replace("CreateUpload", "Delete")) == 1
    assert sandbox.state()["images" if kind == "image" else "attached_media"] == []


def test_a_row_is_ended_as_not_in_vod_only_when_vod_said_so(api, sandbox, capsys,
                                                            time_passes):
    sandbox.faults.add(action="CreateUploadImage", timeout=True, times=1)  # never created
    create(api, "/api/v1/images/", IMAGE)
    sandbox.faults.add(action="SearchMedia", code="ServiceUnAvailable")
    time_passes()

    out = sync(capsys)

    assert "1 failed" in out
    row = ImageUpload.objects.get()
    assert row.status == UploadStatus.REQUESTING  # VOD could not be asked: no verdict
    assert AuditEvent.objects.filter(action="upload.synced", outcome="failure").exists()

    sandbox.faults.clear()
    sync(capsys)

    row.refresh_from_db()
    assert row.status == UploadStatus.FAILED and row.error_code == "NotFoundInVod"
    verdict = AuditEvent.objects.filter(action="upload.synced", outcome="success").get()
    assert verdict.vod_request_id  # the SearchMedia answer the verdict rests on
    assert audit.verify_chain().ok


@pytest.mark.parametrize("refusal", ["vod", "our_limiter"])
def test_a_refused_lookup_after_a_lost_answer_leaves_the_video_resolvable(
        refusal, api, sandbox, settings, capsys, time_passes):
    """The path that once made two videos: the answer is lost, the lookup that would find
    the video is refused (by VOD's throttling or our own limiter). The row stays open, the
    key stays bound to it, and the client's retry gets the same video."""
    settings.VOD_MAX_ATTEMPTS = 2
    sandbox.faults.add(action="CreateUploadVideo", timeout=True, apply_after=True, times=1)
    if refusal == "vod":
        sandbox.faults.add(action="RefreshUploadVideo", code="Throttling.User", times=1)
    else:
        # One call a second, and a RefreshUploadVideo just made holds that second.
        limiter.clear()
        settings.VOD_QPS_LIMIT = 1
        settings.VOD_QPS_MAX_WAIT_MS = 0
        with limiter.vod_call_slot("RefreshUploadVideo"):
            pass

    refused = create(api, key="lost-then-refused")

    assert refused.status_code == 429 and refused["Retry-After"]
    assert refused.json()["vod_code"] == ("Throttling.User" if refusal == "vod"
                                          else "QpsLimitReached")
    row = VideoUpload.objects.get()
    assert row.status == UploadStatus.REQUESTING
    assert IdempotencyRecord.objects.get().state == "interrupted"
    event = AuditEvent.objects.get(action="video.credential.failed")
    assert event.data["vod_may_have_acted"] is True
    assert sandbox.count_videos() == 1

    settings.VOD_QPS_LIMIT = 100000
    retried = create(api, key="lost-then-refused")

    assert retried.status_code == 201, retried.content
    row.refresh_from_db()
    assert retried.json()["video_id"] == row.vod_id == sandbox.state()["videos"][0]
    assert sandbox.count_calls("CreateUploadVideo") == 1  # found, never created again
    time_passes()
    sync(capsys)
    assert sandbox.count_videos() == 1 and VideoUpload.objects.get().status == "uploading"


def test_whatever_a_repeated_create_answers_the_reference_id_lookup_decides(api, sandbox,
                                                                            settings):
    """The first answer is lost; the lookup misses (as if VOD were still writing it); the
    repeat is answered with something undocumented. The next lookup finds the video."""
    settings.VOD_MAX_ATTEMPTS = 3
    sandbox.faults.add(action="CreateUploadVideo", timeout=True, apply_after=True, times=1)
    sandbox.faults.add(action="RefreshUploadVideo", code="InvalidVideo.NotFound", times=1)
    sandbox.faults.add(action="CreateUploadVideo", code="Forbidden.Undocumented", status=403,
                       times=1)

    answer = create(api)

    assert answer.status_code == 201, answer.content
    assert sandbox.count_videos() == 1
    assert answer.json()["video_id"] == sandbox.state()["videos"][0]
    actions = [call["action"] for call in sandbox.calls]
    assert actions == ["CreateUploadVideo", "RefreshUploadVideo", "CreateUploadVideo",
                       "RefreshUploadVideo"]


def test_a_failure_before_vod_was_reached_ends_the_row_and_frees_the_key(api, sandbox,
                                                                         settings):
    settings.VOD_ENDPOINT = "127.0.0.1:1"  # nothing listens: connection refused

    refused = create(api, "/api/v1/images/", IMAGE, key="never-sent")

    assert refused.status_code == 503 and refused["Retry-After"]
    assert ImageUpload.objects.get().status == UploadStatus.FAILED
    assert not IdempotencyRecord.objects.exists()
    event = AuditEvent.objects.get(action="image.credential.failed")
    assert event.data["vod_may_have_acted"] is False


@pytest.mark.parametrize("kind", MARKED)
def test_user_tags_leave_room_for_the_marker_and_may_not_imitate_it(kind, api):
    path, body, *_ = MARKED[kind]
    too_many = create(api, path, {**body, "tags": [f"t{i}" for i in range(16)]})
    assert too_many.status_code == 400
    assert "tags" in too_many.json()["errors"] and "15" in str(too_many.json()["errors"])
    imitation = create(api, path, {**body, "tags": ["vodp-abc"]})
    assert imitation.status_code == 400 and "reserved" in str(imitation.json()["errors"])
    assert create(api, "/api/v1/videos/", {**VIDEO, "tags": [f"t{i}" for i in range(16)]}
                  ).status_code == 201


def test_recheck_failed_finds_what_older_versions_ended_too_early(api, sandbox, capsys,
                                                                 time_passes):
    """Before this version a lost answer followed by a refused lookup ended the row as
    failed while VOD held the video. `vod_sync --recheck-failed` looks such rows up once."""
    sandbox.faults.add(action="CreateUploadVideo", timeout=True, apply_after=True, times=1)
    create(api)
    VideoUpload.objects.update(status=UploadStatus.FAILED, error_code="Throttling")
    sandbox.faults.add(action="CreateUploadImage", code="InvalidParameter", times=1)
    create(api, "/api/v1/images/", IMAGE)  # refused by VOD: nothing to find
    time_passes()

    assert "0 checked" in sync(capsys)  # failed rows are not looked at by default
    out = sync(capsys, "--recheck-failed", "2")

    assert "2 checked, 1 changed, 0 failed" in out
    video = VideoUpload.objects.get()
    assert video.vod_id and video.error_code == "CredentialNeverDelivered"
    assert sandbox.count_videos() == 0
    image = ImageUpload.objects.get()
    assert image.status == UploadStatus.FAILED and image.error_code == "InvalidParameter"


def test_the_admins_sync_leaves_a_row_a_request_may_still_hold(client, api, sandbox, settings,
                                                                time_passes):
    """Staff syncing a `requesting` row settle it only once no request can still be working
    on it (IDEMPOTENCY_LEASE_SECONDS); before that, a media found might be about to be
    delivered."""
    from tests.test_admin import VIDEOS, run_action, staff_with

    sandbox.faults.add(action="CreateUploadVideo", timeout=True, apply_after=True, times=1)
    create(api)
    client.force_login(staff_with("view_videoupload", "sync_videoupload"))

    run_action(client, VIDEOS, "sync_from_vod", VideoUpload.objects.all())

    assert VideoUpload.objects.get().status == UploadStatus.REQUESTING
    assert sandbox.count_calls("GetVideoInfos") == 0 and sandbox.count_videos() == 1

    time_passes(settings.IDEMPOTENCY_LEASE_SECONDS + 1)
    run_action(client, VIDEOS, "sync_from_vod", VideoUpload.objects.all())

    row = VideoUpload.objects.get()
    assert row.status == UploadStatus.FAILED and row.error_code == "CredentialNeverDelivered"
    assert sandbox.count_videos() == 0
    assert AuditEvent.objects.get(action="upload.discarded").actor_ref is not None  # staff


def test_vod_sync_holds_off_while_a_retry_holds_the_key_and_not_after_it_died(
        api, sandbox, capsys, settings, time_passes):
    from datetime import timedelta

    from django.utils import timezone

    sandbox.faults.add(action="CreateUploadVideo", timeout=True, apply_after=True, times=1)
    create(api, key="held-1")
    time_passes()
    IdempotencyRecord.objects.update(state="running", claimed_at=timezone.now())

    sync(capsys)

    assert VideoUpload.objects.get().status == UploadStatus.REQUESTING  # a retry holds it
    assert sandbox.count_videos() == 1

    IdempotencyRecord.objects.update(
        claimed_at=timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS + 1))
    sync(capsys)

    assert VideoUpload.objects.get().error_code == "CredentialNeverDelivered"
    assert sandbox.count_videos() == 0
    assert IdempotencyRecord.objects.get().state == "interrupted"  # the next retry starts anew
