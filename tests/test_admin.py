"""The staff admin: who sees what, exact search, the refresh and sync actions, the audit."""

import re

import pytest
from django.urls import reverse

from tests.factories import staff_with
from uploads.models import AuditEvent, ImageUpload, UploadStatus, VideoUpload

pytestmark = pytest.mark.django_db(transaction=True)

VIDEOS = reverse("admin:uploads_videoupload_changelist")
AUDIT = reverse("admin:uploads_auditevent_changelist")


@pytest.fixture
def video(api):
    """A video issued through the API (so VOD and the audit trail know it)."""
    body = api.post("/api/v1/videos/", {"title": "Admin clip", "file_name": "clip.mp4"},
                    format="json").json()
    return VideoUpload.objects.get(vod_id=body["video_id"])


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def run_action(client, changelist, action, rows):
    return client.post(changelist, {"action": action,
                                    "_selected_action": [str(row.pk) for row in rows]},
                       follow=True)


def test_non_staff_users_get_nothing_from_admin(client, user):
    client.force_login(user)
    for url in (VIDEOS, AUDIT, reverse("admin:index")):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_changelist_shows_kind_details_and_finds_by_exact_vod_id_and_owner(admin_client, video,
                                                                         api, other_api):
    other = other_api.post("/api/v1/images/", {"image_type": "cover"}, format="json").json()

    page = admin_client.get(VIDEOS).content.decode()
    for text in (video.vod_id, "alice", "Admin clip", "Uploading"):
        assert text in page

    found = admin_client.get(VIDEOS, {"q": video.vod_id}).context["cl"]
    assert [row.pk for row in found.result_list] == [video.pk]
    assert admin_client.get(VIDEOS, {"q": video.vod_id[:10]}).context["cl"].result_count == 0
    assert admin_client.get(VIDEOS, {"q": "alice"}).context["cl"].result_count == 1
    assert admin_client.get(VIDEOS, {"q": "bob"}).context["cl"].result_count == 0
    images = admin_client.get(reverse("admin:uploads_imageupload_changelist"), {"q": "bob"})
    assert [row.vod_id for row in images.context["cl"].result_list] == [other["image_id"]]
    assert "cover" in images.content.decode()


def test_changelist_filters_by_status_and_time(admin_client, video):
    ready = admin_client.get(VIDEOS, {"status__exact": "ready"}).context["cl"]
    assert ready.result_count == 0
    uploading = admin_client.get(VIDEOS, {"status__exact": "uploading"}).context["cl"]
    assert uploading.result_count == 1
    filter_titles = [spec.title for spec in uploading.filter_specs]
    assert "status" in filter_titles and "created at" in filter_titles
    assert admin_client.get(VIDEOS).context["cl"].date_hierarchy is None


def test_detail_page_is_read_only_with_audit_history(admin_client, video):
    page = admin_client.get(reverse("admin:uploads_videoupload_change", args=[video.pk]))

    text = page.content.decode()
    assert page.status_code == 200
    assert "video.credential.issued" in text
    assert f"?q={video.pk}" in text  # link to all of its audit events
    assert 'name="title"' not in text  # no editable input
    assert "Save" not in text


