"""The OpenAPI document and its interactive page (served locally, no CDN)."""

import re

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(client):
    response = client.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_every_operation_documents_the_error_shape(schema):
    assert "Error" in schema["components"]["schemas"]
    operations = [(path, method, op) for path, item in schema["paths"].items()
                  for method, op in item.items() if method in ("get", "post", "delete")]
    assert len(operations) >= 12
    for path, method, op in operations:
        errors = [code for code in op["responses"] if code.startswith(("4", "5"))]
        assert errors, f"{method} {path} documents no error"
        for code in errors:
            ref = op["responses"][code]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith("/Error"), (method, path, code)


def test_create_answers_are_described_with_the_credential(schema):
    created = schema["paths"]["/api/v1/videos/"]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    properties = schema["components"]["schemas"][ref]["properties"]
    assert {"video_id", "upload_address", "upload_auth", "upload"} <= set(properties)
    assert "429" in schema["paths"]["/api/v1/videos/{video_id}/refresh/"]["post"]["responses"]
    request = schema["paths"]["/api/v1/videos/"]["post"]["requestBody"]
    assert request["required"] is True


def test_docs_page_loads_its_assets_from_this_server():
    page = Client().get("/api/v1/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert any("swagger-ui" in source for source in sources)
    assert all(source.startswith("/") for source in sources), sources
    assert "cdn" not in html.lower()


@pytest.mark.parametrize("collection, parameter, operations", [
    ("/api/v1/videos/", "video_id", {"videos_retrieve", "videos_destroy",
                                     "videos_refresh_create"}),
    ("/api/v1/images/", "image_id", {"images_retrieve", "images_destroy"}),
    ("/api/v1/attached-media/", "media_id", {"attached_media_retrieve",
                                             "attached_media_destroy"}),
])
def test_a_create_links_its_issued_id_to_the_operations_on_it(schema, collection, parameter,
                                                               operations):
    links = schema["paths"][collection]["post"]["responses"]["201"]["links"]
    assert set(links) == operations
    created = schema["paths"][collection]["post"]["responses"]["201"]
    ref = created["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    assert parameter in schema["components"]["schemas"][ref]["properties"]
    for operation_id, link in links.items():
        assert link == {"operationId": operation_id,
                        "parameters": {parameter: f"$response.body#/{parameter}"}}


def test_the_video_file_name_pattern_agrees_with_the_validation(schema):
    from uploads import validation
    from uploads.api.serializers import VIDEO_FILE_NAME_PATTERN

    ref = (schema["paths"]["/api/v1/videos/"]["post"]["requestBody"]["content"]
           ["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1])
    documented = schema["components"]["schemas"][ref]["properties"]["file_name"]
    assert documented["pattern"] == VIDEO_FILE_NAME_PATTERN
    pattern = re.compile(VIDEO_FILE_NAME_PATTERN)
    names = ["movie.mp4", "MOVIE.MP4", "Clip.MoV", "song.flac", "a b.webm", "视频.mkv",
             "a/b.mp4", "a\\b.mp4", "x.exe", "x.mp4.exe", "noext", ".mp4x", "bell\x07.mp4",
             "c1\x85.mp4"]
    for name in names:
        try:
            validation.check_video_file_name(name)
            accepted = True
        except validation.InvalidValue:
            accepted = False
        assert bool(pattern.match(name)) == accepted, name
