"""The upload pages with Django's test client: login, CSRF, templates, only one's own uploads."""

import re

import pytest
from django.test import Client

from tests.factories import TEST_PASSWORD, UserFactory, VideoUploadFactory
from uploads.models import ImageUpload, UploadStatus, VideoUpload
from uploads.web import LIST_SIZE

pytestmark = pytest.mark.django_db

VIDEO = {"title": "Clip", "file_name": "clip.mp4", "file_size": 12_000_000}


def logged_in(username="alice", **extra) -> Client:
    """A browser-like client (CSRF checks on) logged in through the login page."""
    UserFactory(username=username, **extra)
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/accounts/login/")
    response = browser.post("/accounts/login/", {
        "username": username, "password": TEST_PASSWORD,
        "csrfmiddlewaretoken": page.context["csrf_token"]})
    assert response.status_code == 302 and response["Location"] == "/upload/"
    return browser


def csrf_token(page) -> str:
    return re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.content).group(1).decode()


@pytest.mark.parametrize("path", ["/upload/", "/uploads/"])
def test_pages_ask_for_a_login(path):
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={path}"


def test_the_root_leads_to_the_upload_page():
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"] == "/upload/"


def test_login_page_renders_and_refuses_a_wrong_password():
    UserFactory(username="alice")
    browser = Client()
    page = browser.get("/accounts/login/?next=/uploads/")
    assert page.status_code == 200
    assert b'name="next" value="/uploads/"' in page.content

    refused = browser.post("/accounts/login/", {"username": "alice", "password": "nope"})
    assert refused.status_code == 200
    assert b"Please enter a correct username and password" in refused.content

    accepted = browser.post("/accounts/login/", {"username": "alice", "password": TEST_PASSWORD,
                                                 "next": "/uploads/"})
    assert accepted.status_code == 302 and accepted["Location"] == "/uploads/"


def test_login_needs_the_csrf_token():
    UserFactory(username="alice")
    browser = Client(enforce_csrf_checks=True)
    response = browser.post("/accounts/login/", {"username": "alice", "password": TEST_PASSWORD})
    assert response.status_code == 403


def test_upload_page_renders_the_form_and_its_scripts():
    page = logged_in().get("/upload/")

    assert page.status_code == 200
    html = page.content.decode()
    for element in ('id="upload-form"', 'name="kind" value="video"', 'name="kind" value="image"',
                    'name="kind" value="attached-media"', 'name="kind" value="auto" checked',
                    'id="dropzone"', 'id="queue"', 'class="title-input"', 'id="description"',
                    'id="tags"', 'id="image_type"', 'id="business_type"', 'type="file"',
                    'multiple', 'class="error title-error"', 'id="file-error"',
                    'role="progressbar"', 'class="danger cancel"', 'aria-live="polite"',
                    'id="resume-panel"', "/static/vendor/aliyun-oss-sdk.min.js",
                    "/static/uploads/common.js", "/static/uploads/transfer.js",
                    "/static/uploads/queue.js", "/static/uploads/upload.js",
                    'name="csrfmiddlewaretoken"', 'id="upload-config"'):
        assert element in html, element
    config = page.context["config"]
    assert config["kinds"]["video"]["api"] == "/api/v1/videos/"
    assert config["kinds"]["attached-media"]["idField"] == "media_id"
    assert config["statuses"]["ready"] == "Ready"
    assert "mp4" in config["kinds"]["video"]["extensions"]
    # Each dropped file's kind comes from its extension; images win over watermarks.
    assert config["detect"]["mov"] == ["video", None]
    assert config["detect"]["png"] == ["image", None]
    assert config["detect"]["srt"] == ["attached-media", "subtitle"]
    assert config["detect"]["zip"] == ["attached-media", "material"]
    assert config["retry"]["attempts"] >= 1 and config["user"] == page.context["user"].pk


def test_logout_is_a_post_with_the_csrf_token():
    browser = logged_in()
    page = browser.get("/upload/")
    assert browser.get("/accounts/logout/").status_code == 405

    response = browser.post("/accounts/logout/", {"csrfmiddlewaretoken": csrf_token(page)})
    assert response.status_code == 302 and response["Location"] == "/accounts/login/"
    assert browser.get("/upload/").status_code == 302


def test_the_pages_session_may_ask_for_a_credential_with_the_csrf_header(sandbox):
    browser = logged_in()
    token = csrf_token(browser.get("/upload/"))

    refused = browser.post("/api/v1/videos/", VIDEO, content_type="application/json")
    assert refused.status_code == 403

    issued = browser.post("/api/v1/videos/", VIDEO, content_type="application/json",
                          HTTP_X_CSRFTOKEN=token)
    assert issued.status_code == 201
    assert issued.json()["upload"]["security_token"]
    assert sandbox.count_calls("CreateUploadVideo") == 1


