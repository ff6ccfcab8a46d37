"""Malformed input never gets a 500: each case below once did (issue 12, finding 7)."""

import json
import time

import pytest

from uploads.callbacks import signature_for
from uploads.models import VideoUpload, VodEvent

pytestmark = pytest.mark.django_db

VIDEOS = "/api/v1/videos/"
EVENTS = "/api/v1/vod/events/"
URL, KEY = "https://uploads.example.com/api/v1/vod/events/", "callbackkey0123456"


@pytest.mark.parametrize("header", ["Token vodp_\xff\xfeabc", "Token vodp_\x00abc",
                                    "Token \xe9t\xe9"])
def test_a_token_with_bytes_no_token_has_is_a_401(client, header):
    answer = client.get(VIDEOS, HTTP_AUTHORIZATION=header)
    assert answer.status_code == 401 and answer.json()["code"] == "authentication_failed"


def test_json_nested_too_deep_is_a_400(api):
    answer = api.post(VIDEOS, "[" * 100_000 + "]" * 100_000, content_type="application/json")
    assert answer.status_code == 400 and answer.json()["code"] == "parse_error"


def test_a_body_over_djangos_limit_is_a_413(api):
    body = json.dumps({"title": "a" * (3 * 1024 * 1024), "file_name": "a.mp4"})
    answer = api.post(VIDEOS, body, content_type="application/json")
    assert answer.status_code == 413 and answer.json()["code"] == "payload_too_large"
    assert not VideoUpload.objects.exists()


@pytest.mark.parametrize("field", ["file_size", "cate_id"])
def test_numbers_beyond_a_long_are_a_400_naming_the_field(api, field):
    answer = api.post(VIDEOS, {"title": "t", "file_name": "a.mp4", field: 2**70},
                      format="json")
    assert answer.status_code == 400 and field in answer.json()["errors"]


def test_category_ids_beyond_a_long_are_a_400(api):
    answer = api.post("/api/v1/attached-media/", {"business_type": "material",
                                                  "media_ext": "zip", "cate_ids": [2**70]},
                      format="json")
    assert answer.status_code == 400 and "cate_ids" in answer.json()["errors"]


@pytest.mark.parametrize("size", [3 * 1024 * 1024, 70_000])
def test_a_callback_larger_than_vods_is_refused_before_it_is_stored(client, size):
    answer = client.post(EVENTS, b"{" + b" " * size + b"}", content_type="application/json")
    assert answer.status_code == 413 and answer.json()["code"] == "payload_too_large"
    assert not VodEvent.objects.exists()


@pytest.mark.parametrize("size", ["NaN", "Infinity", "-Infinity", "1e30", str(10**30), "-5",
                                  "true", '"4096"'])
def test_a_signed_callback_with_a_senseless_size_is_applied_without_it(client, api, settings,
                                                                      sandbox, size):
    """The body's Size is never used (VOD's own answer is); nonsense in it breaks nothing."""
    settings.VOD_CALLBACK_URL, settings.VOD_CALLBACK_AUTH_KEYS = URL, [KEY]
    video_id = api.post(VIDEOS, {"title": "t", "file_name": "t.mp4"},
                        format="json").json()["video_id"]
    sandbox.set_status(video_id, "UploadSucc", Size=4096)
    body = ('{"EventType": "FileUploadComplete", "Status": "success", '
            f'"VideoId": "{video_id}", "Size": {size}}}')
    timestamp = str(int(time.time()))

    answer = client.post(EVENTS, body, content_type="application/json",
                         HTTP_X_VOD_TIMESTAMP=timestamp,
                         HTTP_X_VOD_SIGNATURE=signature_for(URL, timestamp, KEY))

    assert answer.status_code == 200 and answer.json()["code"] == "accepted"
    video = VideoUpload.objects.get()
    assert video.status == "uploaded" and video.file_size == 4096
    assert VodEvent.objects.get().status == "accepted"


@pytest.mark.parametrize("field, value", [
    ("title", "invoice\u202egnp.exe"), ("description", "a \u2066hidden\u2069 b"),
    ("tags", ["ok", "x\u202d"]), ("file_name", "clip\u202e4pm.mp4"),
])
def test_bidirectional_controls_are_refused_in_text_fields(api, field, value):
    """They make a title read unlike what it is in the admin (issue 12, finding 8)."""
    answer = api.post(VIDEOS, {"title": "t", "file_name": "a.mp4", field: value},
                      format="json")
    assert answer.status_code == 400 and field in answer.json()["errors"]


def test_a_signature_header_with_bytes_no_signature_has_is_refused(client, settings):
    settings.VOD_CALLBACK_URL, settings.VOD_CALLBACK_AUTH_KEYS = URL, [KEY]
    answer = client.post(EVENTS, "{}", content_type="application/json",
                         HTTP_X_VOD_TIMESTAMP=str(int(time.time())),
                         HTTP_X_VOD_SIGNATURE="\xff" * 32)
    assert answer.status_code == 403 and answer.json()["detail"] == "signature does not match"


def test_nul_characters_are_refused_or_stored_harmlessly(client, api, settings):
    """PostgreSQL refuses NUL in text: the API refuses it in every field (extend too), and a
    callback's body and fields are stored with it replaced (found by make fuzz-raw)."""
    extend = api.post(VIDEOS, {"title": "t", "file_name": "a.mp4", "extend": {"k": "a\x00b"}},
                      format="json")
    assert extend.status_code == 400 and "extend" in extend.json()["errors"]

    settings.VOD_CALLBACK_URL, settings.VOD_CALLBACK_AUTH_KEYS = URL, [KEY]
    timestamp = str(int(time.time()))
    signed = {"HTTP_X_VOD_TIMESTAMP": timestamp,
              "HTTP_X_VOD_SIGNATURE": signature_for(URL, timestamp, KEY)}
    fields = client.post(EVENTS, '{"EventType": "x\\u0000", "VideoId": "\\u0000"}',
                         content_type="application/json", **signed)
    raw = client.post(EVENTS, b'{"EventType": "\x00"}', content_type="application/json",
                      **signed)

    assert fields.status_code == 200 and raw.status_code == 200
    assert not any("\x00" in event.body + event.event_type + event.media_id
                   for event in VodEvent.objects.all())
