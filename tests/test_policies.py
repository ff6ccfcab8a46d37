"""Upload policies: what each user may upload, enforced at issuance (atomically) and after the
bytes land; the real SDK against the sandbox, oss2 for the uploads."""

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from tests.uploading import create, put, sample, wait_for_status
from uploads import services
from uploads.audit import RequestContext
from uploads.models import AuditEvent, UploadPolicy, UploadStatus, VideoUpload

pytestmark = pytest.mark.django_db(transaction=True)

VIDEOS = "/api/v1/videos/"


def video(api, **fields):
    return api.post(VIDEOS, {"title": "t", "file_name": "t.mp4", **fields}, format="json")


def default_policy(**limits) -> UploadPolicy:
    return UploadPolicy.objects.create(name="everyone", is_default=True, **limits)


def test_without_a_policy_nothing_is_limited(api):
    assert video(api).status_code == 201
    assert api.get("/api/v1/me/policy/").json()["policy"] is None


def test_a_kind_the_policy_leaves_out_is_refused_and_audited(api):
    default_policy(allow_video=False)

    answer = video(api)

    assert answer.status_code == 403 and answer.json()["code"] == "kind_not_allowed"
    assert not VideoUpload.objects.exists()
    refusal = AuditEvent.objects.get(action="video.credential.failed")
    assert refusal.outcome == "rejected" and refusal.data["code"] == "kind_not_allowed"


def test_only_allowed_extensions(api):
    default_policy(allowed_extensions="mp4, MOV")

    assert video(api, file_name="clip.mov").status_code == 201
    refused = video(api, file_name="clip.avi")
    assert refused.status_code == 400 and list(refused.json()["errors"]) == ["file_name"]


def test_a_size_limit_needs_a_declared_size_and_refuses_a_larger_one(api):
    default_policy(max_video_bytes=10_000)

    required = video(api)
    too_large = video(api, file_size=10_001)

    assert required.status_code == 400 and required.json()["code"] == "file_size_required"
    assert too_large.status_code == 400 and too_large.json()["code"] == "file_too_large"
    assert too_large.json()["limit"] == 10_000
    assert video(api, file_size=10_000).status_code == 201


def test_a_daily_count_quota_names_its_limit_and_reset(api):
    default_policy(daily_count=2)

    statuses = [video(api).status_code for _ in range(3)]

    assert statuses == [201, 201, 403]
    refused = video(api)
    body = refused.json()
    assert body["code"] == "quota_exceeded" and body["limit"] == 2 and body["resets_at"]
    assert int(refused["Retry-After"]) >= 1
    assert VideoUpload.objects.count() == 2


def test_bytes_quota_counts_declared_sizes_across_kinds(api):
    default_policy(monthly_bytes=10_000)

    assert video(api, file_size=6_000).status_code == 201
    assert api.post("/api/v1/attached-media/", {"business_type": "subtitle",
                                                "file_name": "a.vtt", "file_size": 5_000},
                    format="json").json()["code"] == "quota_exceeded"
    assert video(api, file_size=4_000).status_code == 201


def test_cancelled_and_expired_uploads_release_their_reservation(api, sandbox):
    default_policy(max_in_flight=1)
    first = video(api).json()
    assert video(api).json()["code"] == "quota_exceeded"

    api.delete(f"{VIDEOS}{first['video_id']}/")  # cancelled: no longer in flight
    second = video(api).json()
    assert second["status"] == "uploading"

    VideoUpload.objects.filter(vod_id=second["video_id"]).update(
        credential_expires_at=timezone.now() - timedelta(hours=2))
    call_command("vod_sync", "--older-than", "0")  # VOD still waits: the row expires
    assert VideoUpload.objects.get(vod_id=second["video_id"]).status == UploadStatus.EXPIRED
    assert video(api).status_code == 201


def test_the_policy_chooses_the_vod_settings_not_the_client(api, sandbox):
    default_policy(template_group_id="tg-policy", app_id="app-policy", cate_id=77)

    created = video(api, cate_id=5).json()

    in_vod = sandbox.get_video(created["video_id"])
    assert in_vod["TemplateGroupId"] == "tg-policy" and in_vod["AppId"] == "app-policy"
    assert in_vod["CateId"] in (77, "77")


def test_a_group_policy_wins_over_the_default_by_priority(api, user):
    default_policy(daily_count=0)
    staff_like = UploadPolicy.objects.create(name="editors", priority=10, daily_count=5)
    editors = Group.objects.create(name="editors")
    staff_like.groups.add(editors)
    user.groups.add(editors)

    assert video(api).status_code == 201
    assert api.get("/api/v1/me/policy/").json()["policy"] == "editors"


