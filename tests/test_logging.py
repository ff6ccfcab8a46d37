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
