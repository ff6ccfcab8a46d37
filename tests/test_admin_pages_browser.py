"""From a username to the full story of that user's last upload, in headless Chromium."""

import json

import pytest
from playwright.sync_api import expect

from tests.browser import chromium_page, screenshot
from tests.factories import TEST_PASSWORD, UserFactory
from uploads.models import VideoUpload, VodEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # happen between browser steps, never concurrently with them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def log_in(page, base):
    page.goto(f"{base}/admin/")
    page.fill("#id_username", "stella")
    page.fill("#id_password", TEST_PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


def test_username_to_the_story_of_their_last_upload_in_three_clicks(live_server, api):
    api.post("/api/v1/videos/", {"title": "Older clip", "file_name": "old.mp4"}, format="json")
    last = api.post("/api/v1/videos/", {"title": "Last clip", "file_name": "last.mp4"},
                    format="json").json()["video_id"]
    api.post(f"/api/v1/videos/{last}/refresh/")
    long_body = {"EventType": "FileUploadComplete", "VideoId": last,
                 "FileUrl": "https://outin.example.com/" + "x" * 300 + ".mp4"}
    VodEvent.objects.create(body=json.dumps(long_body), fingerprint="c" * 64,
                            event_type="FileUploadComplete", media_id=last, status="accepted")
    UserFactory(username="stella", is_staff=True, is_superuser=True)
    upload = VideoUpload.objects.get(vod_id=last)

    with chromium_page() as page:
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/admin/auth/user/")
        page.fill("#searchbar", "alice")
        page.press("#searchbar", "Enter")
        page.click("#result_list a:text-is('alice')")  # 1: the user's page
        newest = page.locator("table.vodp-user-uploads tbody tr").first
        expect(newest).to_contain_text("Last clip")
        screenshot(page, "admin-user-page-1280")
        newest.locator("a").click()  # 2: their last upload
        expect(page.locator("h2", has_text="Timeline")).to_be_visible()
        page.click("ul.object-tools a:text-is('Timeline')")  # 3: its story
        timeline = page.locator("#timeline")
        expect(timeline).to_be_in_viewport()
        for text in ("video.credential.issued", "video.credential.refreshed",
                     "VOD FileUploadComplete", "Upload credential:"):
            expect(timeline).to_contain_text(text)
        assert page.url.endswith(f"/admin/uploads/videoupload/{upload.pk}/change/#timeline")
        screenshot(page, "admin-upload-timeline-1280")

    with chromium_page(viewport=(390, 844)) as page:
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/admin/uploads/videoupload/{upload.pk}/change/#timeline")
        timeline = page.locator("#timeline")
        expect(timeline).to_contain_text("VOD FileUploadComplete")
        # Nothing in the timeline runs off a 390 px screen: long bodies wrap.
        widths = timeline.evaluate("element => [element.scrollWidth, element.clientWidth, "
                                   "element.getBoundingClientRect().right]")
        assert widths[0] <= widths[1] and widths[2] <= 390, widths
        body = page.locator("#timeline pre", has_text="outin.example.com").first
        assert body.evaluate("element => element.getBoundingClientRect().right") <= 390
        screenshot(page, "admin-upload-timeline-390")


def test_refresh_button_confirms_then_reports_without_the_credential(live_server, api,
                                                                    sandbox):
    answer = api.post("/api/v1/videos/", {"title": "Clip", "file_name": "c.mp4"},
                      format="json").json()
    UserFactory(username="stella", is_staff=True, is_superuser=True)
    upload = VideoUpload.objects.get(vod_id=answer["video_id"])

    with chromium_page() as page:
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/admin/uploads/videoupload/{upload.pk}/change/")
        page.click("a.vodp-button-refresh")
        expect(page.locator("#content-main")).to_contain_text("on its owner's behalf")
        assert sandbox.count_calls("RefreshUploadVideo") == 0
        page.click("input[name=confirm]")
        expect(page.locator("ul.messagelist li.success")).to_contain_text(
            "new upload credential issued, valid until")
        expect(page.locator("#timeline")).to_contain_text("admin.refresh")
        assert answer["upload_auth"] not in page.content()
        screenshot(page, "admin-upload-refreshed-1280")
    assert sandbox.count_calls("RefreshUploadVideo") == 1
