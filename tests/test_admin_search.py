"""Finding anything in the staff admin: upload search, audit filters, user pages, CSV export."""

import csv
import io
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from tests.factories import UserFactory
from uploads import audit
from uploads.audit import RequestContext
from uploads.models import AuditEvent, VideoUpload, VodEvent

pytestmark = pytest.mark.django_db(transaction=True)

VIDEOS = reverse("admin:uploads_videoupload_changelist")
AUDIT = reverse("admin:uploads_auditevent_changelist")


@pytest.fixture
def videos(api, other_api):
    """Three videos: two of alice's, one of bob's. Returns the API answers by title."""
    made = {}
    for client, title, name in ((api, "Summer Holiday", "beach.mp4"),
                                (api, "Board meeting", "q3-review.MOV"),
                                (other_api, "holiday cut", "final.mp4")):
        made[title] = client.post("/api/v1/videos/", {"title": title, "file_name": name},
                                  format="json").json()
    return made


def found(client, url, **query):
    return [row for row in client.get(url, query).context["cl"].result_list]


def titles(client, term):
    return sorted(row.title for row in found(client, VIDEOS, q=term))


def test_uploads_are_found_by_title_file_name_owner_and_ids(admin_client, videos):
    assert titles(admin_client, "holiday") == ["Summer Holiday", "holiday cut"]  # any case
    assert titles(admin_client, "HOLI") == ["Summer Holiday", "holiday cut"]
    assert titles(admin_client, "q3-rev") == ["Board meeting"]  # file name
    assert titles(admin_client, ".mov") == ["Board meeting"]
    assert titles(admin_client, "alice") == ["Board meeting", "Summer Holiday"]
    assert titles(admin_client, "bob") == ["holiday cut"]
    vod_id = videos["Board meeting"]["video_id"]
    assert titles(admin_client, vod_id) == ["Board meeting"]
    assert titles(admin_client, str(VideoUpload.objects.get(vod_id=vod_id).pk)) == [
        "Board meeting"]
    assert titles(admin_client, "ho") == []  # too short to look up by substring
    assert titles(admin_client, "nothing like it") == []


def test_a_whole_file_name_finds_exactly_that_file(admin_client, api, videos):
    api.post("/api/v1/videos/", {"title": "Copy", "file_name": "old-beach.mp4"}, format="json")
    assert titles(admin_client, "beach.mp4") == ["Summer Holiday"]  # not old-beach.mp4
    assert titles(admin_client, "beach") == ["Copy", "Summer Holiday"]  # a part: substring


@pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes: PostgreSQL")
def test_substring_search_can_use_the_trigram_index(videos):
    query = VideoUpload.objects.filter(title__icontains="holiday").order_by()
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # three rows: the planner would scan
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    assert "video_title_trgm" in plan, plan


def test_audit_events_are_filtered_by_user_action_outcome_target_and_dates(admin_client,
                                                                           videos):
    vod_id = videos["holiday cut"]["video_id"]
    audit.record("vod.event.received", context=RequestContext.system("vod callback"),
                 target_kind="video", target_vod_id=vod_id, data={"event_type": "X"})
    old = audit.record("upload.synced", outcome="failure", target_kind="image",
                       target_vod_id="i" * 32)

    by_user = found(admin_client, AUDIT, user="bob")
    assert {event.action for event in by_user} == {"video.credential.issued"}
    assert {event.actor_label for event in by_user} == {"bob"}
    assert [event.action for event in found(admin_client, AUDIT, user="vod callback")] == [
        "vod.event.received"]
    assert len(found(admin_client, AUDIT, action="video.credential.issued", user="alice")) == 2
    assert [e.pk for e in found(admin_client, AUDIT, outcome__exact="failure")] == [old.pk]
    assert [e.pk for e in found(admin_client, AUDIT, target_kind="image")] == [old.pk]
    assert {e.action for e in found(admin_client, AUDIT, target=vod_id)} == {
        "video.credential.issued", "vod.event.received"}

    today = timezone.now().date()
    assert len(found(admin_client, AUDIT, created_from=str(today),
                     created_to=str(today))) == AuditEvent.objects.count()
    assert found(admin_client, AUDIT, created_from=str(today + timedelta(days=1))) == []
    assert found(admin_client, AUDIT, created_to=str(today - timedelta(days=1))) == []
    bad = admin_client.get(AUDIT, {"created_from": "yesterday"})
    assert bad.status_code == 302 and "e=1" in bad["Location"]

    page = admin_client.get(AUDIT, {"user": "bob", "action": "video.credential.issued"})
    html = page.content.decode()
    # Each text filter keeps the others when it is changed.
    assert 'name="user" value="bob"' in html
    assert '<input type="hidden" name="action" value="video.credential.issued">' in html
    titles_ = [spec.title for spec in page.context["cl"].filter_specs]
    assert {"user", "date (UTC)", "target kind", "target (VOD id or record id)"} <= set(titles_)


