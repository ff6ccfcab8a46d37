"""The staff service dashboard: its figures for seeded rows, who may see it, its query count,
and the vendored Chart.js it draws with."""

import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory, staff_with
from uploads.models import (
    AttachedMediaUpload,
    ImageUpload,
    UploadStatus,
    VideoUpload,
    VodEvent,
    VodEventStatus,
)
from uploads.services import dashboard as figures

pytestmark = pytest.mark.django_db

DASHBOARD = "/admin/dashboard/"
ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "uploads" / "static" / "vendor"
VIEW_UPLOADS = ("view_videoupload", "view_imageupload", "view_attachedmediaupload")
_KIND_FIELDS = {ImageUpload: {"image_type": "default", "image_ext": "jpg"},
                AttachedMediaUpload: {"business_type": "watermark", "media_ext": "png"}}


def upload(model, owner, age: timedelta, status, *, issued=1, **fields):
    """A row created `age` ago (created_at is auto_now_add: set afterwards)."""
    row = model.objects.create(owner=owner, status=status, credentials_issued=issued,
                               **_KIND_FIELDS.get(model, {}), **fields)
    model.objects.filter(pk=row.pk).update(created_at=timezone.now() - age)
    return row


def refused(age: timedelta, reason="bad signature", status=VodEventStatus.REJECTED):
    event = VodEvent.objects.create(status=status, reason=reason, fingerprint="f" * 64, body="{}")
    VodEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - age)


@pytest.fixture
def seeded():
    """Rows chosen so that each figure counts some and leaves others out (see each test)."""
    alice, bob, carol = (UserFactory(username=name) for name in ("alice", "bob", "carol"))
    now, hour, day = timezone.now(), timedelta(hours=1), timedelta(days=1)
    rows = {
        "ready": upload(VideoUpload, alice, hour, UploadStatus.READY),
        "stuck": upload(VideoUpload, alice, 2 * hour, UploadStatus.UPLOADING,
                        credential_expires_at=now - timedelta(minutes=10)),
        "failed_create": upload(VideoUpload, bob, 3 * day, UploadStatus.FAILED, issued=0,
                                error_code="InvalidParameter"),
        "old_ready": upload(VideoUpload, bob, 40 * day, UploadStatus.READY),
        "image_uploaded": upload(ImageUpload, bob, 5 * hour, UploadStatus.UPLOADED),
        "image_failed_old": upload(ImageUpload, bob, 10 * day, UploadStatus.FAILED,
                                   error_code="TranscodeFail"),
        "attached_in_flight": upload(AttachedMediaUpload, alice, day, UploadStatus.UPLOADING,
                                     credential_expires_at=now + hour),
        "requesting": upload(VideoUpload, carol, timedelta(minutes=30), UploadStatus.REQUESTING,
                             issued=0),
        "stuck_old": upload(VideoUpload, carol, 60 * day, UploadStatus.UPLOADING,
                            credential_expires_at=now - 59 * day),
    }
    refused(hour)
    refused(2 * hour)
    refused(2 * day, reason="stale timestamp")
    refused(10 * day)  # out of the 7-day window
    refused(hour, reason="", status=VodEventStatus.ACCEPTED)  # not refused
    return {"users": (alice, bob, carol), "rows": rows}


def test_figures_for_seeded_rows(seeded):
    alice, bob, carol = seeded["users"]
    data = figures.dashboard()

    # Issued = created in the window with a credential: ready, stuck, image_uploaded and
    # attached_in_flight in 48 hours; plus image_failed_old (10 days) in 30 days.
    assert data.per_hour.total == 4
    assert {kind: sum(counts) for kind, counts in data.per_hour.by_kind.items()} == {
        "video": 2, "image": 1, "attached_media": 1}
    assert len(data.per_hour.labels) == 48 and len(data.per_day.labels) == 30
    assert data.per_day.total == 5
    assert data.per_day.by_kind["image"][-11] == 1  # ten days before today's bucket
    # image_uploaded (5 hours ago): today, or yesterday in the first hours of a UTC day.
    assert sum(data.per_day.by_kind["image"][-2:]) == 1

    # Funnel over 30 days: 7 rows created; 5 issued; 2 uploaded (ready, image_uploaded);
    # 1 ready.
    assert data.created_in_funnel_window == 7
    assert [(step.name, step.count, step.lost, step.lost_percent) for step in data.funnel] == [
        ("Credential issued", 5, 0, None), ("Uploaded", 2, 3, 60.0), ("Ready", 1, 1, 50.0)]

    assert data.failures == [("InvalidParameter", 1)]  # TranscodeFail is 10 days old
    assert data.stuck == {"video": 2, "image": 0, "attached_media": 0}
    assert data.rejected_per_day.total == 3
    assert data.rejected_reasons == [("bad signature", 2), ("stale timestamp", 1)]

    # 30 days: alice ready, stuck, attached_in_flight; bob failed_create, image_uploaded,
    # image_failed_old; carol requesting (stuck_old and old_ready are older).
    ranked = [(row["owner_id"], row["total"], row["by_kind"]) for row in data.top_uploaders]
    first_two = sorted([alice.pk, bob.pk])
    by_pk = {alice.pk: {"video": 2, "image": 0, "attached_media": 1},
             bob.pk: {"video": 1, "image": 2, "attached_media": 0}}
    assert ranked == [(first_two[0], 3, by_pk[first_two[0]]),
                      (first_two[1], 3, by_pk[first_two[1]]),
                      (carol.pk, 1, {"video": 1, "image": 0, "attached_media": 0})]


