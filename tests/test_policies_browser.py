"""The upload page shows the caller's upload policy and refuses a file it does not allow
before asking for a credential (headless Chromium)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import test_web_upload_browser as upload_page_tests
from tests.browser import screenshot
from tests.test_web_upload_browser import expect_ready, item, log_in, make_file
from uploads.models import UploadPolicy, VideoUpload

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The upload page tests' fixtures (see tests/test_web_queue_browser.py).
portal = upload_page_tests.portal
page = upload_page_tests.page
orm_beside_playwright = upload_page_tests.orm_beside_playwright


def test_the_page_shows_the_policy_and_refuses_a_file_too_large_without_asking(
        portal, page, tmp_path):
    UploadPolicy.objects.create(name="trial", is_default=True, max_video_bytes=100_000,
                                daily_count=5)
    requests = []
    page.on("request", lambda request: requests.append((request.method, request.url)))
    log_in(page, portal)

    note = page.locator("#policy-note")
    expect(note).to_contain_text("trial")
    expect(note).to_contain_text("5 of 5 uploads today left")
    page.set_input_files("#file", str(make_file(tmp_path, "big.mp4", 300_000)))
    page.click("#start")

    expect(item(page).locator(".item-message")).to_contain_text("your upload policy allows",
                                                                timeout=5_000)
    assert not [url for method, url in requests if method == "POST" and "/api/v1/videos/" in url]
    assert not VideoUpload.objects.exists()
    screenshot(page, "upload-policy-refused-desktop")

    page.set_input_files("#file", str(make_file(tmp_path, "small.mp4", 50_000)))
    page.click("#start")
    expect_ready(page, n=1)  # within the policy: it goes
