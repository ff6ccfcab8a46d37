"""A request that waited too long behind the proxy is refused before any work is done."""

import time

import pytest
from prometheus_client import REGISTRY

from uploads.models import AuditEvent, VideoUpload

pytestmark = pytest.mark.django_db

VIDEO = {"title": "t", "file_name": "t.mp4"}


def post(api, started: str | None):
    headers = {"HTTP_X_REQUEST_START": started} if started is not None else {}
    return api.post("/api/v1/videos/", VIDEO, format="json", **headers)


def test_a_request_queued_too_long_is_refused_before_any_work(api, sandbox, settings):
    settings.REQUEST_MAX_QUEUE_MS = 1000
    events = AuditEvent.objects.count()

    answer = post(api, f"t={time.time() - 5:.3f}")  # nginx's $msec, five seconds ago

    assert answer.status_code == 503 and answer["Retry-After"] == "1"
    body = answer.json()
    assert body["code"] == "overloaded" and body["request_id"] == answer["X-Request-ID"]
    assert sandbox.count_calls() == 0
    assert not VideoUpload.objects.exists() and AuditEvent.objects.count() == events


@pytest.mark.parametrize("started", [
    None,                                   # no proxy stamping requests: nothing is refused
    "t={now:.3f}",                          # fresh, in seconds
    "{now_ms:.0f}",                         # fresh, in milliseconds
    "t={future:.3f}",                       # a clock ahead of ours
    "yesterday",                            # unreadable
])
def test_fresh_unstamped_or_unreadable_requests_are_served(api, sandbox, settings, started):
    settings.REQUEST_MAX_QUEUE_MS = 1000
    now = time.time()
    header = None if started is None else started.format(now=now, now_ms=now * 1000,
                                                         future=now + 60)

    assert post(api, header).status_code == 201


def test_the_limit_can_be_switched_off(api, sandbox, settings):
    settings.REQUEST_MAX_QUEUE_MS = 0
    assert post(api, f"t={time.time() - 60:.3f}").status_code == 201


def _queue_samples() -> tuple[float, float, float]:
    """(requests timed, seconds waited in all, requests shed) from the metrics."""
    def value(name: str) -> float:
        return REGISTRY.get_sample_value(name) or 0.0
    return (value("vodportal_request_queue_seconds_count"),
            value("vodportal_request_queue_seconds_sum"), value("vodportal_requests_shed_total"))


def test_the_wait_behind_the_proxy_and_the_shed_requests_are_counted(api, sandbox, settings):
    """What an on-call engineer watches for saturation: how long requests wait before the
    portal starts on them, and how many it sheds."""
    settings.REQUEST_MAX_QUEUE_MS = 1000
    timed, waited, shed = _queue_samples()

    assert post(api, f"t={time.time() - 0.2:.3f}").status_code == 201
    assert post(api, f"t={time.time() - 5:.3f}").status_code == 503
    assert post(api, None).status_code == 201  # no stamp: nothing to time

    timed_after, waited_after, shed_after = _queue_samples()
    assert timed_after - timed == 2 and shed_after - shed == 1
    assert 5.2 <= waited_after - waited < 5.2 + 2
