"""Launching Debian's headless Chromium through Playwright (never a downloaded browser)."""

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# Chromium's own background traffic (updates, sync, QUIC probes) would try to leave the
# machine; these flags keep it to the pages under test.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-dev-shm-usage"]


@contextmanager
def chromium_page(viewport=(1280, 900)):
    """A fresh headless Chromium page; skips when Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM} (Debian package 'chromium')"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the browser tests, never skip them
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
            page.set_default_timeout(15_000)
            yield page
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    """Save a screenshot under test-artifacts/ for a reviewer to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
