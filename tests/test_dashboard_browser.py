"""The service dashboard in headless Chromium: the charts render from our own static files,
with no JavaScript error and no request leaving our origin, at desktop and phone widths."""

from datetime import timedelta

import pytest
from django.db import connections
from django.utils import timezone
from playwright.sync_api import expect

from tests.browser import chromium_page, screenshot
from tests.factories import TEST_PASSWORD, UserFactory
from uploads.models import ImageUpload, UploadStatus, VideoUpload, VodEvent, VodEventStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CANVASES = ("chart-per-hour", "chart-per-day", "chart-rejected")


@pytest.fixture(autouse=True)
def orm_beside_playwright(monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls
    # happen between browser steps, never concurrently with them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def seeded():
    """A few days of uploads and refused callbacks, so every chart has bars."""
    now = timezone.now()
    for index in range(12):
        owner = UserFactory(username=f"uploader{index % 4}")
        video = VideoUpload.objects.create(owner=owner, status=UploadStatus.READY,
                                           credentials_issued=1)
        image = ImageUpload.objects.create(owner=owner, status=UploadStatus.UPLOADED,
                                           credentials_issued=1, image_type="default",
                                           image_ext="jpg")
        for model, row in ((VideoUpload, video), (ImageUpload, image)):
            model.objects.filter(pk=row.pk).update(created_at=now - timedelta(hours=5 * index))
        event = VodEvent.objects.create(status=VodEventStatus.REJECTED, reason="bad signature",
                                        fingerprint=f"{index:064d}", body="{}")
        VodEvent.objects.filter(pk=event.pk).update(received_at=now - timedelta(hours=9 * index))
    UserFactory(username="stella", is_staff=True, is_superuser=True)


@pytest.mark.parametrize(("width", "name"), [(1280, "desktop"), (390, "phone")])
def test_charts_render_from_our_origin(live_server, seeded, width, name):
    origin = live_server.url
    with chromium_page(viewport=(width, 900)) as page:
        errors, foreign = [], []
        page.on("pageerror", lambda error: errors.append(str(error)))
        # A failed load is logged without its URL: responses are checked by URL instead,
        # leaving out the favicon Chromium asks for by itself (the portal has none).
        page.on("console", lambda message: errors.append(message.text)
                if message.type == "error"
                and not message.text.startswith("Failed to load resource") else None)
        page.on("response", lambda response: errors.append(f"{response.status} {response.url}")
                if response.status >= 400 and not response.url.endswith("/favicon.ico")
                else None)
        page.on("request", lambda request: None if request.url.startswith(origin)
                or request.url.startswith("data:") else foreign.append(request.url))

        page.goto(f"{origin}/admin/login/?next=/admin/")
        page.fill("#id_username", "stella")
        page.fill("#id_password", TEST_PASSWORD)
        page.click("input[type=submit]")
        page.click("text=Service dashboard")
        expect(page).to_have_url(f"{origin}/admin/dashboard/")
        expect(page.locator("body")).to_have_attribute("data-charts", "drawn")

        for canvas_id in CANVASES:
            canvas = page.locator(f"canvas#{canvas_id}")
            expect(canvas).to_be_visible()
            box = canvas.bounding_box()
            assert box["width"] > 100 and box["height"] > 100, (canvas_id, box)
            assert box["x"] + box["width"] <= width + 1, f"{canvas_id} overflows the page"
            # Chart.js knows the canvas and drew the seeded bars (not an empty chart).
            drawn = page.evaluate(
                "id => { const chart = Chart.getChart(id); return chart ? chart.data.datasets"
                ".reduce((sum, set) => sum + set.data.reduce((a, b) => a + b, 0), 0) : -1; }",
                canvas_id)
            assert drawn > 0, canvas_id
        screenshot(page, f"admin-dashboard-{name}")

    connections.close_all()  # see test_web_upload_browser: Playwright's loop kept one open
    assert errors == []
    assert foreign == []
