"""gunicorn (2 workers) + Redis + the database under test + the sandbox, as deployed.

Proves what only several processes can show: the per-user throttle and the outbound VOD
limiter hold across workers and hosts (they share Redis), the stack issues a credential end
to end, and SIGTERM lets a request in flight finish.
"""

import json
import os
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET
from tests.stack import fresh_database_url, start_portal, start_sibling

REDIS_URL = os.environ.get("STACK_REDIS_URL", "redis://127.0.0.1:6379/9")
VIDEO = {"title": "Stack clip", "file_name": "clip.mp4"}


def redis_or_skip():
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    except redis.exceptions.ConnectionError:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"Redis is not running at {REDIS_URL}")


@pytest.fixture(scope="module")
def stack(sandbox_server, tmp_path_factory):
    """A running gunicorn with two workers sharing Redis, and a second gunicorn (another
    host) serving the same database and Redis."""
    redis_or_skip()
    workdir = tmp_path_factory.mktemp("stack")
    portal = start_portal(
        sandbox_endpoint=sandbox_server.endpoint, access_key_id=SANDBOX_ACCESS_KEY_ID,
        access_key_secret=SANDBOX_ACCESS_KEY_SECRET,
        database_url=fresh_database_url(os.environ.get("DATABASE_URL", ""),
                                        "vodportal_stack", workdir),
        workdir=workdir,
        # One user per purpose: the credential rate (5/minute) is per user.
        users=["smoke", "limited", "sigterm", *(f"crowd{index}" for index in range(20))],
        # VOD_QPS_MARGIN_MS: the sandbox shares this test's process, and two cores with four
        # gunicorn workers: its arrivals were measured trailing our sends by up to 100 ms.
        # VOD_QPS_BURST: the whole window at once, as the crowd test expects (pacing has its
        # own tests, tests/test_throttles.py).
        extra_env={"REDIS_URL": REDIS_URL, "VOD_QPS_LIMIT": "10", "VOD_QPS_MARGIN_MS": "200",
                   "VOD_QPS_BURST": "10",
                   "VOD_QPS_MAX_WAIT_MS": "300", "API_CREDENTIAL_RATE": "5/minute",
                   "API_REFRESH_RATE": "1000/minute"})
    sibling = start_sibling(portal, workdir=tmp_path_factory.mktemp("sibling"))
    yield {"url": portal.url, "server": portal.process, "tokens": portal.tokens,
           "log": portal.access_log, "sibling_url": sibling.url,
           "sibling_log": sibling.access_log}
    sibling.stop()
    portal.stop()


@pytest.fixture(autouse=True)
def fresh_vod_window(stack):
    """Each test starts with no VOD call slots held (they last a second past each answer)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(match="vodportal:vod-qps:*"):
        client.delete(key)


def post_video(stack, token_name, session=None, url=None):
    session = session or requests
    return session.post(f"{url or stack['url']}/api/v1/videos/", json=VIDEO, timeout=30,
                        headers={"Authorization": f"Token {stack['tokens'][token_name]}",
                                 "Connection": "close"})


def pids_in_log(log) -> set[str]:
    return set(re.findall(r"pid=<?(\d+)", log.read_text()))


def test_the_stack_is_ready_and_issues_a_credential(stack, sandbox):
    ready = requests.get(f"{stack['url']}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    created = post_video(stack, "smoke")
    assert created.status_code == 201, created.text
    assert sandbox.get_video(created.json()["video_id"]) is not None
    assert created.headers["X-Request-ID"]


def test_gunicorn_closes_each_connection_so_the_next_request_may_go_to_any_worker(stack):
    """gunicorn.conf.py turns keep-alive off: a kept-alive connection would stay with one
    worker, and a few busy ones (a proxy's, a load generator's) would load one worker's GIL
    while another idles. A client asking to keep the connection is told it closes."""
    with requests.Session() as session:
        response = session.get(f"{stack['url']}/healthz", timeout=5,
                               headers={"Connection": "keep-alive"})
    assert response.status_code == 200
    assert response.headers.get("Connection", "").lower() == "close"


def test_the_per_user_rate_holds_across_hosts(stack, sandbox):
    """API_CREDENTIAL_RATE=5/minute per user: exactly 5 of 24 concurrent requests pass, half
    of them sent to each of two gunicorns (so certainly to different processes)."""
    urls = [stack["url"], stack["sibling_url"]] * 12
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = [response.status_code for response in
                    pool.map(lambda url: post_video(stack, "limited", url=url), urls)]
    assert pids_in_log(stack["log"]) and pids_in_log(stack["sibling_log"])
    assert pids_in_log(stack["log"]).isdisjoint(pids_in_log(stack["sibling_log"]))
    assert statuses.count(201) == 5, statuses
    assert statuses.count(429) == len(statuses) - 5


def test_the_outbound_limiter_holds_across_hosts(stack, sandbox):
    sandbox.qps_limit = 10  # the "account" limit, as VOD enforces it; ours is the same
    urls = [stack["url"], stack["sibling_url"]]
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(
            lambda index: post_video(stack, f"crowd{index % 20}", url=urls[index % 2]),
            range(60)))  # 3 per user: under the per-user rate
    statuses = [response.status_code for response in responses]
    assert set(statuses) <= {201, 429}, statuses
    refusals = [response.json() for response in responses if response.status_code == 429]
    assert all(body.get("vod_code") == "QpsLimitReached" for body in refusals), [x for x in [
        (body.get("code"), body.get("vod_code")) for body in refusals] if x[1] != "QpsLimitReached"]
    assert not [call for call in sandbox.calls if (call.get("code") or "").startswith("Throttling")]
    assert statuses.count(201) >= 9, statuses


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
