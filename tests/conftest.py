"""Shared fixtures: the in-process VOD sandbox and Django wiring for it."""

import os

# Must be set before anything imports the credentials chain: the chain's last step is the
# ECS metadata service at 100.100.100.200, which tests may never contact.
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

import pytest  # noqa: E402

from vodsandbox import Sandbox, SandboxConfig  # noqa: E402

SANDBOX_ACCESS_KEY_ID = "SandboxTestKeyId01"
SANDBOX_ACCESS_KEY_SECRET = "sandbox-test-secret-5f2c9e0b7a41d3"


@pytest.fixture(scope="session")
def sandbox_server():
    """One sandbox per test session, on a free loopback port."""
    server = Sandbox(
        SandboxConfig(
            access_key_id=SANDBOX_ACCESS_KEY_ID,
            access_key_secret=SANDBOX_ACCESS_KEY_SECRET,
            host="127.0.0.1",
            port=0,
            # No per-action QPS limit (VOD's 80/s would be): the portal's own limiter is off in
            # tests, and the tests of throttling configure the limits they need.
            qps_limits={},
        )
    ).start()
    yield server
    server.stop()


@pytest.fixture
def sandbox(sandbox_server):
    """The session sandbox with its media, nonces, faults and call log forgotten."""
    sandbox_server.reset()
    yield sandbox_server
    sandbox_server.reset()


@pytest.fixture(autouse=True)
def audit_checkpoints_of_this_test(settings, tmp_path):
    """Each test keeps audit checkpoints of its own: its chain starts empty."""
    settings.AUDIT_CHECKPOINT_DIR = str(tmp_path / "audit-checkpoints")


@pytest.fixture(autouse=True)
def fresh_rate_counts():
    """Every test starts with no requests counted against any rate (throttles, refused
    callbacks): counts in this process's memory would otherwise carry over."""
    from uploads import ratelimit

    ratelimit.reset()


@pytest.fixture(autouse=True)
def no_vod_check_verdict():
    """Every test starts with no `vod_check` verdict kept (it lives in the cache)."""
    from django.core.cache import cache

    from uploads.services.vod_check import VERDICT_KEY

    cache.delete(VERDICT_KEY)


@pytest.fixture(autouse=True)
def portal_uses_sandbox(sandbox, settings):
    """Point the portal's gateway at the sandbox for every test: no test can reach VOD."""
    settings.VOD_SANDBOX = True
    settings.VOD_ENDPOINT = sandbox.endpoint
    settings.VOD_PROTOCOL = "http"
    settings.VOD_SANDBOX_ACCESS_KEY_ID = SANDBOX_ACCESS_KEY_ID
    settings.VOD_SANDBOX_ACCESS_KEY_SECRET = SANDBOX_ACCESS_KEY_SECRET
    return sandbox


@pytest.fixture(autouse=True)
def audit_triggers_in_place(request):
    """Every database test runs with the append-only triggers installed.

    A transactional test ends with Django emptying every table, which the triggers refuse;
    they are dropped just before that flush and reinstalled for the next test.
    """
    marker = request.node.get_closest_marker("django_db")
    if marker is None:
        yield
        return
    from django.db import connection

    from uploads import audit_triggers

    request.getfixturevalue("_django_db_helper")
    audit_triggers.install(connection)
    yield
    # A test that turned AUDIT_SEAL_INLINE off started this process's sealer: it stops
    # (after one last pass) before the runner empties the tables under it.
    from uploads import audit_sealer

    audit_sealer.stop()
    transactional = marker.kwargs.get("transaction") or "live_server" in request.fixturenames
    if transactional:
        audit_triggers.remove(connection)


@pytest.fixture
def live_callbacks(live_server, settings, sandbox):
    """The portal asks VOD to call it back at the live server, and the sandbox signs its
    events with the key the portal knows. Yields the callback URL."""
    from tests.uploading import LIVE_AUTH_KEY

    settings.VOD_CALLBACK_URL = live_server.url + "/api/v1/vod/events/"
    settings.VOD_CALLBACK_AUTH_KEYS = [LIVE_AUTH_KEY]
    sandbox.configure(callback_auth_key=LIVE_AUTH_KEY, callback_url=settings.VOD_CALLBACK_URL)
    yield settings.VOD_CALLBACK_URL
    # No delivery may reach the portal after the test's tables are emptied.
    assert sandbox.wait_until_idle(10)


@pytest.fixture
def vod_callback_keys(settings):
    """The portal takes VOD's callbacks at tests.vod_events.CALLBACK_URL, signed with either
    of two keys (a rotation in progress)."""
    from tests.vod_events import CALLBACK_URL, NEW_KEY, OLD_KEY

    settings.VOD_CALLBACK_URL = CALLBACK_URL
    settings.VOD_CALLBACK_AUTH_KEYS = [OLD_KEY, NEW_KEY]
    settings.VOD_CALLBACK_MAX_AGE = 300


@pytest.fixture
def user(db):
    """An ordinary end user."""
    from tests.factories import UserFactory

    return UserFactory(username="alice")


@pytest.fixture
def other_user(db):
    """A second end user, to prove users cannot see each other's uploads."""
    from tests.factories import UserFactory

    return UserFactory(username="bob")


@pytest.fixture
def superuser(db):
    """A superuser, `root` (every admin page and action)."""
    from tests.factories import UserFactory

    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(client, superuser):
    """The test client logged in as `superuser` (pytest-django's, with our factory's user)."""
    client.force_login(superuser)
    return client


@pytest.fixture
def staff_user(db):
    """A staff member (sees every upload through the API)."""
    from tests.factories import UserFactory

    return UserFactory(username="carol", is_staff=True)


def _token_client(account):
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    _, token = AuthToken.objects.create(user=account)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    client.token = token
    return client


@pytest.fixture
def api(user):
    """An API client authenticated as `user` with a real (hashed) API token."""
    return _token_client(user)


@pytest.fixture
def other_api(other_user):
    """An API client for `other_user`."""
    return _token_client(other_user)


@pytest.fixture
def staff_api(staff_user):
    """An API client for `staff_user`."""
    return _token_client(staff_user)


@pytest.fixture
def time_passes(sandbox):
    """Age every upload row and the sandbox by `seconds` (default an hour), as if that much
    time had passed: vod_sync's grace and SearchMedia's index lag are both behind them."""
    def age(seconds: float = 3600) -> None:
        from datetime import timedelta

        from django.db.models import F

        from uploads.models import AttachedMediaUpload, ImageUpload, VideoUpload

        for model in (VideoUpload, ImageUpload, AttachedMediaUpload):
            model.objects.update(created_at=F("created_at") - timedelta(seconds=seconds))
        sandbox.clock.advance(seconds)

    return age


def concurrently(*calls):
    """Run each call in a thread of its own, all at once; their results in order. Each
    thread closes its database connection, as a server's request thread would."""
    import threading

    from django.db import connection

    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(index, call):
        try:
            barrier.wait(timeout=30)
            results[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=pair) for pair in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def wait_until(condition, *, timeout: float, what: str):
    """Poll `condition` until it returns something truthy, and return that; fail naming
    `what` after `timeout` seconds. The one way tests wait for something to happen."""
    import time

    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.02)
    return result
