"""gunicorn (2 workers) + Redis + the database under test + the sandbox, as deployed.

Proves what only several processes can show: the per-user throttle and the outbound VOD
limiter hold across workers (they share Redis), the stack issues a credential end to end,
and SIGTERM lets a request in flight finish.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.conftest import SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("STACK_REDIS_URL", "redis://127.0.0.1:6379/9")
VIDEO = {"title": "Stack clip", "file_name": "clip.mp4"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def redis_or_skip():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis is not running at {REDIS_URL}")


def stack_database_url(tmp_path_factory) -> str:
    """A database of its own: PostgreSQL when the suite runs on it, else a SQLite file."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith("postgres"):
        import psycopg

        name = "vodportal_stack"
        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            connection.execute(f"CREATE DATABASE {name}")
        return url.rsplit("/", 1)[0] + f"/{name}"
    return f"sqlite:///{tmp_path_factory.mktemp('stack') / 'stack.sqlite3'}"


@pytest.fixture(scope="module")
def stack(sandbox_server, tmp_path_factory):
    """A running gunicorn with two workers; yields its URL, env, tokens and access log."""
    redis_or_skip()
    port = free_port()
    log_path = tmp_path_factory.mktemp("gunicorn") / "access.log"
    env = {
        **{key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "VOD_", "PYTEST", "ALIBABA_CLOUD_ACCESS"))},
        "DJANGO_SETTINGS_MODULE": "vodportal.settings",
        "DJANGO_SECRET_KEY": "stack-test-secret-" + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "AUDIT_KEY": "stack-test-audit-key",
        "DATABASE_URL": stack_database_url(tmp_path_factory),
        "REDIS_URL": REDIS_URL,
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        "VOD_SANDBOX": "true",
        "VOD_ENDPOINT": sandbox_server.endpoint,
        "VOD_PROTOCOL": "http",
        "VOD_SANDBOX_ACCESS_KEY_ID": SANDBOX_ACCESS_KEY_ID,
        "VOD_SANDBOX_ACCESS_KEY_SECRET": SANDBOX_ACCESS_KEY_SECRET,
        "VOD_QPS_LIMIT": "10",
        "VOD_QPS_MAX_WAIT_MS": "300",
        "API_CREDENTIAL_RATE": "5/minute",
        "API_REFRESH_RATE": "1000/minute",
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_THREADS": "8",
        "GUNICORN_GRACEFUL_TIMEOUT": "10",
        "GUNICORN_ACCESSLOG": str(log_path),
        "LOG_LEVEL": "WARNING",
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT,
                   env=env, check=True, timeout=120)
    # One user per purpose: the credential rate (5/minute) is per user.
    names = ["smoke", "limited", "sigterm", *(f"crowd{index}" for index in range(20))]
    code = ("import json; from knox.models import AuthToken; "
            "from django.contrib.auth.models import User; "
            f"print(json.dumps({{name: AuthToken.objects.create(User.objects.create("
            f"username=name))[1] for name in {names!r}}}))")
    tokens = json.loads(subprocess.run([python, "manage.py", "shell", "-v", "0", "-c", code],
                                       cwd=ROOT, env=env, check=True, capture_output=True,
                                       text=True, timeout=60).stdout)
    server = subprocess.Popen([str(Path(python).parent / "gunicorn"), "vodportal.wsgi:application",
                               "-c", "gunicorn.conf.py"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass  # still starting: workers import the application on their first request
        if time.time() > deadline or server.poll() is not None:
            server.kill()
            pytest.fail(f"gunicorn did not start: {server.stderr.read()[-2000:]}")
        time.sleep(0.2)
    yield {"url": url, "server": server, "tokens": tokens, "log": log_path}
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


@pytest.fixture(autouse=True)
def fresh_vod_window(stack):
    """Each test starts with no VOD call slots held (they last a second past each answer)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match="vodportal:vod-qps:*"):
        client.delete(key)


def post_video(stack, token_name, session=None):
    session = session or requests
    return session.post(f"{stack['url']}/api/v1/videos/", json=VIDEO, timeout=30,
                        headers={"Authorization": f"Token {stack['tokens'][token_name]}",
                                 "Connection": "close"})


def pids_in_log(stack) -> set[str]:
    return set(re.findall(r"pid=<?(\d+)", stack["log"].read_text()))


def test_the_stack_is_ready_and_issues_a_credential(stack, sandbox):
    ready = requests.get(f"{stack['url']}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    created = post_video(stack, "smoke")
    assert created.status_code == 201, created.text
    assert sandbox.get_video(created.json()["video_id"]) is not None
    assert created.headers["X-Request-ID"]


def test_the_per_user_rate_holds_across_workers(stack, sandbox):
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = [response.status_code
                    for response in pool.map(lambda _: post_video(stack, "limited"), range(24))]
    assert statuses.count(201) == 5, statuses  # API_CREDENTIAL_RATE=5/minute, per user
    assert statuses.count(429) == 19
    assert len(pids_in_log(stack)) == 2, "both workers should have served requests"


def test_the_outbound_limiter_holds_across_workers(stack, sandbox):
    sandbox.qps_limit = 10  # the "account" limit, as VOD enforces it; ours is the same
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda index: post_video(stack, f"crowd{index % 20}"),
                                  range(60)))  # 3 per user: under the per-user rate
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {201, 429}, statuses
    refusals = [response.json() for response in responses if response.status_code == 429]
    assert all(body.get("vod_code") == "QpsLimitReached" for body in refusals), [x for x in [
        (body.get("code"), body.get("vod_code")) for body in refusals] if x[1] != "QpsLimitReached"]
    assert "Throttling" not in [call.get("code") for call in sandbox.calls]
    assert statuses.count(201) >= 9


def test_sigterm_lets_the_request_in_flight_finish(stack, sandbox):
    sandbox.faults.add(action="CreateUploadVideo", latency=1.5)
    with ThreadPoolExecutor(max_workers=1) as pool:
        in_flight = pool.submit(post_video, stack, "sigterm")
        time.sleep(0.5)
        stack["server"].send_signal(signal.SIGTERM)
        response = in_flight.result(timeout=20)
    assert response.status_code == 201, response.text
    assert stack["server"].wait(timeout=20) == 0
    assert json.loads(response.text)["video_id"]
