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
