"""Per-user rates for credential issuance and refresh, and the outbound VOD limiter."""

import threading

import pytest

from uploads import ratelimit
from uploads.vod import limiter


@pytest.fixture(autouse=True)
def empty_vod_window():
    """Slots of earlier tests' VOD calls are held for a second after each answer."""
    limiter.clear()
    yield
    limiter.clear()


VIDEO = {"title": "t", "file_name": "t.mp4"}


@pytest.fixture
def rates(settings):
    def set_rates(credentials="1000/minute", refresh="1000/minute"):
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
            "credentials": credentials, "refresh": refresh}}
        ratelimit.reset()
    yield set_rates
    ratelimit.reset()


@pytest.mark.django_db
def test_credential_issuance_is_limited_per_user(api, other_api, rates, sandbox):
    rates(credentials="3/minute")
    statuses = [api.post("/api/v1/videos/", VIDEO, format="json").status_code for _ in range(4)]
    assert statuses == [201, 201, 201, 429]
    refused = api.post("/api/v1/images/", {"image_type": "default"}, format="json")
    assert refused.status_code == 429
    assert refused.json()["code"] == "throttled" and int(refused["Retry-After"]) > 0
    assert other_api.post("/api/v1/videos/", VIDEO, format="json").status_code == 201
    assert sandbox.count_calls("CreateUploadVideo") == 4  # 3 + bob's


@pytest.mark.django_db
def test_refresh_has_its_own_rate(api, rates):
    rates(refresh="1/minute")
    video_id = api.post("/api/v1/videos/", VIDEO, format="json").json()["video_id"]
    assert api.post(f"/api/v1/videos/{video_id}/refresh/").status_code == 200
    assert api.post(f"/api/v1/videos/{video_id}/refresh/").status_code == 429
    assert api.get(f"/api/v1/videos/{video_id}/").status_code == 200  # reads are not limited


def test_outbound_limiter_keeps_vod_under_its_qps_limit(sandbox, settings):
    """Many callers at once: VOD (the sandbox, limited like an account) never throttles us;
    calls past our own ceiling wait briefly or get our own throttled error."""
    from uploads import vod

    settings.VOD_QPS_LIMIT = 10
    settings.VOD_QPS_MAX_WAIT_MS = 300
    sandbox.qps_limit = 10
    outcomes = []

    def caller(index):
        for attempt in range(6):
            try:
                vod.create_upload_video(title="t", file_name="t.mp4",
                                        reference_id=f"limiter-{index}-{attempt}")
                outcomes.append("issued")
            except vod.VodThrottled as error:
                outcomes.append(error.code)

    threads = [threading.Thread(target=caller, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert "Throttling" not in [call.get("code") for call in sandbox.calls]
    assert set(outcomes) <= {"issued", "QpsLimitReached"}
    assert outcomes.count("issued") >= 9  # at least a window's worth got through
    assert sandbox.count_calls("CreateUploadVideo") == outcomes.count("issued")


@pytest.mark.django_db
def test_our_throttled_answer_is_a_429_with_retry_after(api, settings, sandbox):
    settings.VOD_QPS_LIMIT = 1
    settings.VOD_QPS_MAX_WAIT_MS = 0
    assert api.post("/api/v1/videos/", VIDEO, format="json").status_code == 201
    refused = api.post("/api/v1/videos/", VIDEO, format="json")
    assert refused.status_code == 429
    assert refused.json()["vod_code"] == "QpsLimitReached"
    assert refused["Retry-After"] == "1"
    assert sandbox.count_calls("CreateUploadVideo") == 1


def test_a_vod_call_holds_its_slot_until_a_second_after_its_answer(sandbox, settings):
    """VOD may receive a slow request late: counting it from its answer keeps any one-second
    span of VOD's arrivals within the limit."""
    import time

    from uploads import vod

    settings.VOD_QPS_LIMIT = 1
    settings.VOD_QPS_MAX_WAIT_MS = 3000
    sandbox.faults.add(action="CreateUploadVideo", latency=0.3, times=1)
    vod.create_upload_video(title="t", file_name="t.mp4", reference_id="slot-first")
    answered = time.monotonic()
    vod.create_upload_video(title="t", file_name="t.mp4", reference_id="slot-second")
    assert time.monotonic() - answered >= 0.99