def test_refresh_action_issues_a_new_credential_and_audits_the_staff_actor(client, video,
                                                                        sandbox):
    staff = staff_with("view_videoupload", "refresh_videoupload_credential")
    client.force_login(staff)

    response = run_action(client, VIDEOS, "refresh_credential", [video])

    [message] = messages_of(response)
    assert re.fullmatch(rf"Video {video.vod_id}: new upload credential issued, valid until "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", message), message
    assert sandbox.count_calls("RefreshUploadVideo") == 1
    event = AuditEvent.objects.get(action="admin.refresh")
    assert event.actor == staff and event.target_vod_id == video.vod_id
    video.refresh_from_db()
    assert video.credentials_issued == 2
    credential = sandbox.get_video(video.vod_id)
    assert credential is not None
    page = response.content.decode()
    assert "STS." not in page and "SecurityToken" not in page


def test_refresh_action_reports_each_row(client, video, api, sandbox):
    second_id = api.post("/api/v1/videos/", {"title": "x", "file_name": "x.mp4"},
                         format="json").json()["video_id"]
    VideoUpload.objects.filter(vod_id=second_id).update(status=UploadStatus.CANCELLED)
    cancelled = VideoUpload.objects.get(vod_id=second_id)
    staff = staff_with("view_videoupload", "refresh_videoupload_credential")
    client.force_login(staff)

    response = run_action(client, VIDEOS, "refresh_credential", [video, cancelled])

    messages = messages_of(response)
    assert any(text.startswith(f"Video {video.vod_id}: new upload credential") for text in messages)
    assert any(text.startswith(f"Video {cancelled.vod_id}: not refreshed") for text in messages)
    refused = AuditEvent.objects.get(action="upload.action.refused")
    assert refused.actor == staff and refused.target_vod_id == cancelled.vod_id
    assert refused.data["action"] == "admin.refresh" and refused.data["owner"] == "alice"


def test_actions_need_their_permissions(client, video):
    viewer = staff_with("view_videoupload", "view_imageupload")
    client.force_login(viewer)

    actions = client.get(VIDEOS).context["cl"].model_admin.get_action_choices(
        client.get(VIDEOS).wsgi_request)
    names = {name for name, _ in actions}
    assert "refresh_credential" not in names and "sync_from_vod" not in names

    refused = run_action(client, VIDEOS, "refresh_credential", [video])
    assert not AuditEvent.objects.filter(action="admin.refresh").exists()
    assert refused.status_code == 200

    syncer = staff_with("view_videoupload", "sync_videoupload")
    client.force_login(syncer)
    request = client.get(VIDEOS).wsgi_request
    names = {name for name, _ in client.get(VIDEOS).context["cl"].model_admin
             .get_action_choices(request)}
    assert "sync_from_vod" in names and "refresh_credential" not in names


def test_sync_action_reports_per_row_and_audits(client, api, sandbox):
    video_id = api.post("/api/v1/videos/", {"title": "t", "file_name": "t.mp4"},
                        format="json").json()["video_id"]
    image_id = api.post("/api/v1/images/", {"image_type": "default"},
                        format="json").json()["image_id"]
    sandbox.set_status(video_id, "Normal")
    gone = ImageUpload.objects.get(vod_id=image_id)
    sandbox.forget(image_id)
    staff = staff_with("view_videoupload", "sync_videoupload", "view_imageupload",
                       "sync_imageupload")
    client.force_login(staff)

    video_response = run_action(client, VIDEOS, "sync_from_vod",
                                [VideoUpload.objects.get(vod_id=video_id)])
    image_response = run_action(client, reverse("admin:uploads_imageupload_changelist"),
                                "sync_from_vod", [gone])

    assert messages_of(video_response) == [f"Video {video_id}: uploading → ready (VOD: Normal)"]
    assert messages_of(image_response) == [f"Image {image_id}: uploading → failed (VOD: not found)"]
    assert VideoUpload.objects.get(vod_id=video_id).status == UploadStatus.READY
    assert ImageUpload.objects.get(vod_id=image_id).error_code == "NotFoundInVod"
    synced = AuditEvent.objects.filter(action="upload.synced", actor=staff)
    assert synced.count() == 2


def test_sync_action_reports_vod_failures_per_row(client, video, sandbox):
    sandbox.faults.add(action="GetVideoInfos", code="ServiceUnAvailable")
    staff = staff_with("view_videoupload", "sync_videoupload")
    client.force_login(staff)

    response = run_action(client, VIDEOS, "sync_from_vod", [video])

    [message] = messages_of(response)
    assert message.startswith(f"Video {video.vod_id}: sync failed (ServiceUnAvailable")
    event = AuditEvent.objects.get(action="upload.synced")
    assert event.outcome == "failure" and event.actor == staff


def test_audit_admin_is_read_only_even_for_superusers(admin_client, video):
    event = AuditEvent.objects.get(action="video.credential.issued")
    change_url = reverse("admin:uploads_auditevent_change", args=[event.pk])

    assert admin_client.get(reverse("admin:uploads_auditevent_add")).status_code == 403
    assert admin_client.get(
        reverse("admin:uploads_auditevent_delete", args=[event.pk])).status_code == 403
    page = admin_client.get(change_url)
    assert page.status_code == 200 and "Save" not in page.content.decode()
    admin_client.post(change_url, {"action": "forged"})
    assert AuditEvent.objects.get(pk=event.pk).action == "video.credential.issued"
    changelist = admin_client.get(AUDIT)
    assert "delete_selected" not in changelist.content.decode()


def test_audit_admin_filters_and_searches(admin_client, video, api):
    api.post(f"/api/v1/videos/{video.vod_id}/refresh/")
    issued = AuditEvent.objects.get(action="video.credential.issued")

    by_action = admin_client.get(AUDIT, {"action": "video.credential.refreshed"}).context["cl"]
    assert [event.action for event in by_action.result_list] == ["video.credential.refreshed"]
    assert admin_client.get(AUDIT, {"outcome__exact": "failure"}).context["cl"].result_count == 0
    without_user = admin_client.get(AUDIT, {"actor": "system"}).context["cl"].result_list
    assert {event.action for event in without_user} == {"auth.token.created"}
    for term in (video.vod_id, str(video.pk), issued.request_id, issued.vod_request_id):
        assert admin_client.get(AUDIT, {"q": term}).context["cl"].result_count >= 1
    page = admin_client.get(AUDIT).content.decode()
    assert reverse("admin:uploads_videoupload_change", args=[video.pk]) in page


def test_cancel_action_deletes_in_vod_and_keeps_the_row(client, video, sandbox):
    staff = staff_with("view_videoupload", "cancel_videoupload")
    client.force_login(staff)

    response = run_action(client, VIDEOS, "cancel_uploads", [video])

    assert messages_of(response) == [f"Video {video.vod_id}: cancelled"]
    assert sandbox.get_video(video.vod_id) is None
    video.refresh_from_db()
    assert video.status == UploadStatus.CANCELLED
    assert AuditEvent.objects.get(action="upload.cancelled").actor == staff


def test_stored_vod_events_are_listed_read_only(admin_client, client):
    from uploads.models import VodEvent

    VodEvent.objects.create(body="{}", fingerprint="f" * 64, event_type="TranscodeComplete",
                            media_id="a" * 32, status="accepted")
    changelist = reverse("admin:uploads_vodevent_changelist")
    found = admin_client.get(changelist, {"event_type": "TranscodeComplete", "q": "a" * 32})
    assert found.context["cl"].result_count == 1
    assert admin_client.get(reverse("admin:uploads_vodevent_add")).status_code == 403
    event = VodEvent.objects.get()
    assert admin_client.get(
        reverse("admin:uploads_vodevent_delete", args=[event.pk])).status_code == 403


def test_every_token_is_audited_and_listed_by_id(admin_client, user):
    """knox's admin made a token for any user and showed it in a message cookie (issue 12,
    finding 6): ours shows a new token once, on a page never cached, and lists and revokes
    them by token id (tests/test_token_admin.py); every token made or revoked is audited."""
    from knox.models import AuthToken

    tokens = reverse("admin:knox_authtoken_changelist")
    token, plaintext = AuthToken.objects.create(user=user)
    created = AuditEvent.objects.get(action="auth.token.created", data__user="alice")
    assert created.data["token_id"] == token.digest[:12]
    assert plaintext not in str(created.data) and token.token_key not in str(created.data)
    listing = admin_client.get(tokens).content.decode()
    assert token.digest[:12] in listing and plaintext not in listing

    admin_client.post(tokens, {"action": "revoke_tokens",
                               "_selected_action": [token.digest[:12]]})

    assert not AuthToken.objects.filter(pk=token.pk).exists()
    revoked = AuditEvent.objects.get(action="auth.token.deleted", data__user="alice")
    assert revoked.request_id and revoked.data["token_id"] == token.digest[:12]
