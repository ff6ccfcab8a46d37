"""The upload page's queue and My uploads in headless Chromium: several files dropped at
once, each with its own progress, cancel and retry; automatic retries of a dropped
connection from the parts already stored; a video resumed after a reload with a fresh
credential; image thumbnails; My uploads' paging, search, status filter and row actions.

Same set-up as test_web_upload_browser.py (its fixtures): the live portal, the sandbox's
OSS side reached cross-origin by ali-oss, VOD's events delivered back to the portal.
"""

from __future__ import annotations

import base64
import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from rest_framework.test import APIClient

from tests.browser import screenshot
from tests.factories import UserFactory, VideoUploadFactory
from tests import test_web_upload_browser as upload_page_tests
from tests.test_web_upload_browser import PHONE, expect_ready, item, log_in, make_file
from tests.uploading import padded_mp4, sample
from uploads.models import ImageUpload, UploadStatus, VideoUpload
from uploads.web import LIST_SIZE

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DESKTOP = {"width": 1280, "height": 900}
# The upload page tests' fixtures: the live portal, a Chromium page that fails the test on a
# JavaScript error, short automatic retries, the ORM beside Playwright's loop.
portal = upload_page_tests.portal
page = upload_page_tests.page
quick_retries = upload_page_tests.quick_retries
orm_beside_playwright = upload_page_tests.orm_beside_playwright

# A DataTransfer holding Files made in the page from base64 bytes: what a drop hands over.
DATA_TRANSFER = """(files) => {
  const transfer = new DataTransfer();
  for (const f of files) {
    const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], f.name, { type: f.type, lastModified: 1767225600000 }));
  }
  return transfer;
}"""
KEPT = """() => Object.keys(localStorage).filter((k) => k.startsWith("vodportal.upload."))
  .map((k) => JSON.parse(localStorage.getItem(k)))"""


def operations(sandbox) -> list[str]:
    return [r["operation"] for r in sandbox.oss_requests]


