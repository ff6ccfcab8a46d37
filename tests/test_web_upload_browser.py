"""The upload page in headless Chromium: the browser sends the bytes straight to the sandbox's
OSS side with ali-oss (cross-origin, so through CORS) and follows the status to ready.

The page is served by pytest-django's live server, which is also where the sandbox delivers
VOD's signed event notifications, as in test_upload_lifecycle.py. Screenshots at desktop
(1280x900) and phone (390x844) widths land in test-artifacts/ for a reviewer.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import oss2
import pytest
from django.db import connections
from playwright.sync_api import expect
from rest_framework.test import APIClient

from tests.browser import chromium_page, screenshot
from tests.factories import TEST_PASSWORD, UserFactory
from tests.uploading import padded_mp4, sample
from uploads.models import ImageUpload, UploadStatus, VideoUpload
from uploads.web import RETRY_ATTEMPTS

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BUNDLE = Path(__file__).resolve().parent.parent / "uploads/static/vendor/aliyun-oss-sdk.min.js"
PHONE = {"width": 390, "height": 844}
# Long enough to see `uploaded` on the way, short enough to keep the tests quick.
TRANSCODE_DELAY = 1.0


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch):
    # The page's automatic retries wait about a second, doubling; tests need not.
    monkeypatch.setattr("uploads.web.RETRY_BASE_MS", 50)


@pytest.fixture(autouse=True)
def orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # happen between browser steps, never concurrently with them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def portal(live_server, live_callbacks, sandbox):
    """The live portal, with VOD's callbacks from the sandbox wired to it."""
    if not BUNDLE.exists():
        pytest.fail(f"{BUNDLE.name} is missing (it ships in the repository)")
    sandbox.configure(transcode_delay=TRANSCODE_DELAY)
    UserFactory(username="demo")
    return live_server.url


@pytest.fixture
def page():
    """A Chromium page that records the page's JavaScript errors."""
    with chromium_page() as page:
        page.js_errors = []
        page.on("pageerror", lambda error: page.js_errors.append(str(error)))
        yield page
        # While Playwright's loop runs, Django keeps the test's ORM calls on a connection of
        # their own (asgiref's context-local storage), which pytest-django never closes;
        # PostgreSQL would then refuse to drop the test database.
        connections.close_all()
        assert page.js_errors == []


def log_in(page, portal: str, username: str = "demo") -> None:
    page.goto(f"{portal}/upload/")
    expect(page).to_have_url(f"{portal}/accounts/login/?next=/upload/")
    page.fill("#id_username", username)
    page.fill("#id_password", TEST_PASSWORD)
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{portal}/upload/")
    # The URL changes before the page's scripts have run: files chosen earlier go unseen.
    page.wait_for_load_state()


def make_file(tmp_path: Path, name: str, size: int, head: bytes = b"") -> Path:
    """A file of `size` bytes that VOD takes for what its name says: a real MP4 grown to
    the size, else `head` and random bytes (an image type is known by its signature)."""
    path = tmp_path / name
    if name.endswith(".mp4"):
        path.write_bytes(padded_mp4(size))
    else:
        path.write_bytes(head + os.urandom(size - len(head)))
    return path


def item(page, n: int = 0):
    """The n-th file in the page's upload queue."""
    return page.locator(".queue-item").nth(n)


def choose(page, path: Path, *, kind: str = "video", title: str | None = None, **fields) -> None:
    """Fill the form as a person would: kind, file, then the fields."""
    # The radio buttons look like one segmented control: a person clicks their labels.
    page.locator("label", has=page.locator(f"input[name=kind][value={kind}]")).click()
    page.set_input_files("#file", str(path))
    if title is not None:
        item(page).locator(".title-input").fill(title)
    for field, value in fields.items():
        if field in ("image_type", "business_type"):
            page.select_option(f"#{field}", value)
        else:
            page.fill(f"#{field}", value)


