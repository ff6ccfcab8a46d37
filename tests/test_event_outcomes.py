"""Where each kind of VOD event leaves an upload: no-transcoding template groups, failures
with VOD's code and message, deletion as its own ended state, events applied or ignored.

Each test puts the media where VOD would have it (the sandbox), then delivers the event
signed by VOD's real algorithm; the portal confirms the state with VOD before it moves.
"""

import pytest

from tests.vod_events import deliver, upload_complete
from uploads.models import AuditEvent, VideoUpload, VodEvent

pytestmark = [pytest.mark.django_db(transaction=True),
              pytest.mark.usefixtures("vod_callback_keys")]


def issue_video(api, **fields) -> VideoUpload:
    """A video issued through the API, as its row."""
    answer = api.post("/api/v1/videos/", {"title": "t", "file_name": "t.mp4", **fields},
                      format="json")
    assert answer.status_code == 201, answer.content
    return VideoUpload.objects.get(vod_id=answer.json()["video_id"])


def record(api, video: VideoUpload) -> dict:
    return api.get(f"/api/v1/videos/{video.vod_id}/").json()


# --- template groups that do not transcode -------------------------------------------------


def test_an_uploaded_video_of_a_no_transcoding_group_is_ready(api, client, sandbox, settings):
    """VOD sends only FileUploadComplete for it and a format it cannot play as it is stays
    UploadSucc for good: waiting for TranscodeComplete would wait forever."""
    settings.VOD_TEMPLATE_GROUP_ID = "VOD_NO_TRANSCODE"
    video = issue_video(api, file_name="clip.mkv")
    sandbox.set_status(video.vod_id, "UploadSucc", Size=4096)

    deliver(client, upload_complete(video.vod_id))

    body = record(api, video)
    assert body["status"] == "ready" and body["vod_status"] == "UploadSucc"


def test_the_no_transcoding_groups_are_a_setting(api, client, sandbox, settings):
    settings.VOD_TEMPLATE_GROUP_ID = "my-store-only-group"
    settings.VOD_NO_TRANSCODE_TEMPLATE_GROUP_IDS = ["VOD_NO_TRANSCODE", "my-store-only-group"]
    video = issue_video(api)
    sandbox.set_status(video.vod_id, "UploadSucc")

    deliver(client, upload_complete(video.vod_id))

    assert record(api, video)["status"] == "ready"


def test_an_uploaded_video_of_a_transcoding_group_waits_for_its_transcoding(api, client,
                                                                           sandbox, settings):
    settings.VOD_TEMPLATE_GROUP_ID = "a-transcoding-group"
    video = issue_video(api)
    sandbox.set_status(video.vod_id, "UploadSucc")

    deliver(client, upload_complete(video.vod_id))

    assert record(api, video)["status"] == "uploaded"


def test_the_group_vod_reports_counts_when_the_portal_named_none(api, client, sandbox):
    """An upload that names no group gets the account's default one: GetVideoInfo's
    TemplateGroupId says which."""
    video = issue_video(api)
    assert video.template_group_id == ""
    sandbox.set_status(video.vod_id, "UploadSucc", TemplateGroupId="VOD_NO_TRANSCODE")

    deliver(client, upload_complete(video.vod_id))

    assert record(api, video)["status"] == "ready"


# --- failures --------------------------------------------------------------------------------


def transcode_failed(video_id: str) -> dict:
    """TranscodeComplete for a source no stream could be made from (VOD's field names)."""
    return {"EventTime": "2026-11-25T10:00:09Z", "EventType": "TranscodeComplete",
            "VideoId": video_id, "Status": "fail",
            "StreamInfos": [{"Status": "fail", "Definition": "LD",
                             "ErrorCode": "InvalidParameter.ResourceContentBad",
                             "ErrorMessage": "The resource operated InputFile is bad"}]}


def test_a_failed_transcoding_shows_vods_code_and_message(api, client, sandbox):
    video = issue_video(api)
    sandbox.set_status(video.vod_id, "TranscodeFail")

    deliver(client, transcode_failed(video.vod_id))

    body = record(api, video)
    assert body["status"] == "failed" and body["vod_status"] == "TranscodeFail"
    assert body["error"] == {"code": "InvalidParameter.ResourceContentBad",
                             "message": "The resource operated InputFile is bad"}
    event = AuditEvent.objects.get(action="vod.event.received", target_vod_id=video.vod_id)
    assert event.data["code"] == "InvalidParameter.ResourceContentBad"


def test_a_failed_stream_event_names_its_error_at_the_top(api, client, sandbox):
    video = issue_video(api)
    sandbox.set_status(video.vod_id, "TranscodeFail")

    deliver(client, {"EventType": "StreamTranscodeComplete", "VideoId": video.vod_id,
                     "Status": "fail", "Definition": "SD", "ErrorCode": "TranscodeError",
                     "ErrorMessage": "the stream could not be made"})

    assert record(api, video)["error"] == {"code": "TranscodeError",
                                           "message": "the stream could not be made"}


def test_a_failure_vod_does_not_confirm_records_nothing(api, client, sandbox):
    """The body is unsigned: its error text is kept only when VOD says the video failed."""
    video = issue_video(api)
    sandbox.set_status(video.vod_id, "Transcoding")

    deliver(client, transcode_failed(video.vod_id))

    body = record(api, video)
    assert body["status"] == "processing" and body["error"] is None


