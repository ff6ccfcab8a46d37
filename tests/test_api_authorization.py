"""Who may do what to an upload through the API: the admin's rules, not the staff flag.

Every action (list, retrieve, refresh, cancel) on another user's upload, for: its owner,
another user, staff with no permissions, staff with each permission, and a superuser.
The refresh is the dangerous one: it hands out a credential that can overwrite the video.
"""

import pytest
from django.contrib.auth.models import Permission

from tests.conftest import _token_client
from tests.factories import UserFactory
from uploads.models import AuditEvent, UploadStatus

pytestmark = pytest.mark.django_db

VIDEOS = "/api/v1/videos/"
IMAGES = "/api/v1/images/"


def person(*codenames, staff=True, superuser=False):
    account = UserFactory(is_staff=staff or superuser, is_superuser=superuser)
    account.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return _token_client(account)


@pytest.fixture
def owned(api):
    """A video and an image of `alice`'s."""
    video = api.post(VIDEOS, {"title": "Mine", "file_name": "mine.mp4"},
                     format="json").json()["video_id"]
    image = api.post(IMAGES, {"image_type": "default"}, format="json").json()["image_id"]
    return {"video": video, "image": image}


def act(client, action, owned):
    """Do one action to alice's video; the HTTP status."""
    video = owned["video"]
    if action == "list":
        found = {item["video_id"] for item in client.get(VIDEOS).json()["results"]}
        return 200 if video in found else 404
    if action == "retrieve":
        return client.get(f"{VIDEOS}{video}/").status_code
    if action == "refresh":
        return client.post(f"{VIDEOS}{video}/refresh/").status_code
    return client.delete(f"{VIDEOS}{video}/").status_code


VIEW = ("view_videoupload",)
# (who, permissions, is staff, is superuser) -> status per action
WHO = {
    "another user": ((), False, False, {"list": 404, "retrieve": 404, "refresh": 404,
                                        "destroy": 404}),
    "staff, no permissions": ((), True, False, {"list": 404, "retrieve": 404, "refresh": 404,
                                                "destroy": 404}),
    "a non-staff user holding every permission": (
        ("view_videoupload", "refresh_videoupload_credential", "cancel_videoupload"), False,
        False, {"list": 404, "retrieve": 404, "refresh": 404, "destroy": 404}),
    "staff, view": (VIEW, True, False, {"list": 200, "retrieve": 200, "refresh": 403,
                                        "destroy": 403}),
    "staff, view + refresh": ((*VIEW, "refresh_videoupload_credential"), True, False,
                              {"list": 200, "retrieve": 200, "refresh": 200, "destroy": 403}),
    "staff, view + cancel": ((*VIEW, "cancel_videoupload"), True, False,
                             {"list": 200, "retrieve": 200, "refresh": 403, "destroy": 200}),
    "staff, refresh without view": (("refresh_videoupload_credential",), True, False,
                                    {"list": 404, "retrieve": 404, "refresh": 404,
                                     "destroy": 404}),
    "superuser": ((), True, True, {"list": 200, "retrieve": 200, "refresh": 200,
                                   "destroy": 200}),
}


@pytest.mark.parametrize("action", ["list", "retrieve", "refresh", "destroy"])
@pytest.mark.parametrize("who", WHO)
def test_others_uploads_need_the_admins_permissions(who, action, owned, sandbox):
    codenames, staff, superuser, expected = WHO[who]
    client = person(*codenames, staff=staff, superuser=superuser)

    assert act(client, action, owned) == expected[action]

    if expected[action] == 403:
        refusal = AuditEvent.objects.get(action="upload.access.refused")
        assert refusal.outcome == "rejected" and refusal.target_vod_id == owned["video"]
        assert refusal.data == {"action": action, "owner": "alice"}
    else:
        assert not AuditEvent.objects.filter(action="upload.access.refused").exists()


@pytest.mark.parametrize("action", ["list", "retrieve", "refresh", "destroy"])
def test_the_owner_may_do_everything(action, api, owned, sandbox):
    assert act(api, action, owned) == 200


def test_a_credential_for_someone_elses_video_is_audited_with_both_users(owned, sandbox):
    helper = person(*VIEW, "refresh_videoupload_credential")

    answer = helper.post(f"{VIDEOS}{owned['video']}/refresh/")

    assert answer.status_code == 200 and answer.json()["upload"]["security_token"]
    event = AuditEvent.objects.get(action="video.credential.refreshed")
    assert event.actor_label != "alice" and event.data["owner"] == "alice"


def test_cancelling_someone_elses_upload_is_audited_with_both_users(owned, sandbox):
    helper = person("view_imageupload", "cancel_imageupload")

    assert helper.delete(f"{IMAGES}{owned['image']}/").json()["status"] == UploadStatus.CANCELLED

    event = AuditEvent.objects.get(action="upload.cancelled")
    assert event.data["owner"] == "alice"
    assert sandbox.count_images() == 0


def test_a_video_permission_gives_nothing_on_images(owned, sandbox):
    helper = person(*VIEW, "refresh_videoupload_credential", "cancel_videoupload")
    assert helper.get(f"{IMAGES}{owned['image']}/").status_code == 404
    assert helper.delete(f"{IMAGES}{owned['image']}/").status_code == 404
