"""Bad input gets a 400 naming the field, and VOD is never called for it."""

import pytest

from uploads.models import AuditEvent, VideoUpload

pytestmark = pytest.mark.django_db(transaction=True)

CJK = "视"  # 3 bytes in UTF-8
VIDEO = {"title": "ok", "file_name": "movie.mp4"}
IMAGE = {"image_type": "default"}
MEDIA = {"business_type": "subtitle", "media_ext": "srt"}


@pytest.mark.parametrize("path,base,changes,field", [
    ("/api/v1/videos/", VIDEO, {"title": None}, "title"),
    ("/api/v1/videos/", VIDEO, {"title": ""}, "title"),
    ("/api/v1/videos/", VIDEO, {"title": CJK * 43}, "title"),  # 43 chars, 129 bytes
    ("/api/v1/videos/", VIDEO, {"title": "a" * 129}, "title"),
    ("/api/v1/videos/", VIDEO, {"title": "party \U0001F389"}, "title"),
    ("/api/v1/videos/", VIDEO, {"title": "bell\x07"}, "title"),
    ("/api/v1/videos/", VIDEO, {"file_name": None}, "file_name"),
    ("/api/v1/videos/", VIDEO, {"file_name": "movie"}, "file_name"),
    ("/api/v1/videos/", VIDEO, {"file_name": "movie.exe"}, "file_name"),
    ("/api/v1/videos/", VIDEO, {"file_name": "../etc/movie.mp4"}, "file_name"),
    ("/api/v1/videos/", VIDEO, {"file_size": 0}, "file_size"),
    ("/api/v1/videos/", VIDEO, {"file_size": "big"}, "file_size"),
    ("/api/v1/videos/", VIDEO, {"description": "d" * 1025}, "description"),
    ("/api/v1/videos/", VIDEO, {"tags": [f"t{i}" for i in range(17)]}, "tags"),
    ("/api/v1/videos/", VIDEO, {"tags": ["x" * 33]}, "tags"),
    ("/api/v1/videos/", VIDEO, {"tags": [CJK * 11]}, "tags"),  # 33 bytes
    ("/api/v1/videos/", VIDEO, {"tags": ["a,b"]}, "tags"),
    ("/api/v1/videos/", VIDEO, {"cate_id": -1}, "cate_id"),
    ("/api/v1/videos/", VIDEO, {"cover_url": "not a url"}, "cover_url"),
    ("/api/v1/videos/", VIDEO, {"extend": {"k": "v" * 600}}, "extend"),
    ("/api/v1/videos/", VIDEO, {"extend": [1, 2]}, "extend"),
    ("/api/v1/images/", IMAGE, {"image_type": "banner"}, "image_type"),
    ("/api/v1/images/", IMAGE, {"image_type": None}, "image_type"),
    ("/api/v1/images/", IMAGE, {"image_ext": "bmp"}, "image_ext"),
    ("/api/v1/images/", IMAGE, {"original_file_name": "photo.tiff"}, "original_file_name"),
    ("/api/v1/images/", IMAGE, {"image_ext": "png", "original_file_name": "a.gif"},
     "original_file_name"),
    ("/api/v1/images/", IMAGE, {"title": "t" * 129}, "title"),
    ("/api/v1/attached-media/", MEDIA, {"business_type": "poster"}, "business_type"),
    ("/api/v1/attached-media/", MEDIA, {"media_ext": "mp4"}, "media_ext"),
    ("/api/v1/attached-media/", {"business_type": "watermark"}, {}, "media_ext"),
    ("/api/v1/attached-media/", {"business_type": "watermark", "file_name": "logo.bmp"}, {},
     "file_name"),
    ("/api/v1/attached-media/", MEDIA, {"cate_ids": [1, 2, 3, 4, 5, 6]}, "cate_ids"),
    ("/api/v1/attached-media/", MEDIA, {"tags": [f"t{i}" for i in range(17)]}, "tags"),
])
def test_invalid_field_is_named_and_vod_is_not_called(api, sandbox, path, base, changes, field):
    body = {**base, **changes}
    body = {key: value for key, value in body.items() if value is not None}

    audited = AuditEvent.objects.count()  # the token's creation, by the fixture
    response = api.post(path, body, format="json")

    assert response.status_code == 400, response.content
    error = response.json()
    assert error["code"] == "invalid_input"
    assert field in error["errors"], error
    assert field in error["detail"]
    assert error["request_id"] == response["X-Request-ID"]
    assert sandbox.calls == []
    assert not VideoUpload.objects.exists() and AuditEvent.objects.count() == audited


@pytest.mark.parametrize("title", [CJK * 42, "a" * 128, "Ünïcödé ok"])
def test_limits_are_bytes_not_characters(api, title):
    response = api.post("/api/v1/videos/", {**VIDEO, "title": title}, format="json")
    assert response.status_code == 201, response.content


def test_sixteen_tags_of_32_bytes_are_accepted(api):
    tags = [f"{i:02d}" + "x" * 30 for i in range(16)]
    response = api.post("/api/v1/videos/", {**VIDEO, "tags": tags}, format="json")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("name", ["CLIP.MOV", "song.flac", "a.b.webm", "talk.M4A"])
def test_video_and_audio_extensions_are_case_insensitive(api, name):
    response = api.post("/api/v1/videos/", {**VIDEO, "file_name": name}, format="json")
    assert response.status_code == 201, response.content


def test_malformed_json_is_a_400(api):
    response = api.post("/api/v1/videos/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"
