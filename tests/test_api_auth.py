"""Who may call the API: API tokens (stored hashed), sessions with CSRF, nobody else."""

import pytest
from django.test import Client
from knox.models import AuthToken
from rest_framework.test import APIClient


pytestmark = pytest.mark.django_db(transaction=True)

VIDEO = {"title": "Clip", "file_name": "clip.mp4"}


@pytest.mark.parametrize("method,path", [
    ("get", "/api/v1/videos/"), ("post", "/api/v1/videos/"),
    ("get", "/api/v1/images/"), ("post", "/api/v1/images/"),
    ("get", "/api/v1/attached-media/"), ("post", "/api/v1/attached-media/"),
    ("post", "/api/v1/videos/abc/refresh/"),
])
def test_anonymous_requests_get_401(method, path, sandbox):
    response = getattr(APIClient(), method)(path, {}, format="json")

    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Token"
    assert sandbox.calls == []


def test_a_wrong_or_expired_token_gets_401(user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token vodp_" + "0" * 64)
    assert client.get("/api/v1/videos/").status_code == 401

    instance, token = AuthToken.objects.create(user=user)
    instance.expiry = instance.created
    instance.save()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/videos/").status_code == 401


def test_tokens_are_stored_only_as_digests(user):
    _, token = AuthToken.objects.create(user=user)

    stored = AuthToken.objects.get()
    assert token.startswith("vodp_")
    assert token not in (stored.digest, stored.token_key)
    assert len(stored.digest) == 128  # SHA-512, hex


def test_session_auth_requires_the_csrf_token(user, sandbox):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(user)

    refused = browser.post("/api/v1/videos/", VIDEO, content_type="application/json")
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"]
    assert sandbox.count_calls("CreateUploadVideo") == 0

    browser.get("/admin/login/")  # any page that sets the CSRF cookie
    csrf = browser.cookies["csrftoken"].value
    accepted = browser.post("/api/v1/videos/", VIDEO, content_type="application/json",
                            HTTP_X_CSRFTOKEN=csrf)
    assert accepted.status_code == 201, accepted.content


def test_the_api_root_maps_the_api_for_anyone(client):
    """make run's banner links to /api/v1/: it answers, and every link it gives does too."""
    answer = client.get("/api/v1/")

    assert answer.status_code == 200
    links = answer.json()
    assert {"videos", "images", "attached_media", "login", "schema", "docs"} <= set(links)
    for name in ("schema", "docs"):
        assert client.get(links[name]).status_code == 200
    assert client.get(links["videos"]).status_code == 401  # there, behind authentication
