"""One upload, one page: the timeline of its audit and VOD events, and its buttons."""

import json

import pytest
from django.test import Client
from django.urls import NoReverseMatch, reverse

from tests.factories import UserFactory, staff_with
from uploads import audit
from uploads.audit import RequestContext
from uploads.models import AuditEvent, ImageUpload, UploadStatus, VideoUpload, VodEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def issued(api):
    """The API's answer for a new video (holds the secret upload credential)."""
    return api.post("/api/v1/videos/", {"title": "Timeline clip", "file_name": "clip.mp4"},
                    format="json").json()


@pytest.fixture
def video(issued):
    return VideoUpload.objects.get(vod_id=issued["video_id"])


def page_of(video):
    return reverse("admin:uploads_videoupload_change", args=[video.pk])


def button_url(video, name, model="videoupload"):
    return reverse(f"admin:uploads_{model}_{name}", args=[video.pk])


def messages_of(response):
    return [str(message) for message in response.context["messages"]]


def test_timeline_merges_audit_and_vod_events_in_time_order(client, api, video, issued):
    api.post(f"/api/v1/videos/{video.vod_id}/refresh/")
    body = {"EventType": "FileUploadComplete", "VideoId": video.vod_id, "Size": 1,
            "Note": "<script>alert(1)</script>"}
    note = VodEvent.objects.create(body=json.dumps(body), fingerprint="f" * 64,
                                   event_type="FileUploadComplete", media_id=video.vod_id,
                                   status="accepted", client_ip="10.1.2.3")
    received = audit.record("vod.event.received", context=RequestContext.system("vod callback"),
                            target_kind="video", target_vod_id=video.vod_id,
                            data={"event_type": "FileUploadComplete", "changed": True})
    # Another media's events must not appear.
    audit.record("upload.synced", target_kind="video", target_vod_id="f" * 32)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.get(page_of(video))

    entries = response.context["timeline"]
    whats = [entry.what for entry in entries]
    assert whats == ["video.credential.issued", "video.credential.refreshed",
                     "VOD FileUploadComplete", "vod.event.received: FileUploadComplete"]
    assert [entry.at for entry in entries] == sorted(entry.at for entry in entries)
    issued_event = AuditEvent.objects.get(action="video.credential.issued")
    first = entries[0]
    assert first.outcome == "success" and first.actor == "alice"
    assert first.vod_request_id == issued_event.vod_request_id
    assert first.url == reverse("admin:uploads_auditevent_change", args=[issued_event.pk])
    assert entries[2].url == reverse("admin:uploads_vodevent_change", args=[note.pk])
    assert entries[2].outcome == "accepted" and "10.1.2.3" in entries[2].actor
    assert entries[3].url.endswith(f"/{received.pk}/change/")
    assert '"EventType": "FileUploadComplete"' in entries[2].body  # indented JSON
    assert "\n  " in entries[2].body
    html = response.content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
    assert "vod.event.received: FileUploadComplete" in html
    assert "Upload credential:</strong> Expires" in html
    for secret in (issued["upload_auth"], "SecurityToken", "AccessKeySecret"):
        assert secret not in html


def test_vod_event_rows_link_to_their_upload(admin_client, video):
    VodEvent.objects.create(body="{}", fingerprint="e" * 64, event_type="FileUploadComplete",
                            media_id=video.vod_id, status="accepted")
    VodEvent.objects.create(body="{}", fingerprint="d" * 64, media_id="0" * 32, status="accepted")
    listing = admin_client.get(reverse("admin:uploads_vodevent_changelist")).content.decode()
    link = reverse("admin:uploads_vodevent_upload", args=[video.vod_id])
    assert link in listing

    assert admin_client.get(link)["Location"] == page_of(video)
    unknown = admin_client.get(reverse("admin:uploads_vodevent_upload", args=["0" * 32]),
                               follow=True)
    assert messages_of(unknown) == [f"No upload has the VOD id {'0' * 32}."]


def test_buttons_show_only_what_the_staff_member_may_do(client, video):
    client.force_login(staff_with("view_videoupload", "sync_videoupload"))
    html = client.get(page_of(video)).content.decode()
    assert button_url(video, "sync") in html
    assert button_url(video, "refresh") not in html and button_url(video, "remove") not in html


