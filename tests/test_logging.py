"""Logs are JSON lines carrying the request id."""

import io
import json
import logging

import pytest
from django.conf import settings
from pythonjsonlogger.json import JsonFormatter

from uploads.middleware import RequestIdLogFilter

pytestmark = pytest.mark.django_db(transaction=True)


def test_log_lines_are_json_with_the_request_id(api, settings, sandbox):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    config = settings.LOGGING["formatters"]["json"]
    handler.setFormatter(JsonFormatter(config["fmt"], rename_fields=config["rename_fields"]))
    handler.addFilter(RequestIdLogFilter())
    logger = logging.getLogger("uploads")
    logger.addHandler(handler)
    sandbox.faults.add(action="CreateUploadVideo", code="Throttling")
    try:
        api.post("/api/v1/videos/", {"title": "t", "file_name": "t.mp4"}, format="json",
                 HTTP_X_REQUEST_ID="trace-123")
    finally:
        logger.removeHandler(handler)

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    failure = next(line for line in lines if "CreateUploadVideo failed" in line["message"])
    assert failure["request_id"] == "trace-123"
    assert failure["level"] == "WARNING" and failure["logger"] == "uploads.vod"


def test_production_settings_log_json():
    assert settings.LOGGING["formatters"]["json"]["()"] == "pythonjsonlogger.json.JsonFormatter"


@pytest.mark.parametrize("path, status", [("/api/v1/videos/nope/", 404),
                                          ("/api/v1/videos/?status=bogus", 400)])
def test_djangos_own_error_lines_carry_the_request_id(api, path, status):
    """django.request logs a 4xx/5xx after the middleware returned, outside its context."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s [%(request_id)s] %(message)s"))
    handler.addFilter(RequestIdLogFilter())
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    try:
        answer = api.get(path, HTTP_X_REQUEST_ID="trace-456")
    finally:
        logger.removeHandler(handler)

    assert answer.status_code == status
    assert "django.request [trace-456]" in stream.getvalue()