def test_a_failure_found_by_vod_sync_says_what_vods_status_means(api, sandbox):
    from django.core.management import call_command

    video = issue_video(api)
    sandbox.set_status(video.vod_id, "TranscodeFail")

    call_command("vod_sync", "--older-than", "0")

    error = record(api, video)["error"]
    assert error["code"] == "TranscodeFail" and "transcode" in error["message"]


def test_a_late_success_cannot_revive_a_failed_video_but_vods_retranscoding_does(api, client,
                                                                               sandbox):
    video = issue_video(api)
    sandbox.set_status(video.vod_id, "TranscodeFail")
    deliver(client, transcode_failed(video.vod_id))
    stream_done = {"EventType": "StreamTranscodeComplete", "VideoId": video.vod_id,
                   "Status": "success", "Definition": "LD"}

    deliver(client, stream_done)  # late or replayed: VOD still says TranscodeFail
    assert record(api, video)["status"] == "failed"

    sandbox.set_status(video.vod_id, "Transcoding")  # the source was uploaded anew
    deliver(client, {**stream_done, "Definition": "SD"})
    assert record(api, video)["status"] == "processing"


# --- deletion ----------------------------------------------------------------------------------


def ready_video(api, client, sandbox) -> VideoUpload:
    video = issue_video(api)
    sandbox.set_status(video.vod_id, "Normal", Size=4096)
    deliver(client, upload_complete(video.vod_id))
    assert record(api, video)["status"] == "ready"
    return video


def test_deleting_a_ready_video_ends_it_deleted_not_cancelled(api, client, sandbox):
    video = ready_video(api, client, sandbox)

    answer = api.delete(f"/api/v1/videos/{video.vod_id}/")

    assert answer.status_code == 200
    assert answer.json()["status"] == "deleted" and answer.json()["vod_status"] == "Deleted"
    assert sandbox.get_video(video.vod_id) is None
    event = AuditEvent.objects.get(action="upload.deleted")
    assert event.data["from"] == "ready" and event.target_vod_id == video.vod_id
    assert not AuditEvent.objects.filter(action="upload.cancelled").exists()
    assert api.delete(f"/api/v1/videos/{video.vod_id}/").json()["status"] == "deleted"
    assert sandbox.count_calls("DeleteVideo") == 1


def test_deleting_an_upload_still_to_come_cancels_it(api, sandbox):
    video = issue_video(api)

    assert api.delete(f"/api/v1/videos/{video.vod_id}/").json()["status"] == "cancelled"
    assert AuditEvent.objects.filter(action="upload.cancelled").count() == 1


def test_delete_media_complete_ends_a_video_deleted_elsewhere(api, client, sandbox):
    video = ready_video(api, client, sandbox)
    sandbox.forget(video.vod_id)  # deleted in VOD's console

    deliver(client, {"EventType": "DeleteMediaComplete", "EventTime": "2026-11-25T10:00:00Z",
                     "Status": "success", "MediaType": "video", "DeleteType": "all",
                     "MediaId": video.vod_id})

    body = record(api, video)
    assert body["status"] == "deleted" and body["vod_status"] == "Deleted"
    assert body["error"] is None


def test_deleting_only_the_source_file_leaves_the_video_as_vod_has_it(api, client, sandbox):
    video = ready_video(api, client, sandbox)

    deliver(client, {"EventType": "DeleteMediaComplete", "Status": "success",
                     "MediaType": "video", "DeleteType": "mezzanine", "MediaId": video.vod_id})

    assert record(api, video)["status"] == "ready"


def test_vod_sync_finds_a_processing_video_deleted_in_vod(api, client, sandbox):
    """Its file had reached VOD: gone now, it was deleted there, not lost on the way."""
    from django.core.management import call_command

    video = issue_video(api)
    sandbox.set_status(video.vod_id, "Transcoding")
    deliver(client, upload_complete(video.vod_id))
    sandbox.forget(video.vod_id)

    call_command("vod_sync", "--older-than", "0")

    body = record(api, video)
    assert body["status"] == "deleted" and body["error"] is None


def test_vod_sync_fails_an_upload_vod_never_got_the_file_of(api, sandbox):
    from django.core.management import call_command

    video = issue_video(api)
    sandbox.forget(video.vod_id)

    call_command("vod_sync", "--older-than", "0")

    body = record(api, video)
    assert body["status"] == "failed" and body["error"]["code"] == "NotFoundInVod"


# --- event types applied or deliberately ignored --------------------------------------------


@pytest.mark.parametrize("event_type", ["VideoAnalysisComplete", "SnapshotComplete"])
def test_events_vodportal_does_not_use_are_stored_and_deliberately_ignored(api, client, sandbox,
                                                                          event_type):
    video = issue_video(api)
    sandbox.set_status(video.vod_id, "Transcoding")

    answer = deliver(client, {"EventType": event_type, "VideoId": video.vod_id,
                              "Status": "success"})

    assert answer.status_code == 200
    stored = VodEvent.objects.get()
    assert stored.event_type == event_type and stored.reason.startswith("ignored: ")
    assert record(api, video)["status"] == "uploading"  # VOD was not even asked
    assert sandbox.count_calls("GetVideoInfos") == 0


def test_a_review_verdict_blocks_the_video(api, client, sandbox):
    video = issue_video(api)
    sandbox.set_status(video.vod_id, "Blocked")

    deliver(client, {"EventType": "CreateAuditComplete", "VideoId": video.vod_id,
                     "Status": "success"})

    assert record(api, video)["status"] == "blocked"