def test_refresh_asks_for_confirmation_then_refreshes_on_the_owners_behalf(client, video,
                                                                          sandbox, issued):
    staff = staff_with("view_videoupload", "refresh_videoupload_credential")
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(staff)

    confirm = csrf_client.get(button_url(video, "refresh"))
    assert confirm.status_code == 200 and sandbox.count_calls("RefreshUploadVideo") == 0
    html = confirm.content.decode()
    assert 'name="confirm"' in html and "csrfmiddlewaretoken" in html and "alice" in html
    assert csrf_client.post(button_url(video, "refresh")).status_code == 403  # no CSRF token
    assert sandbox.count_calls("RefreshUploadVideo") == 0

    token = confirm.context["csrf_token"]
    done = csrf_client.post(button_url(video, "refresh"), {"csrfmiddlewaretoken": str(token)},
                            follow=True)

    assert done.redirect_chain[-1][0] == page_of(video)
    [message] = messages_of(done)
    assert message.startswith(f"Video {video.vod_id}: new upload credential issued, valid until")
    assert sandbox.count_calls("RefreshUploadVideo") == 1
    event = AuditEvent.objects.get(action="admin.refresh")
    assert event.actor == staff and event.data["owner"] == "alice"
    html = done.content.decode()
    assert "admin.refresh" in html  # on the timeline
    assert issued["upload_auth"] not in html and "SecurityToken" not in html


def test_refused_buttons_are_shown_and_audited(client, video, sandbox):
    viewer = staff_with("view_videoupload")
    client.force_login(viewer)

    confirm = client.get(button_url(video, "remove")).content.decode()
    assert "uploads.cancel_videoupload" in confirm and 'name="confirm"' not in confirm
    assert not AuditEvent.objects.filter(action="upload.action.refused").exists()  # a look

    for name, permission in (("refresh", "uploads.refresh_videoupload_credential"),
                             ("sync", "uploads.sync_videoupload"),
                             ("remove", "uploads.cancel_videoupload")):
        response = client.post(button_url(video, name), follow=True)
        [message] = messages_of(response)
        assert message.startswith(f"Video {video.vod_id}: not done: ")
        assert permission in message
        refused = AuditEvent.objects.get(action="upload.action.refused",
                                         data__action=f"admin.{name}")
        assert refused.outcome == "rejected" and refused.actor == viewer
        assert refused.data == {"action": f"admin.{name}", "reason": "permission",
                                "permission": permission, "owner": "alice"}
        assert refused.target_vod_id == video.vod_id
    for action in ("RefreshUploadVideo", "GetVideoInfos", "DeleteVideo"):
        assert sandbox.count_calls(action) == 0
    video.refresh_from_db()
    assert video.status == UploadStatus.UPLOADING and video.credentials_issued == 1


def test_no_view_permission_no_buttons(client, video):
    client.force_login(staff_with("cancel_videoupload"))
    assert client.post(button_url(video, "remove")).status_code == 403
    assert not AuditEvent.objects.filter(action__startswith="upload.cancel").exists()


def test_sync_and_remove_buttons_act_and_are_audited(client, video, sandbox):
    staff = staff_with("view_videoupload", "sync_videoupload", "cancel_videoupload")
    client.force_login(staff)
    sandbox.set_status(video.vod_id, "Normal")

    synced = client.post(button_url(video, "sync"), follow=True)
    assert messages_of(synced) == [f"Video {video.vod_id}: uploading → ready (VOD: Normal)"]
    assert AuditEvent.objects.get(action="upload.synced").actor == staff

    removed = client.post(button_url(video, "remove"), follow=True)
    assert messages_of(removed) == [f"Video {video.vod_id}: deleted"]
    assert sandbox.get_video(video.vod_id) is None
    assert AuditEvent.objects.get(action="upload.deleted").actor == staff
    html = removed.content.decode()
    assert "upload.deleted" in html and "upload.synced" in html  # the story goes on


def test_images_have_sync_and_remove_but_no_refresh(admin_client, api):
    image_id = api.post("/api/v1/images/", {"image_type": "cover"}, format="json").json()["image_id"]
    image = ImageUpload.objects.get(vod_id=image_id)
    html = admin_client.get(reverse("admin:uploads_imageupload_change", args=[image.pk]))
    assert "image.credential.issued" in html.content.decode()
    assert button_url(image, "sync", "imageupload") in html.content.decode()
    with pytest.raises(NoReverseMatch):
        reverse("admin:uploads_imageupload_refresh", args=[image.pk])