def test_the_user_filter_follows_the_account_or_else_the_recorded_label(admin_client, videos,
                                                                      user):
    user.username = "alice.renamed"
    user.save()
    renamed = found(admin_client, AUDIT, user="alice.renamed", action="video.credential.issued")
    assert len(renamed) == 2 and {event.actor_label for event in renamed} == {"alice"}
    # No account is called "carol" (any more): the events recorded under that label.
    gone = audit.record("upload.synced", context=RequestContext.system("carol"))
    assert [event.pk for event in found(admin_client, AUDIT, user="carol")] == [gone.pk]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="plans: PostgreSQL")
def test_a_users_events_are_read_in_the_trails_order_from_one_index(user):
    from uploads.admin_search import actor_match

    query = AuditEvent.objects.filter(actor_match(user.username)).order_by("-sequence")[:100]
    sql, params = query.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET enable_seqscan = off")  # a few rows: the planner would scan
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    # An OR of actor and label would be a bitmap of every match, then a sort.
    assert "audit_actor_seq" in plan and "Sort" not in plan, plan


def test_a_users_page_lists_their_newest_uploads_and_their_audit_events(admin_client, videos,
                                                                        user):
    page = admin_client.get(reverse("admin:auth_user_change", args=[user.pk]))
    html = page.content.decode()
    for title in ("Summer Holiday", "Board meeting"):
        upload = VideoUpload.objects.get(title=title)
        assert reverse("admin:uploads_videoupload_change", args=[upload.pk]) in html
    assert "holiday cut" not in html  # bob's
    issued = AuditEvent.objects.filter(actor=user, action="video.credential.issued").first()
    assert reverse("admin:uploads_auditevent_change", args=[issued.pk]) in html
    assert f"{AUDIT}?user=alice" in html and f"{VIDEOS}?q=alice" in html


def read_csv(response) -> list[list[str]]:
    assert response.streaming and response["Content-Type"].startswith("text/csv")
    text = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(text)))


def test_csv_export_streams_exactly_the_filtered_rows_and_is_audited(admin_client, videos):
    listing = admin_client.get(VIDEOS, {"q": "holiday"}).content.decode()
    export = reverse("admin:uploads_videoupload_export")
    assert f'href="{export}?q=holiday"' in listing

    rows = read_csv(admin_client.get(export, {"q": "holiday"}))

    header, *body = rows
    assert header[:4] == ["id", "vod_id", "owner__username", "status"]
    assert sorted(row[header.index("title")] for row in body) == ["Summer Holiday",
                                                                  "holiday cut"]
    text = "\n".join(",".join(row) for row in rows)
    for answer in videos.values():
        assert answer["upload_auth"] not in text and answer["upload_address"] not in text
    assert "SecurityToken" not in text and "AccessKeySecret" not in text
    event = AuditEvent.objects.get(action="admin.export")
    assert event.actor_label == "root" and event.outcome == "success"
    assert event.data == {"model": "uploads.videoupload", "filter": {"q": "holiday"},
                          "rows": 2, "complete": True}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="server-side cursors: PostgreSQL")
