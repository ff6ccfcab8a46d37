"""A staff member refreshes a video's credential in the admin, in headless Chromium."""

import pytest
from playwright.sync_api import expect

from tests.browser import chromium_page, screenshot
from tests.factories import TEST_PASSWORD, UserFactory
from uploads.models import AuditEvent

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # happen between browser steps, never concurrently with them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_staff_refreshes_a_credential_and_sees_the_audit_event(live_server, api, sandbox):
    video_id = api.post("/api/v1/videos/", {"title": "Browser clip", "file_name": "clip.mp4"},
                        format="json").json()["video_id"]
    UserFactory(username="stella", is_staff=True, is_superuser=True)

    with chromium_page() as page:
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", "stella")
        page.fill("#id_password", TEST_PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#site-name")

        page.goto(f"{live_server.url}/admin/uploads/videoupload/")
        page.fill("#searchbar", video_id)
        page.press("#searchbar", "Enter")
        page.wait_for_load_state()
        rows = page.locator("#result_list tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text(video_id)

        rows.first.locator("input.action-select").check()
        page.select_option("select[name=action]", "refresh_credential")
        page.click("button[name=index]")
        success = page.locator("ul.messagelist li.success")
        expect(success).to_contain_text(f"Video {video_id}: new upload credential issued, valid until")
        screenshot(page, "admin-refresh-success")

        page.click(f"#result_list a:text('{video_id}')")
        history = page.locator("table.audit-history")
        expect(history).to_contain_text("admin.refresh")
        expect(history).to_contain_text("stella")
        screenshot(page, "admin-video-audit-history")

    event = AuditEvent.objects.get(action="admin.refresh")
    assert event.target_vod_id == video_id and event.actor_label == "stella"
    assert sandbox.count_calls("RefreshUploadVideo") == 1