def expect_ready(page, n: int = 0) -> None:
    expect(item(page, n).locator(".percent")).to_have_text("100%", timeout=20_000)
    expect(item(page, n).locator(".item-status")).to_have_text("Ready", timeout=15_000)
    expect(item(page, n).locator(".item-message")).to_contain_text("is ready in VOD")
    expect(item(page, n).locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "100")


def test_the_demo_user_uploads_a_12_mb_video_and_watches_it_become_ready(
        portal, page, sandbox, tmp_path):
    movie = make_file(tmp_path, "holiday.mp4", 12 * 1024 * 1024)
    log_in(page, portal)
    choose(page, movie, title="Holiday 2026", description="Beach, day one.", tags="holiday, beach")
    expect(page.locator("#file-hint")).to_have_text(re.compile(
        r"^VOD accepts: mp4, mov, mkv, webm, avi, mp3, m4a, wav and \d+ more\.$"))
    screenshot(page, "web-upload-form-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "web-upload-form-phone")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.click("#start")

    expect(item(page).locator(".bar")).to_be_visible()
    expect(item(page).locator(".speed")).to_contain_text("MB/s", timeout=20_000)
    expect_ready(page)
    expect(item(page).locator(".transferred")).to_have_text("12.0 MB of 12.0 MB")
    expect(item(page).locator(".steps li.done")).to_have_count(4)
    screenshot(page, "web-upload-ready-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "web-upload-ready-phone")

    video = VideoUpload.objects.get()
    assert (video.owner.username, video.title, video.status) == ("demo", "Holiday 2026",
                                                                 UploadStatus.READY)
    assert video.tags == "holiday,beach" and video.file_size == movie.stat().st_size
    assert sandbox.get_object(video.upload_object_key) == movie.read_bytes()
    operations = [r["operation"] for r in sandbox.oss_requests]
    # Multipart, straight from the browser (after its CORS preflights), never via the portal.
    assert operations.count("UploadPart") == 12 and "Options" in operations
    assert next(op for op in operations if op != "Options") == "InitiateMultipartUpload"
    assert operations[-1] == "CompleteMultipartUpload"

    page.set_viewport_size({"width": 1280, "height": 900})
    page.click("text=My uploads")
    row = page.locator(f"tr[data-id='{video.vod_id}']")
    expect(row).to_contain_text("Holiday 2026")
    expect(row.locator(".badge")).to_have_text("Ready")
    screenshot(page, "web-uploads-list-desktop")
    page.set_viewport_size(PHONE)
    screenshot(page, "web-uploads-list-phone")


def test_an_expired_video_credential_is_refreshed_and_the_upload_resumes(
        portal, page, sandbox, tmp_path):
    movie = make_file(tmp_path, "long-take.mp4", 6 * 1024 * 1024)
    expired_at = []

    def expire_before_part_4(route):
        # The credential runs out between parts: VOD's 3,000 s pass in an instant.
        if route.request.method == "PUT" and not expired_at:
            expired_at.append(sandbox.clock.advance(3001))
        route.continue_()

    page.route(re.compile(r"[?&]partNumber=4&"), expire_before_part_4)
    log_in(page, portal)
    choose(page, movie, title="Long take")
    page.click("#start")

    expect_ready(page)
    assert expired_at, "part 4 was never sent"
    refused = [r for r in sandbox.oss_requests if r["code"] == "SecurityTokenExpired"]
    # Refused at the credential, before OSS looks at the operation: a part's PUT.
    assert refused and refused[0]["method"] == "PUT"
    assert sandbox.count_calls("RefreshUploadVideo") == 1
    video = VideoUpload.objects.get()
    assert video.credentials_issued == 2 and video.status == UploadStatus.READY
    assert sandbox.get_object(video.upload_object_key) == movie.read_bytes()
    # One multipart upload, resumed: never started over.
    assert [r["operation"] for r in sandbox.oss_requests].count("InitiateMultipartUpload") == 1


def test_an_image_upload(portal, page, sandbox, tmp_path):
    poster = make_file(tmp_path, "poster.png", 40 * 1024, head=b"\x89PNG\r\n\x1a\n")
    log_in(page, portal)
    choose(page, poster, kind="image", title="Poster", image_type="cover")
    expect(page.locator("#file-hint")).to_have_text(
        "VOD accepts: png, jpg, jpeg, gif, heic, webp.")
    expect(page.locator("#file")).to_have_attribute("accept",
                                                    ".png,.jpg,.jpeg,.gif,.heic,.webp")

    page.click("#start")

    expect_ready(page)
    image = ImageUpload.objects.get()
    assert (image.image_type, image.image_ext, image.status) == ("cover", "png",
                                                                 UploadStatus.READY)
    assert sandbox.get_object(image.upload_object_key) == poster.read_bytes()
    # Under 100 KB ali-oss sends one PutObject.
    assert [r["operation"] for r in sandbox.oss_requests if r["operation"] != "Options"] == [
        "PutObject"]


def test_validation_errors_are_shown_next_to_their_fields(portal, page, sandbox, tmp_path):
    notes = make_file(tmp_path, "notes.txt", 1024)
    log_in(page, portal)
    page.set_viewport_size(PHONE)
    choose(page, notes, title="Party \N{PARTY POPPER}")

    page.click("#start")

    expect(item(page).locator(".title-error")).to_contain_text("Emoji")
    expect(item(page).locator(".file-error")).to_have_text(
        "'.txt' is not a video or audio format VOD accepts.")
    expect(item(page).locator(".item-message")).to_have_text("Please correct the marked fields.")
    expect(item(page).locator(".title-input")).to_be_focused()  # to correct it at once
    expect(item(page).locator(".bar")).to_be_hidden()
    screenshot(page, "web-upload-validation-phone")
    # Refused before VOD was asked, and nothing went to the storage.
    assert sandbox.count_calls("CreateUploadVideo") == 0 and sandbox.oss_requests == []

    item(page).locator(".title-input").fill("Party")
    page.click("#start")
    expect(item(page).locator(".title-error")).to_be_empty()
    expect(item(page).locator(".file-error")).to_contain_text("'.txt'")

    item(page).locator(".remove").click()
    expect(page.locator(".queue-item")).to_have_count(0)
    page.click("#start")
    expect(page.locator("#file-error")).to_have_text("Choose a file to upload.")


def test_cancel_aborts_the_multipart_upload_and_cancels_the_record(
        portal, page, sandbox, tmp_path):
    movie = make_file(tmp_path, "mistake.mp4", 8 * 1024 * 1024)
    held = []

    def hold_part_3(route):
        # Keep the upload running long enough to press Cancel in the middle of it.
        if route.request.method == "PUT" and not held:
            held.append(route)
            screenshot(page, "web-upload-progress-desktop")  # parts 1-2 in, part 3 held
            page.evaluate("document.querySelector('.queue-item .cancel').click()")
        route.continue_()

    page.route(re.compile(r"[?&]partNumber=3&"), hold_part_3)
    log_in(page, portal)
    choose(page, movie, title="Mistake")
    page.click("#start")

    expect(item(page).locator(".item-message")).to_have_text("Upload cancelled. Nothing was kept.")
    expect(item(page).locator(".item-status")).to_have_text("Cancelled")
    screenshot(page, "web-upload-cancelled-desktop")
    video = VideoUpload.objects.get()
    assert video.status == UploadStatus.CANCELLED
    operations = [r["operation"] for r in sandbox.oss_requests]
    assert "AbortMultipartUpload" in operations and "CompleteMultipartUpload" not in operations
    assert sandbox.get_object(video.upload_object_key) is None
    assert sandbox.get_video(video.vod_id) is None  # deleted in VOD


def test_a_second_user_cannot_see_the_first_users_uploads(portal, page, sandbox, tmp_path):
    UserFactory(username="bob")
    log_in(page, portal)
    choose(page, make_file(tmp_path, "private.mp4", 200 * 1024), title="Demo's private clip")
    page.click("#start")
    expect_ready(page)
    video_id = VideoUpload.objects.get().vod_id

    page.click("text=Log out")
    expect(page).to_have_url(f"{portal}/accounts/login/")
    log_in(page, portal, "bob")
    page.click("text=My uploads")

    expect(page.locator("main")).to_contain_text("Nothing uploaded yet")
    expect(page.locator("main")).not_to_contain_text("Demo's private clip")
    # Nor through the API with bob's session: another user's id answers 404.
    status = page.evaluate("async (url) => (await fetch(url)).status",
                           f"/api/v1/videos/{video_id}/")
    assert status == 404


def test_my_uploads_keeps_a_moving_status_live(portal, page, sandbox):
    demo = UserFactory(username="demo")
    app = APIClient()
    app.force_authenticate(demo)
    created = app.post("/api/v1/videos/", {"title": "From the phone app",
                                          "file_name": "app.mp4"}, format="json").json()
    log_in(page, portal)
    page.click("text=My uploads")
    row = page.locator(f"tr[data-id='{created['video_id']}']")
    expect(row.locator(".badge")).to_have_text("Uploading")
    expect(page.locator("#live-note")).to_be_visible()

    # Another client (an app with oss2) uploads; this page only watches.
    upload = created["upload"]
    bucket = oss2.Bucket(oss2.StsAuth(upload["access_key_id"], upload["access_key_secret"],
                                      upload["security_token"]),
                         upload["endpoint"], upload["bucket"])
    bucket.put_object(upload["object_key"], sample("sample.mp4"))

    expect(row.locator(".badge")).to_have_text("Ready", timeout=15_000)
    expect(row.locator(".size")).to_have_text(f"{len(sample('sample.mp4')) / 1024:.1f} KB")
    expect(page.locator("#live-note")).to_be_hidden()


def test_a_network_failure_is_told_in_words_and_try_again_resumes(
        portal, page, sandbox, tmp_path):
    movie = make_file(tmp_path, "flaky.mp4", 3 * 1024 * 1024)
    dropped = []

    def drop_part_2_until_the_retries_give_up(route):
        # The first try and each automatic retry: then the page says so and offers its own.
        if route.request.method == "PUT" and len(dropped) <= RETRY_ATTEMPTS:
            dropped.append(route.request.url)
            route.abort("connectionreset")
        else:
            route.continue_()

    page.route(re.compile(r"[?&]partNumber=2&"), drop_part_2_until_the_retries_give_up)
    log_in(page, portal)
    choose(page, movie, title="Flaky line")
    page.click("#start")

    expect(item(page).locator(".item-message")).to_have_text(
        "The storage could not be reached (network error or timeout). Check your connection, "
        "then try again.")
    expect(item(page)).to_have_attribute("data-retries", str(RETRY_ATTEMPTS))
    expect(item(page).locator(".retry")).to_be_visible()
    screenshot(page, "web-upload-network-error-desktop")
    item(page).locator(".retry").click()

    expect_ready(page)
    assert sandbox.get_object(VideoUpload.objects.get().upload_object_key) == movie.read_bytes()
    # Resumed (one multipart upload), with a fresh credential for the video.
    operations = [r["operation"] for r in sandbox.oss_requests]
    assert operations.count("InitiateMultipartUpload") == 1
    assert sandbox.count_calls("RefreshUploadVideo") == 1


def test_a_refused_image_credential_is_told_in_words(portal, page, sandbox, tmp_path):
    poster = make_file(tmp_path, "late.png", 2048, head=b"\x89PNG\r\n\x1a\n")
    log_in(page, portal)
    choose(page, poster, kind="image", title="Too late")

    def expire_first(route):
        # The credential runs out before the bytes go: VOD gives images no new one.
        if route.request.method == "PUT":
            sandbox.clock.advance(3001)
        route.continue_()

    page.route(re.compile(r"/image/"), expire_first)
    page.click("#start")

    message = item(page).locator(".item-message")
    expect(message).to_contain_text("The upload credential expired (request id ")
    expect(message).to_contain_text("Images and attached media get no new one: start a new upload.")
    expect(item(page).locator(".retry")).to_have_text("Start again")
    expect(item(page).locator(".cancel")).to_be_visible()
    assert ImageUpload.objects.get().status == UploadStatus.UPLOADING
