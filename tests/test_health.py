"""/healthz and /readyz: fast and unauthenticated; readiness asks VOD (harmlessly) at most
once per VOD_CHECK_CACHE_SECONDS."""

import pytest

pytestmark = pytest.mark.django_db


def test_healthz_is_alive(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_readyz_checks_database_cache_credentials_and_vods_verdict_once(client, sandbox):
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "cache", "vod_credentials", "vod_configuration",
                                   "static_files"}
    asked = sandbox.count_calls()
    assert asked >= 1 and all(call["action"].startswith("Get") for call in sandbox.calls)

    assert client.get("/readyz").status_code == 200
    assert sandbox.count_calls() == asked  # the verdict is kept


def test_readyz_names_a_broken_cache(client, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:9/0"}}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["cache"]
    assert "Error" not in response.content.decode()  # details are logged, not shown


def test_readyz_names_missing_vod_credentials(client, settings):
    settings.VOD_SANDBOX_ACCESS_KEY_SECRET = ""
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["vod_credentials"]


def test_readyz_is_not_ready_with_keys_vod_refuses(client, settings):
    """Keys that resolve but VOD does not accept (the sandbox refuses the signature)."""
    settings.VOD_SANDBOX_ACCESS_KEY_SECRET = "not-the-secret-vod-knows"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["vod_configuration"]