def test_my_policy_shows_limits_usage_and_what_is_left(api):
    default_policy(daily_count=5, max_video_bytes=50_000, allowed_extensions="mp4,png")
    video(api, file_size=1_000)

    body = api.get("/api/v1/me/policy/").json()

    assert body["policy"] == "everyone" and body["allowed_extensions"] == ["mp4", "png"]
    assert body["kinds"]["video"] == {"allowed": True, "max_bytes": 50_000}
    assert body["quotas"]["daily_count"]["used"] == 1
    assert body["quotas"]["daily_count"]["remaining"] == 4
    assert body["quotas"]["daily_count"]["resets_at"]
    assert body["quotas"]["monthly_bytes"]["limit"] is None


def test_concurrent_requests_at_the_edge_of_a_quota_admit_exactly_what_fits(user):
    if connection.vendor != "postgresql":
        pytest.skip("the race needs PostgreSQL: SQLite serializes every writer itself")
    default_policy(daily_count=10)

    def issue(index: int) -> str:
        try:
            services.video_issue(owner=user, title=f"race {index}", file_name="r.mp4",
                                 context=RequestContext.system("test"))
            return "issued"
        except services.PolicyRefused as refusal:
            return refusal.code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(issue, range(50)))

    assert outcomes.count("issued") == 10 and outcomes.count("quota_exceeded") == 40
    assert VideoUpload.objects.filter(owner=user).count() == 10


def test_a_file_larger_than_declared_is_deleted_in_vod_and_rejected(api, sandbox,
                                                                   live_callbacks):
    default_policy(max_video_bytes=1_000_000)
    created = create(api, "videos", title="Claims to be small", file_name="small.mp4",
                     file_size=1_000)

    put(created, sample("sample.mp4"))  # about 6 KB

    body = wait_for_status(api, f"{VIDEOS}{created['video_id']}/", "rejected", timeout=10)
    assert body["error"]["code"] == "FileTooLarge"
    assert sandbox.get_video(created["video_id"]) is None
    rejected = AuditEvent.objects.get(action="upload.rejected")
    assert rejected.data["declared_size"] == 1_000
    assert rejected.data["uploaded_size"] == len(sample("sample.mp4"))
    assert sandbox.wait_until_idle(10)


def test_a_file_within_its_declared_size_is_kept(api, sandbox, live_callbacks):
    default_policy(max_video_bytes=1_000_000)
    size = len(sample("sample.mp4"))
    created = create(api, "videos", title="Honest", file_name="honest.mp4", file_size=size)

    put(created, sample("sample.mp4"))

    assert sandbox.wait_until_idle(10)
    body = api.get(f"{VIDEOS}{created['video_id']}/").json()
    assert body["status"] == "ready"
    assert VideoUpload.objects.get(vod_id=created["video_id"]).uploaded_size == size


def test_every_change_of_a_policy_is_audited_with_before_and_after(admin_client):
    policy = default_policy(daily_count=5)
    page = f"/admin/uploads/uploadpolicy/{policy.pk}/change/"
    form = admin_client.get(page).context["adminform"].form
    data = {name: value for name, value in form.initial.items()
            if value is not None and name != "groups"}
    data.update(daily_count=7, groups=[])

    answer = admin_client.post(page, {name: ("on" if value is True else value)
                                      for name, value in data.items() if value is not False})

    assert answer.status_code == 302, answer.content[:2000]
    changed = AuditEvent.objects.get(action="policy.changed")
    assert changed.data["before"]["daily_count"] == 5
    assert changed.data["after"]["daily_count"] == 7


def test_the_schema_has_the_endpoint_and_the_policy_errors(client):
    schema = client.get("/api/v1/schema/",
                        HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    assert "get" in schema["paths"]["/api/v1/me/policy/"]
    error = schema["components"]["schemas"]["Error"]["properties"]
    assert {"limit", "resets_at"} <= set(error)
    create = schema["paths"]["/api/v1/videos/"]["post"]["responses"]
    assert "quota_exceeded" in create["403"]["description"]
    assert "file_too_large" in create["400"]["description"]


def test_vod_sync_settles_an_oversize_file_the_events_never_told_of(api, sandbox):
    default_policy(max_video_bytes=1_000_000)
    created = video(api, file_size=1_000).json()
    sandbox.set_status(created["video_id"], "UploadSucc", Size=50_000)  # no callback came

    call_command("vod_sync", "--older-than", "0")

    row = VideoUpload.objects.get(vod_id=created["video_id"])
    assert row.status == UploadStatus.REJECTED and row.uploaded_size == 50_000
    assert sandbox.get_video(created["video_id"]) is None


def test_staff_see_each_users_usage_on_the_policy_page(admin_client, api, user):
    policy = default_policy(daily_count=5)
    members = Group.objects.create(name="members")
    policy.groups.add(members)
    user.groups.add(members)
    video(api, file_size=2_048)

    page = admin_client.get(f"/admin/uploads/uploadpolicy/{policy.pk}/change/")

    assert page.status_code == 200
    assert page.context["usage_rows"] == [{"user": user.get_username(), "day_count": 1,
                                           "day_bytes": 2_048, "month_count": 1,
                                           "month_bytes": 2_048, "in_flight": 1}]
    assert "Usage of this policy" in page.content.decode()