def test_two_dropped_files_upload_side_by_side_each_with_its_progress(portal, page, sandbox):
    movie = padded_mp4(3 * 1024 * 1024)
    poster = sample("sample.png")
    log_in(page, portal)
    expect(page.get_by_label("Files", exact=True)).to_have_attribute("multiple", "")

    transfer = page.evaluate_handle(DATA_TRANSFER, [
        {"name": "surf.mp4", "type": "video/mp4", "data": base64.b64encode(movie).decode()},
        {"name": "poster.png", "type": "image/png", "data": base64.b64encode(poster).decode()}])
    page.dispatch_event("#dropzone", "dragenter", {"dataTransfer": transfer})
    expect(page.locator("#dropzone")).to_have_class(re.compile(r"\bdragging\b"))
    page.dispatch_event("#dropzone", "dragover", {"dataTransfer": transfer})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})

    expect(page.locator(".queue-item")).to_have_count(2)
    expect(page.locator("#dropzone")).not_to_have_class(re.compile(r"\bdragging\b"))
    expect(item(page, 0).locator(".kind-label")).to_have_text("Video or audio")
    expect(item(page, 1).locator(".kind-label")).to_have_text("Image")
    # Titles start as the file names; each is labelled for its own file.
    expect(page.get_by_label("Title").nth(0)).to_have_value("surf")
    expect(item(page, 1).locator(".title-input")).to_have_value("poster")
    # The image's preview, from an object URL that is released once drawn.
    thumb = item(page, 1).locator("img.thumb")
    expect(thumb).to_be_visible()
    expect(thumb).to_have_attribute("src", re.compile(r"^blob:"))
    assert thumb.evaluate("(img) => img.naturalWidth > 0")
    assert thumb.evaluate("async (img) => { try { await fetch(img.src); return false; } "
                          "catch { return true; } }"), "the object URL was not revoked"
    expect(page.locator("#image_type")).to_be_visible()  # an image is queued
    expect(page.locator("#start")).to_have_text("Upload 2 files")
    screenshot(page, "web-queue-dropped-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "web-queue-dropped-phone")
    page.set_viewport_size(DESKTOP)

    page.click("#start")

    expect_ready(page, 0)
    expect_ready(page, 1)
    for n in (0, 1):
        expect(item(page, n).locator("[role=progressbar]")).to_have_attribute(
            "aria-valuetext", re.compile(r"^100%, "))
    expect(page.locator("#announcer")).not_to_be_empty()
    screenshot(page, "web-queue-ready-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "web-queue-ready-phone")
    video, image = VideoUpload.objects.get(), ImageUpload.objects.get()
    assert (video.title, video.status) == ("surf", UploadStatus.READY)
    assert (image.title, image.image_ext, image.status) == ("poster", "png", UploadStatus.READY)
    assert sandbox.get_object(video.upload_object_key) == movie
    assert sandbox.get_object(image.upload_object_key) == poster
    assert page.evaluate(KEPT) == []  # nothing left to resume


def test_one_of_two_files_is_cancelled_and_the_other_completes(portal, page, sandbox, tmp_path):
    keep = make_file(tmp_path, "keep.mp4", 3 * 1024 * 1024)
    drop = make_file(tmp_path, "drop.mp4", 4 * 1024 * 1024)
    held = []

    def cancel_drop_at_its_part_3(route):
        # Cancel drop.mp4 (known by its object key) while its part 3 is on the way.
        if route.request.method == "PUT" and not held and page.evaluate(
                "(url) => document.querySelector('.queue-item[data-file-name=\"drop.mp4\"]')"
                ".dataset.objectKey.split('/').every((p) => url.includes(p))", route.request.url):
            held.append(route.request.url)
            page.evaluate("document.querySelector('.queue-item[data-file-name=\"drop.mp4\"] "
                          ".cancel').click()")
        route.continue_()

    page.route(re.compile(r"[?&]partNumber=3&"), cancel_drop_at_its_part_3)
    log_in(page, portal)
    page.set_input_files("#file", [str(keep), str(drop)])
    expect(page.locator(".queue-item")).to_have_count(2)
    page.click("#start")

    dropped = page.locator(".queue-item[data-file-name='drop.mp4']")
    expect(dropped.locator(".item-message")).to_have_text("Upload cancelled. Nothing was kept.")
    expect(dropped.locator(".item-status")).to_have_text("Cancelled")
    expect_ready(page, 0)
    assert held
    statuses = dict(VideoUpload.objects.values_list("file_name", "status"))
    assert statuses == {"keep.mp4": UploadStatus.READY, "drop.mp4": UploadStatus.CANCELLED}
    assert "AbortMultipartUpload" in operations(sandbox)
    assert operations(sandbox).count("CompleteMultipartUpload") == 1


def test_a_dropped_connection_is_retried_automatically_from_the_stored_parts(
        portal, page, sandbox, tmp_path):
    movie = make_file(tmp_path, "flaky.mp4", 6 * 1024 * 1024)  # six 1 MiB parts, 3 at a time
    dropped = []

    def drop_part_5_once(route):
        if route.request.method == "PUT" and not dropped:
            dropped.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(r"[?&]partNumber=5&"), drop_part_5_once)
    log_in(page, portal)
    page.set_input_files("#file", str(movie))
    page.click("#start")

    expect_ready(page)
    expect(item(page)).to_have_attribute("data-retries", "1")
    assert dropped
    assert sandbox.get_object(VideoUpload.objects.get().upload_object_key) == movie.read_bytes()
    # One multipart upload, resumed, not started over. The aborted PUT never reached the
    # sandbox; the resume sends part 5 and whatever was in flight beside it (the page sends
    # 3 at once, and ali-oss records no part once one has failed) or not yet started: 6 to
    # 8 PUTs in all, where starting over would make at least 10.
    assert operations(sandbox).count("InitiateMultipartUpload") == 1
    assert 6 <= operations(sandbox).count("UploadPart") <= 8
    # The credential was still good: no refresh, no click.
    assert sandbox.count_calls("RefreshUploadVideo") == 0


def test_a_video_resumes_after_a_reload_when_the_same_file_is_chosen(
        portal, page, sandbox, tmp_path):
    movie = make_file(tmp_path, "holiday.mp4", 6 * 1024 * 1024)
    held = []

    def hold_part_4(route):
        # The first try is never answered: the page is reloaded while it is on its way.
        # (Held, not unrouted: Playwright would let a held request go on unrouting.)
        if held:
            route.continue_()
        else:
            held.append(route)

    page.route(re.compile(r"[?&]partNumber=4&"), hold_part_4)
    log_in(page, portal)
    page.set_input_files("#file", str(movie))
    page.click("#start")
    page.wait_for_function(f"() => ({KEPT})().some((e) => e.checkpoint?.doneParts.length >= 3)")
    kept = page.evaluate(KEPT)[0]
    video = VideoUpload.objects.get()
    assert kept["id"] == video.vod_id and kept["fileName"] == "holiday.mp4"
    assert kept["checkpoint"]["uploadId"]
    assert "security_token" not in str(kept) and "access_key" not in str(kept).lower()

    page.on("dialog", lambda dialog: dialog.accept())  # "leave the page?"
    page.reload()

    resumable = page.locator(f"#resume-list li[data-id='{video.vod_id}']")
    expect(resumable).to_contain_text("holiday.mp4")
    expect(resumable).to_contain_text("Choose the same file again to resume.")
    screenshot(page, "web-queue-resume-desktop")
    page.set_input_files("#file", str(movie))

    expect_ready(page)
    expect(page.locator("#resume-panel")).to_be_hidden()
    assert VideoUpload.objects.get().vod_id == video.vod_id  # the same video, no new one
    assert sandbox.count_calls("RefreshUploadVideo") == 1
    assert operations(sandbox).count("InitiateMultipartUpload") == 1
    assert sandbox.get_object(video.upload_object_key) == movie.read_bytes()
    assert page.evaluate(KEPT) == []


def test_an_image_left_by_a_reload_is_offered_to_start_again(portal, page, sandbox, tmp_path):
    poster = make_file(tmp_path, "big.png", 40 * 1024, head=b"\x89PNG\r\n\x1a\n")
    held = []

    def hold_the_first_put(route):
        if held or route.request.method != "PUT":
            route.continue_()
        else:
            held.append(route)  # never answered: the page is reloaded meanwhile

    page.route(re.compile(r"/image/"), hold_the_first_put)
    log_in(page, portal)
    page.set_input_files("#file", str(poster))
    page.click("#start")
    page.wait_for_function(f"() => ({KEPT})().length === 1")
    first = ImageUpload.objects.get()

    page.on("dialog", lambda dialog: dialog.accept())
    page.reload()
    expect(page.locator("#resume-list")).to_contain_text(
        "Image uploads cannot be resumed: VOD gives them no new credential.")
    page.set_input_files("#file", str(poster))
    expect(item(page).locator(".item-message")).to_contain_text("it starts again")
    page.click("#start")

    expect_ready(page)
    second = ImageUpload.objects.exclude(pk=first.pk).get()
    assert second.status == UploadStatus.READY
    expect_status = lambda: ImageUpload.objects.get(pk=first.pk).status  # noqa: E731
    assert expect_status() == UploadStatus.CANCELLED


def test_my_uploads_pages_searches_filters_and_acts_on_rows(portal, page, sandbox):
    demo = UserFactory(username="demo")
    long_ago = timezone.now() - timedelta(days=2)
    for n in range(LIST_SIZE + 3):
        old = VideoUploadFactory(owner=demo, title=f"Archive {n:02}", status=UploadStatus.READY)
        VideoUpload.objects.filter(pk=old.pk).update(created_at=long_ago + timedelta(minutes=n))
    app = APIClient()
    app.force_authenticate(demo)
    renew, cancel = (app.post("/api/v1/videos/", {"title": title, "file_name": "app.mp4"},
                              format="json").json() for title in ("To renew", "To cancel"))
    log_in(page, portal)
    page.goto(f"{portal}/uploads/")

    rows = page.locator("#uploads tbody tr")
    expect(rows).to_have_count(LIST_SIZE)
    page.click("text=Older →")
    expect(rows).to_have_count(5)  # 30 rows in all: the 2 new ones, then Archive 27..00
    expect(rows.first).to_contain_text("Archive 04")
    expect(rows.last).to_contain_text("Archive 00")
    page.click("text=← Newer")
    expect(rows.first).to_contain_text("To cancel")

    page.get_by_label("Search title or file name").fill("archive 07")
    page.get_by_label("Search title or file name").press("Enter")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Archive 07")
    page.get_by_label("Search title or file name").fill("")
    page.get_by_label("Status").select_option("uploading")
    page.click("button:text('Search')")
    expect(rows).to_have_count(2)
    screenshot(page, "web-uploads-filtered-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "web-uploads-filtered-phone")
    page.set_viewport_size(DESKTOP)

    renew_row = page.locator(f"tr[data-id='{renew['video_id']}']")
    renew_row.get_by_role("button", name="New upload credential for To renew").click()
    expect(renew_row.locator(".row-note")).to_contain_text("It can be uploaded again")
    assert sandbox.count_calls("RefreshUploadVideo") == 1

    cancel_row = page.locator(f"tr[data-id='{cancel['video_id']}']")
    cancel_button = cancel_row.get_by_role("button", name="Cancel To cancel")
    page.once("dialog", lambda dialog: dialog.dismiss())  # changed their mind
    cancel_button.click()
    expect(cancel_row.locator(".badge")).to_have_text("Uploading")
    page.once("dialog", lambda dialog: dialog.accept())
    cancel_button.focus()  # by keyboard this time
    page.keyboard.press("Enter")
    expect(cancel_row.locator(".badge")).to_have_text("Cancelled")
    expect(cancel_row.locator(".row-note")).to_have_text("Upload cancelled.")
    expect(cancel_row.get_by_role("button")).to_have_count(0)
    assert VideoUpload.objects.get(vod_id=cancel["video_id"]).status == UploadStatus.CANCELLED
    assert VideoUpload.objects.get(vod_id=renew["video_id"]).credentials_issued == 2