def test_uploads_page_lists_only_ones_own_uploads():
    browser = logged_in("alice")
    alice = UserFactory(username="alice")
    bob = UserFactory(username="bob")
    mine = VideoUploadFactory(owner=alice, title="Alice on holiday",
                              status=UploadStatus.PROCESSING, file_size=12_000_000)
    ImageUpload.objects.create(owner=alice, vod_id="a" * 32, image_type="cover",
                               image_ext="png", status=UploadStatus.READY,
                               file_name="poster.png")
    theirs = VideoUploadFactory(owner=bob, title="Bob's secret")

    page = browser.get("/uploads/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "Alice on holiday" in html and mine.vod_id in html
    assert "poster.png" in html and "Ready" in html
    assert "Bob's secret" not in html and theirs.vod_id not in html
    assert [row["upload"].vod_id for row in page.context["rows"]] == ["a" * 32, mine.vod_id]
    # Still moving: the page's script keeps it live; a settled one is left alone.
    assert f'data-id="{mine.vod_id}"\n        data-live' in html
    assert "11.4\xa0MB" in html


def test_staff_see_only_their_own_uploads_here_too():
    browser = logged_in("stella", is_staff=True)
    VideoUploadFactory(owner=UserFactory(username="bob"), title="Bob's clip")

    html = browser.get("/uploads/").content.decode()
    assert "Bob's clip" not in html and "Nothing uploaded yet" in html


def test_the_upload_page_never_carries_a_credential(sandbox):
    browser = logged_in()
    token = csrf_token(browser.get("/upload/"))
    issued = browser.post("/api/v1/videos/", VIDEO, content_type="application/json",
                          HTTP_X_CSRFTOKEN=token).json()

    for path in ("/upload/", "/uploads/"):
        html = browser.get(path).content.decode()
        assert issued["upload"]["access_key_secret"] not in html
        assert issued["upload"]["security_token"] not in html


@pytest.mark.parametrize("path", ["/", "/upload/", "/accounts/login/", "/admin/login/",
                                  "/api/v1/docs/"])
def test_every_page_has_a_content_security_policy(client, path, user):
    """Scripts only from our own static files, no inline ones (issue 12, finding 8): the
    upload page holds an STS credential in memory."""
    client.force_login(user)
    page = client.get(path, follow=True)

    policy = dict(part.strip().split(" ", 1) for part in
                  page["Content-Security-Policy"].split(";") if part.strip())
    assert policy["script-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'" and "https://*.aliyuncs.com" in policy["connect-src"]
    inline = re.findall(rb"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>",
                        page.content)
    assert inline == [], inline


def _videos(owner, count, **fields):
    """`count` videos created a minute apart, the last one newest."""
    from datetime import timedelta

    from django.utils import timezone

    start = timezone.now() - timedelta(days=1)
    made = []
    for n in range(count):
        video = VideoUploadFactory(owner=owner, **fields)
        VideoUpload.objects.filter(pk=video.pk).update(created_at=start + timedelta(minutes=n))
        made.append(video)
    return made


def test_my_uploads_pages_through_every_row_once_both_ways():
    browser = logged_in("alice")
    alice = UserFactory(username="alice")
    videos = _videos(alice, LIST_SIZE + 7, status=UploadStatus.READY)
    newest_first = [v.vod_id for v in reversed(videos)]

    first = browser.get("/uploads/")
    assert [r["upload"].vod_id for r in first.context["rows"]] == newest_first[:LIST_SIZE]
    assert first.context["newer_url"] == "" and "after=" in first.context["older_url"]

    second = browser.get(first.context["older_url"])
    assert [r["upload"].vod_id for r in second.context["rows"]] == newest_first[LIST_SIZE:]
    assert second.context["older_url"] == "" and "before=" in second.context["newer_url"]

    back = browser.get(second.context["newer_url"])
    assert [r["upload"].vod_id for r in back.context["rows"]] == newest_first[:LIST_SIZE]
    assert back.context["newer_url"] == ""


def test_my_uploads_pages_across_kinds_with_the_same_creation_time():
    browser = logged_in("alice")
    alice = UserFactory(username="alice")
    videos = _videos(alice, LIST_SIZE)
    same_time = videos[-1].created_at
    VideoUpload.objects.update(created_at=same_time)
    image = ImageUpload.objects.create(owner=alice, vod_id="b" * 32, image_type="cover",
                                       image_ext="png", status=UploadStatus.READY)
    ImageUpload.objects.filter(pk=image.pk).update(created_at=same_time)

    first = browser.get("/uploads/")
    second = browser.get(first.context["older_url"])
    seen = [r["upload"].vod_id for page in (first, second) for r in page.context["rows"]]
    assert sorted(seen) == sorted([v.vod_id for v in videos] + [image.vod_id])


def test_my_uploads_searches_title_and_file_name_and_filters_by_status():
    browser = logged_in("alice")
    alice = UserFactory(username="alice")
    VideoUploadFactory(owner=alice, title="Beach day", status=UploadStatus.READY)
    VideoUploadFactory(owner=alice, title="Mountains", file_name="BEACH-raw.mp4",
                       status=UploadStatus.FAILED)
    VideoUploadFactory(owner=alice, title="City", status=UploadStatus.READY)
    VideoUploadFactory(owner=UserFactory(username="bob"), title="Bob's beach")

    titles = lambda page: sorted(r["upload"].title for r in page.context["rows"])  # noqa: E731
    assert titles(browser.get("/uploads/?q=beach")) == ["Beach day", "Mountains"]
    assert titles(browser.get("/uploads/?q=beach&status=ready")) == ["Beach day"]
    assert titles(browser.get("/uploads/?status=failed")) == ["Mountains"]
    # An unknown status is ignored rather than refused: the page shows everything.
    assert len(browser.get("/uploads/?status=bogus").context["rows"]) == 3
    nothing = browser.get("/uploads/?q=nowhere").content.decode()
    assert "No uploads match “nowhere”" in nothing and "Show all uploads" in nothing