def test_csv_export_reads_its_rows_as_it_sends_them(admin_client, videos):
    response = admin_client.get(reverse("admin:uploads_videoupload_export"))
    chunks = iter(response.streaming_content)
    next(chunks), next(chunks)  # the header and the first row
    # Inside a transaction the cursor is not declared WITH HOLD, which PostgreSQL would fill
    # with every matching row before the first was sent.
    assert connection.in_atomic_block
    rest = b"".join(chunks)
    assert not connection.in_atomic_block and rest.count(b"\n") == len(videos) - 1


def test_csv_export_of_audit_and_vod_events_follows_their_filters(admin_client, videos):
    VodEvent.objects.create(body='{"EventType": "=HYPERLINK(1)"}', fingerprint="a" * 64,
                            event_type="FileUploadComplete", media_id="m" * 32,
                            status="accepted")
    VodEvent.objects.create(body="{}", fingerprint="b" * 64, event_type="TranscodeComplete",
                            media_id="n" * 32, status="rejected")
    audit_rows = read_csv(admin_client.get(reverse("admin:uploads_auditevent_export"),
                                           {"user": "bob"}))
    assert [row[3] for row in audit_rows[1:]] == ["video.credential.issued"]
    assert "hash" not in audit_rows[0] and "mac" not in audit_rows[0]

    vod_rows = read_csv(admin_client.get(reverse("admin:uploads_vodevent_export"),
                                         {"status__exact": "accepted"}))
    assert [row[5] for row in vod_rows[1:]] == ["m" * 32]
    exports = AuditEvent.objects.filter(action="admin.export").order_by("id")
    assert [(e.data["model"], e.data["rows"]) for e in exports] == [
        ("uploads.auditevent", 1), ("uploads.vodevent", 1)]
    assert exports[1].data["filter"] == {"status__exact": "accepted"}


def test_csv_cells_cannot_become_spreadsheet_formulas(admin_client, api):
    api.post("/api/v1/videos/", {"title": "=cmd|' /C calc'!A0", "file_name": "x.mp4"},
             format="json")
    [_, row] = read_csv(admin_client.get(reverse("admin:uploads_videoupload_export")))
    assert "'=cmd|' /C calc'!A0" in row


def test_csv_export_needs_view_permission(client, videos):
    client.force_login(UserFactory(is_staff=True))
    response = client.get(reverse("admin:uploads_videoupload_export"))
    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="admin.export").exists()


@pytest.mark.parametrize("page, query", [
    (VIDEOS, {"q": "beach\x00.mp4"}),
    (VIDEOS, {"status__exact": "\x00"}),
    (AUDIT, {"user": "alice\x00"}),
    (AUDIT, {"target": "\x00"}),
    (AUDIT, {"action": "upload.synced\x00"}),
    (AUDIT, {"target_kind": "\x00"}),
    (reverse("admin:uploads_vodevent_changelist"), {"event_type": "\x00"}),
    ("/api/v1/videos/", {"status": "\x00"}),
])
def test_a_nul_in_the_query_string_is_a_400_never_a_500(admin_client, videos, page, query):
    for url in {page, page.replace("/auditevent/", "/auditevent/export/").replace(
            "/videoupload/", "/videoupload/export/")}:
        answer = admin_client.get(url, query)
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_input"
    assert not AuditEvent.objects.filter(action="admin.export").exists()


def test_an_actor_filter_that_is_no_user_id_is_an_invalid_filter(admin_client):
    answer = admin_client.get(AUDIT, {"actor": "x"})
    assert answer.status_code == 302 and "e=1" in answer["Location"]