def _figure(html: str, name: str) -> str:
    return re.search(rf'data-figure="{name}">([^<]*)<', html).group(1)


def test_the_page_shows_the_figures_and_links(client, seeded):
    alice, _bob, _carol = seeded["users"]
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    response = client.get(DASHBOARD)
    assert response.status_code == 200
    html = response.content.decode()
    assert {name: _figure(html, name) for name in
            ("per-hour-total", "per-day-total", "funnel-created", "stuck-total",
             "rejected-total")} == {"per-hour-total": "4", "per-day-total": "5",
                                    "funnel-created": "7", "stuck-total": "2",
                                    "rejected-total": "3"}
    assert "furthest step its" in html  # the funnel's definition is on the page
    assert reverse("admin:auth_user_change", args=[alice.pk]) in html
    assert "<script>" not in html.replace('<script id="dashboard-charts"', "")  # CSP: no inline
    charts = json.loads(re.search(r'<script id="dashboard-charts" type="application/json">'
                                  r"(.*?)</script>", html, re.S).group(1))
    assert [dataset["label"] for dataset in charts["per_day"]["datasets"]] == [
        "Video and audio", "Images", "Attached media"]
    assert sum(sum(dataset["data"]) for dataset in charts["per_hour"]["datasets"]) == 4

    # The stuck link lists exactly the stuck videos.
    link = re.search(r'href="(/admin/uploads/videoupload/\?status__exact=uploading[^"]*)"',
                     html).group(1).replace("&amp;", "&")
    listed = client.get(link)
    assert listed.status_code == 200
    shown = set(re.findall(r'/admin/uploads/videoupload/([0-9a-f-]{36})/change/',
                           listed.content.decode()))
    rows = seeded["rows"]
    assert shown == {str(rows["stuck"].pk), str(rows["stuck_old"].pk)}

    index = client.get(reverse("admin:index")).content.decode()
    assert f'href="{DASHBOARD}"' in index and "Service dashboard" in index


def test_staff_without_the_view_permissions_are_refused(client):
    client.force_login(staff_with("view_videoupload"))  # one kind is not enough
    assert client.get(DASHBOARD).status_code == 403
    assert "Service dashboard" not in client.get(reverse("admin:index")).content.decode()

    client.force_login(staff_with(*VIEW_UPLOADS))
    assert client.get(DASHBOARD).status_code == 200


def test_non_staff_and_anonymous_go_to_the_login(client):
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    dave = UserFactory(username="dave")  # the permissions without the staff flag: no
    dave.user_permissions.set(Permission.objects.filter(codename__in=VIEW_UPLOADS))
    client.force_login(dave)
    response = client.get(DASHBOARD)
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_query_count_does_not_grow_with_rows_or_uploaders(client, django_assert_max_num_queries):
    client.force_login(staff_with(*VIEW_UPLOADS, username="viewer"))
    client.get(DASHBOARD)  # warm: content types, permission cache of this process

    def count_queries():
        with django_assert_max_num_queries(15) as captured:
            assert client.get(DASHBOARD).status_code == 200
        return len(captured)

    upload(VideoUpload, UserFactory(), timedelta(hours=1), UploadStatus.READY)
    few = count_queries()
    for _ in range(14):  # more uploaders than the top 10, of every kind
        owner = UserFactory()
        for model in (VideoUpload, ImageUpload, AttachedMediaUpload):
            upload(model, owner, timedelta(hours=3), UploadStatus.FAILED, error_code=owner.username)
        refused(timedelta(hours=2), reason=owner.username)
    assert count_queries() == few


def test_chart_js_is_vendored_pinned_and_recorded():
    pinned = json.loads((ROOT / "package.json").read_text())["dependencies"]["chart.js"]
    bundle = VENDOR / "chart.umd.min.js"
    assert f"Chart.js v{pinned}" in bundle.read_text()[:200]
    assert "sourceMappingURL" not in bundle.read_text()  # the map is not vendored
    assert "MIT License" in (VENDOR / "chart.LICENSE.txt").read_text()
    digest = hashlib.sha256(bundle.read_bytes()).hexdigest()
    readme = (ROOT / "README.md").read_text()
    assert re.search(rf"Chart\.js` {re.escape(pinned)}\b.*?sha256\s+`{digest}`", readme, re.S), \
        "record Chart.js's version and sha256 in README.md (Staff admin, Service dashboard)"
