"""Redis or the database down: a 503 naming it with Retry-After, never a 500, and nothing VOD
made is lost. Real servers throughout: a private redis-server that is shut down, and a
PostgreSQL that refuses connections for a moment."""

import shutil
import subprocess
import threading

import pytest
import redis
from django.db import connection

from tests.conftest import wait_until
from tests.stack import free_port
from uploads.models import AuditEvent, ImageUpload, UploadStatus, VideoUpload
from uploads.vod import limiter

pytestmark = pytest.mark.django_db(transaction=True)

VIDEO = {"title": "Clip", "file_name": "clip.mp4"}
IMAGE = {"image_type": "default", "image_ext": "png"}
NOWHERE = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@pytest.fixture
def private_redis():
    """A redis-server of this test's own (the shared one is never stopped)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    wait_until(lambda: _answers(client), timeout=10, what="redis-server to start")
    yield url, client
    process.kill()
    process.wait(timeout=10)


def _answers(client) -> bool:
    try:
        return client.ping()
    except redis.exceptions.ConnectionError:
        return False


def when_vod_is_called(sandbox, action, then):
    """Run `then` in a thread as soon as the sandbox has received a call of `action`;
    returns a function that waits for it and raises what it raised."""
    failures = []

    def watch():
        try:
            wait_until(lambda: sandbox.count_calls(action), timeout=10, what=f"a {action} call")
            then()
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            failures.append(exc)

    thread = threading.Thread(target=watch)
    thread.start()

    def done():
        thread.join(timeout=30)
        if failures:
            raise failures[0]

    return done


def assert_names_the_dependency(answer, code):
    assert answer.status_code == 503, answer.content
    body = answer.json()
    assert body["code"] == code and body["detail"] and body["request_id"]
    assert int(answer["Retry-After"]) >= 1


def test_redis_down_in_the_throttle_is_a_503_naming_it(api, sandbox, settings):
    settings.REDIS_URL = NOWHERE

    answer = api.post("/api/v1/videos/", VIDEO, format="json")

    assert_names_the_dependency(answer, "redis_unavailable")
    assert not VideoUpload.objects.exists() and sandbox.count_calls() == 0


def test_redis_down_in_the_vod_limiter_is_a_503_and_vod_is_not_called(api, sandbox, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"credentials": None}}
    settings.REDIS_URL = NOWHERE
    settings.VOD_QPS_LIMIT = 10

    answer = api.post("/api/v1/images/", IMAGE, format="json",
                      HTTP_IDEMPOTENCY_KEY="redis-down-1")

    assert_names_the_dependency(answer, "redis_unavailable")
    # Refused before anything was written: no row, one audit event saying why.
    assert not ImageUpload.objects.exists() and sandbox.count_calls() == 0
    refusal = AuditEvent.objects.get(action="image.credential.failed")
    assert (refusal.outcome, refusal.data["code"], refusal.target_pk) == (
        "rejected", "redis_unavailable", "")
    # Nothing was created, so the key is free for the retry.
    settings.REDIS_URL = ""
    retried = api.post("/api/v1/images/", IMAGE, format="json",
                       HTTP_IDEMPOTENCY_KEY="redis-down-1")
    assert retried.status_code == 201


def test_redis_lost_after_vod_answered_keeps_the_credential(api, sandbox, settings,
                                                            private_redis):
    url, client = private_redis
    settings.REDIS_URL = url
    settings.VOD_QPS_LIMIT = 10
    limiter.clear()
    sandbox.faults.add(action="CreateUploadImage", latency=0.5)
    watcher = when_vod_is_called(sandbox, "CreateUploadImage",
                                 lambda: client.shutdown(nosave=True))

    answer = api.post("/api/v1/images/", IMAGE, format="json")
    watcher()

    assert answer.status_code == 201, answer.content
    row = ImageUpload.objects.get()
    assert row.status == UploadStatus.UPLOADING and row.vod_id == answer.json()["image_id"]
    assert sandbox.state()["images"] == [row.vod_id]


@pytest.fixture
def postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("terminating and refusing connections needs PostgreSQL")


def _postgres_admin():
    import psycopg

    # Connected to the maintenance database: PostgreSQL will not let a session refuse
    # connections to the database it is itself connected to.
    params = connection.get_connection_params()
    return psycopg.connect(**{key: value for key, value in params.items()
                              if key in ("host", "port", "user", "password")},
                           dbname="postgres", autocommit=True)


def _cut_off(admin, *, refuse_new: bool):
    """Terminate every other connection to the test database (and refuse new ones)."""
    name = connection.settings_dict["NAME"]
    if refuse_new:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  "WHERE datname = %s AND pid <> pg_backend_pid()", [name])


def test_a_connection_lost_while_vod_acts_is_reopened_and_the_row_completed(
        api, sandbox, postgres_only):
    sandbox.faults.add(action="CreateUploadVideo", latency=0.5)
    with _postgres_admin() as admin:
        watcher = when_vod_is_called(sandbox, "CreateUploadVideo",
                                     lambda: _cut_off(admin, refuse_new=False))
        answer = api.post("/api/v1/videos/", VIDEO, format="json")
        watcher()

    assert answer.status_code == 201, answer.content
    row = VideoUpload.objects.get()
    assert row.status == UploadStatus.UPLOADING and row.vod_id == answer.json()["video_id"]
    assert AuditEvent.objects.filter(action="video.credential.issued").count() == 1


def test_the_database_gone_after_vod_acted_is_a_503_and_vod_sync_recovers_the_row(
        api, sandbox, postgres_only, capsys, time_passes):
    from django.core.management import call_command

    sandbox.faults.add(action="CreateUploadVideo", latency=0.5)
    admin = _postgres_admin()
    name = connection.settings_dict["NAME"]
    try:
        watcher = when_vod_is_called(sandbox, "CreateUploadVideo",
                                     lambda: _cut_off(admin, refuse_new=True))
        answer = api.post("/api/v1/videos/", VIDEO, format="json")
        watcher()
    finally:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        admin.close()
    connection.close()

    assert_names_the_dependency(answer, "database_unavailable")
    row = VideoUpload.objects.get()
    assert row.status == UploadStatus.REQUESTING  # VOD made the video; we could not say so
    assert sandbox.count_videos() == 1

    time_passes()
    call_command("vod_sync")
    capsys.readouterr()

    row.refresh_from_db()
    assert row.vod_id and row.status == UploadStatus.FAILED
    assert row.error_code == "CredentialNeverDelivered" and sandbox.count_videos() == 0
