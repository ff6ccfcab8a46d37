"""POST/GET /api/v1/images/ and /api/v1/attached-media/ through the real SDK."""

import base64
import json

import pytest

from uploads.models import AttachedMediaUpload, AuditEvent, ImageUpload

pytestmark = pytest.mark.django_db(transaction=True)


def b64json(value: str) -> dict:
    return json.loads(base64.b64decode(value))


def test_image_credential_is_issued_and_recorded(api, user, sandbox):
    response = api.post("/api/v1/images/", {"image_type": "cover", "image_ext": "JPG",
                                            "title": "Poster", "tags": "a,b"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert sandbox.get_image(body["image_id"]) is not None
    assert body["image_type"] == "cover" and body["image_ext"] == "jpg"
    assert body["tags"] == ["a", "b"]
    assert body["image_url"] and body["file_url"]
    assert b64json(body["upload_address"])["FileName"] == body["upload"]["object_key"]
    assert body["upload"]["access_key_id"].startswith("STS.")
    row = ImageUpload.objects.get(vod_id=body["image_id"])
    assert row.owner == user and row.image_url == body["image_url"]
    assert AuditEvent.objects.filter(action="image.credential.issued").count() == 1


def test_image_ext_follows_the_original_file_name(api):
    response = api.post("/api/v1/images/", {"image_type": "default",
                                            "original_file_name": "photo.gif"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["image_ext"] == "gif"


@pytest.mark.parametrize("ext", ["heic", "webp"])
def test_heic_and_webp_images_are_accepted(api, sandbox, ext):
    """VOD takes HEIC and WebP images (SDK 3.12.1's CreateUploadImageRequest docs)."""
    response = api.post("/api/v1/images/", {"image_type": "default",
                                            "original_file_name": f"IMG_0001.{ext.upper()}"},
                        format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["image_ext"] == ext
    assert body["upload"]["object_key"].endswith(f".{ext}")
    assert sandbox.get_image(body["image_id"])["ImageExt"] == ext


def test_an_original_file_name_without_extension_is_accepted(api, sandbox):
    """VOD's docs make OriginalFileName's extension optional; the format is ImageExt's."""
    response = api.post("/api/v1/images/", {"image_type": "cover", "image_ext": "webp",
                                            "original_file_name": "poster"}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["image_ext"] == "webp"
    assert ImageUpload.objects.get(vod_id=response.json()["image_id"]).file_name == "poster"


def test_image_ext_defaults_to_png(api):
    response = api.post("/api/v1/images/", {"image_type": "default"}, format="json")
    assert response.json()["image_ext"] == "png"


def test_attached_media_credential_is_issued_and_recorded(api, user, sandbox):
    response = api.post("/api/v1/attached-media/",
                        {"business_type": "subtitle", "file_name": "episode1.vtt",
                         "title": "Subtitles", "cate_ids": [1, 2]}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert sandbox.get_attached_media(body["media_id"]) is not None
    assert body["business_type"] == "subtitle" and body["media_ext"] == "vtt"
    assert body["cate_ids"] == "1,2"
    assert body["media_url"] and body["file_url"]
    row = AttachedMediaUpload.objects.get(vod_id=body["media_id"])
    assert row.owner == user
    assert AuditEvent.objects.filter(action="attached_media.credential.issued").count() == 1


def test_media_ext_wins_over_the_file_name(api):
    response = api.post("/api/v1/attached-media/",
                        {"business_type": "watermark", "media_ext": "png",
                         "file_name": "logo.gif"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["media_ext"] == "png"


def test_images_and_attached_media_are_private_to_their_owner(api, other_api, staff_api):
    image_id = api.post("/api/v1/images/", {"image_type": "default"},
                        format="json").json()["image_id"]
    media_id = api.post("/api/v1/attached-media/",
                        {"business_type": "material", "media_ext": "zip"},
                        format="json").json()["media_id"]

    assert other_api.get(f"/api/v1/images/{image_id}/").status_code == 404
    assert other_api.get(f"/api/v1/attached-media/{media_id}/").status_code == 404
    assert other_api.get("/api/v1/images/").json()["results"] == []
    assert api.get(f"/api/v1/images/{image_id}/").json()["image_id"] == image_id
    assert staff_api.get(f"/api/v1/attached-media/{media_id}/").status_code == 404


def test_images_have_no_refresh(api):
    image_id = api.post("/api/v1/images/", {"image_type": "default"},
                        format="json").json()["image_id"]
    assert api.post(f"/api/v1/images/{image_id}/refresh/").status_code == 404
