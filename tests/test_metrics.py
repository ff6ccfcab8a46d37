"""GET /metrics: who may read it, what the code paths count into it, the gauges read from the
database at scrape time, the dashboard and alert rules that use it, and the counts of a real
gunicorn with two workers adding up (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET, wait_until
from tests.factories import VideoUploadFactory
from tests.stack import fresh_database_url, start_portal
from tests.vod_events import deliver, upload_complete
from uploads import metrics
from uploads.models import ImageUpload, UploadStatus, VideoUpload
from uploads.vod import limiter

ROOT = Path(__file__).resolve().parent.parent
VIDEO = {"title": "Metrics clip", "file_name": "clip.mp4"}
TOKEN = "metrics-token-7d1f0c9a3b"


def parse(text: str) -> dict:
    """{(sample name, frozenset of labels): value} of a text exposition."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def scrape(client, **extra) -> dict:
    response = client.get("/metrics", **extra)
    assert response.status_code == 200, response.status_code
    return parse(response.content.decode())


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(autouse=True)
def empty_vod_window():
    """Bookings of earlier tests' VOD calls count for a second after each was sent."""
    limiter.clear()
    yield
    limiter.clear()


# --- Who may read it -----------------------------------------------------------------------


@pytest.mark.django_db
def test_only_loopback_may_scrape_by_default(client, settings):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    refused = client.get("/metrics", REMOTE_ADDR="203.0.113.7")
    unknown = client.get("/no-such-page", REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == unknown.status_code == 404
    assert refused.content == unknown.content  # nothing tells the route exists
    # Relayed by a proxy nobody declared (NUM_PROXIES=0): its loopback address is not the
    # client's, so not allowed.
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="198.51.100.4").status_code == 404
    assert client.post("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 404
    assert client.post("/metrics").status_code == 405


@pytest.mark.django_db
def test_allowed_networks_follow_the_client_ip_rule(client, settings):
    settings.METRICS_ALLOWED_IPS = ["10.0.0.0/8", "2001:db8::/32"]
    assert client.get("/metrics", REMOTE_ADDR="10.20.30.40").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="2001:db8::5").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="::ffff:10.1.1.1").status_code == 200
    assert client.get("/metrics").status_code == 404  # loopback is no longer listed
    settings.NUM_PROXIES = 1  # behind one proxy: its X-Forwarded-For entry is the client
    assert client.get("/metrics", HTTP_X_FORWARDED_FOR="10.9.9.9").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.0.1",
                      HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 404


@pytest.mark.django_db
def test_with_a_token_set_a_scrape_needs_it(client, settings, caplog):
    settings.METRICS_TOKEN = TOKEN
    caplog.set_level(logging.DEBUG)
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Token {TOKEN}").status_code == 404
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.7",
                      HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404
    allowed = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert allowed.status_code == 200
    assert allowed["Content-Type"].startswith("text/plain; version=")
    assert allowed["Cache-Control"] == "no-store"
    # No session, cookie or Vary: Cookie: the view touches neither session nor user.
    assert not allowed.cookies and "Cookie" not in allowed.get("Vary", "")
    assert TOKEN not in caplog.text


@pytest.mark.django_db
def test_metrics_are_not_in_the_api_schema(api):
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "metrics" not in json.dumps(schema.json()["paths"])


# --- What the code paths count -------------------------------------------------------------


@pytest.mark.django_db
def test_issued_credentials_and_vod_calls_are_counted(client, api, sandbox):
    before = scrape(client)
    for _ in range(2):
        assert api.post("/api/v1/videos/", VIDEO, format="json").status_code == 201
    image = api.post("/api/v1/images/", {"image_type": "default"}, format="json")
    assert image.status_code == 201
    video_id = api.get("/api/v1/videos/").json()["results"][0]["video_id"]
    assert api.post(f"/api/v1/videos/{video_id}/refresh/").status_code == 200
    after = scrape(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("vodportal_credentials_issued_total", kind="video", via="create") == 2
    assert delta("vodportal_credentials_issued_total", kind="image", via="create") == 1
    assert delta("vodportal_credentials_issued_total", kind="video", via="refresh") == 1
    assert delta("vodportal_vod_calls_total", operation="CreateUploadVideo", outcome="ok") == 2
    assert delta("vodportal_vod_calls_total", operation="RefreshUploadVideo", outcome="ok") == 1
    assert delta("vodportal_vod_call_duration_seconds_count", operation="CreateUploadVideo") == 2
    assert delta("vodportal_vod_call_duration_seconds_bucket", operation="CreateUploadVideo",
                 le="10.0") == 2
    assert delta("vodportal_vod_limiter_wait_seconds_count", operation="CreateUploadImage") == 1
    assert value(after, "vodportal_vod_calls_in_flight", operation="CreateUploadVideo") == 0


@pytest.mark.django_db
def test_a_vod_error_shows_as_a_refusal_and_a_call_outcome(client, api, sandbox):
    before = scrape(client)
    sandbox.faults.add(action="CreateUploadVideo", code="Throttling")
    refused = api.post("/api/v1/videos/", VIDEO, format="json")
    assert refused.status_code == 429 and refused.json()["vod_code"] == "Throttling"
    after = scrape(client)
    assert (value(after, "vodportal_credentials_refused_total", kind="video", code="Throttling")
            - value(before, "vodportal_credentials_refused_total", kind="video",
                    code="Throttling")) == 1
    assert (value(after, "vodportal_vod_calls_total", operation="CreateUploadVideo",
                  outcome="throttled")
            - value(before, "vodportal_vod_calls_total", operation="CreateUploadVideo",
                    outcome="throttled")) == 1


@pytest.mark.django_db
def test_limiter_and_throttle_refusals_are_counted(client, api, settings, sandbox):
    before = scrape(client)
    settings.VOD_QPS_LIMIT = 1
    settings.VOD_QPS_MAX_WAIT_MS = 0
    assert api.post("/api/v1/videos/", VIDEO, format="json").status_code == 201
    assert api.post("/api/v1/videos/", VIDEO, format="json").status_code == 429
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        "credentials": "1/minute", "refresh": "1000/minute"}}
    assert api.post("/api/v1/images/", {"image_type": "default"}, format="json").status_code == 201
    assert api.post("/api/v1/images/", {"image_type": "default"}, format="json").status_code == 429
    after = scrape(client)
    for name, labels, expected in (
            ("vodportal_vod_limiter_refusals_total", {"operation": "CreateUploadVideo"}, 1),
            ("vodportal_credentials_refused_total", {"kind": "video", "code": "QpsLimitReached"}, 1),
            ("vodportal_throttle_refusals_total", {"scope": "credentials"}, 1),
            ("vodportal_vod_calls_total", {"operation": "CreateUploadVideo", "outcome": "ok"}, 1)):
        assert value(after, name, **labels) - value(before, name, **labels) == expected, name


@pytest.mark.django_db
def test_callbacks_are_counted_by_event_type_and_verdict(client, vod_callback_keys, sandbox):
    before = scrape(client)
    assert deliver(client, upload_complete("abc"), signature="0" * 32).status_code == 403
    assert deliver(client, upload_complete("not-ours")).status_code == 200
    snapshot = {"EventType": "SnapshotComplete", "VideoId": "v1", "EventTime": "x"}
    assert deliver(client, snapshot).status_code == 200
    assert deliver(client, snapshot).status_code == 200  # the same body again
    assert deliver(client, {"EventType": "Made<Up>" * 20}).status_code == 200
    after = scrape(client)
    for labels, expected in (({"event_type": "none", "verdict": "rejected"}, 1),
                             ({"event_type": "FileUploadComplete", "verdict": "unknown_media"}, 1),
                             ({"event_type": "SnapshotComplete", "verdict": "ignored"}, 1),
                             ({"event_type": "SnapshotComplete", "verdict": "duplicate"}, 1),
                             ({"event_type": "other", "verdict": "ignored"}, 1)):
        assert (value(after, "vodportal_callbacks_total", **labels)
                - value(before, "vodportal_callbacks_total", **labels)) == expected, labels


def test_label_values_stay_bounded(monkeypatch):
    monkeypatch.setattr(metrics, "_seen", {})
    assert metrics.bounded("code", "InvalidParameter.Title") == "InvalidParameter.Title"
    assert metrics.bounded("code", 'x"} 1\nevil{') == "x___1_evil_"
    assert len(metrics.bounded("code", "A" * 500)) == 64
    assert metrics.bounded("kind", "videos", metrics.KINDS) == "other"
    for index in range(200):
        metrics.bounded("code", f"Code{index}")
    assert metrics.bounded("code", "Yet.Another") == "other"
    assert metrics.bounded("code", "InvalidParameter.Title") == "InvalidParameter.Title"

    from uploads.vod import VodNotConfigured, VodThrottled

    assert metrics.outcome_of(None) == "ok"
    assert metrics.outcome_of(VodThrottled("x", code="Throttling")) == "throttled"
    assert metrics.outcome_of(VodNotConfigured("x", code="Forbidden")) == "not_configured"


@pytest.mark.django_db
def test_a_broken_metric_never_fails_the_request(api, sandbox, monkeypatch, caplog):
    monkeypatch.setattr(metrics, "_failed", set())
    caplog.set_level(logging.WARNING, logger="uploads.metrics")
    def broken(*args, **kwargs):
        raise RuntimeError("metrics store gone")

    for instrument in (metrics.CREDENTIALS_ISSUED, metrics.VOD_CALLS, metrics.VOD_CALLS_IN_FLIGHT,
                       metrics.LIMITER_WAIT_SECONDS):
        monkeypatch.setattr(instrument, "labels", broken)
    assert api.post("/api/v1/videos/", VIDEO, format="json").status_code == 201
    assert "metrics: credential_issued failed" in caplog.text


# --- Read from the database at scrape time -------------------------------------------------


@pytest.mark.django_db
def test_uploads_in_flight_and_the_oldest_age_reflect_the_rows(client, user):
    now = timezone.now()
    for status, hours in ((UploadStatus.UPLOADING, 3), (UploadStatus.UPLOADING, 1),
                          (UploadStatus.REQUESTING, 0), (UploadStatus.READY, 9)):
        row = VideoUploadFactory(owner=user, status=status)
        VideoUpload.objects.filter(pk=row.pk).update(created_at=now - timedelta(hours=hours))
    ImageUpload.objects.create(owner=user, status=UploadStatus.PROCESSING, image_type="default",
                               image_ext="png")
    samples = scrape(client)
    assert value(samples, "vodportal_scrape_database_up") == 1
    gauge = "vodportal_uploads_in_flight"
    assert value(samples, gauge, kind="video", status="uploading") == 2
    assert value(samples, gauge, kind="video", status="requesting") == 1
    assert value(samples, gauge, kind="image", status="processing") == 1
    assert (gauge, frozenset({"kind": "video", "status": "ready"}.items())) not in samples
    age = "vodportal_uploads_oldest_in_flight_age_seconds"
    assert 3 * 3600 - 5 < value(samples, age, kind="video", status="uploading") < 3 * 3600 + 60
    assert value(samples, age, kind="attached_media", status="uploading") == 0


@pytest.mark.django_db
def test_the_audit_chain_head_is_reported(client, api, sandbox):
    assert api.post("/api/v1/videos/", VIDEO, format="json").status_code == 201
    samples = scrape(client)
    assert value(samples, "vodportal_audit_chain_head_sequence") >= 1
    assert 0 <= value(samples, "vodportal_audit_chain_head_age_seconds") < 60
    assert value(samples, "vodportal_audit_unsealed_events") == 0  # sealed inline in tests


@pytest.mark.django_db
def test_a_database_that_cannot_answer_does_not_fail_the_scrape(client, monkeypatch):
    from django.db import OperationalError

    from uploads.metrics import collector

    def down(self):
        raise OperationalError("connection refused")

    monkeypatch.setattr(collector.DatabaseCollector, "_families", down)
    samples = scrape(client)
    assert value(samples, "vodportal_scrape_database_up") == 0
    assert ("vodportal_credentials_issued_total", frozenset()) not in samples


# --- The dashboard and alert rules use only metrics that exist ------------------------------


def _exposed_names(text: str) -> set[str]:
    """Every series name the exposition can carry, including families with no sample yet."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
    return names


@pytest.mark.django_db
def test_dashboard_and_alerts_use_exposed_metrics(client, api, sandbox):
    assert api.post("/api/v1/videos/", VIDEO, format="json").status_code == 201
    exposed = _exposed_names(client.get("/metrics").content.decode())
    dashboard = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    assert dashboard["panels"] and dashboard["title"]
    expressions = [target["expr"] for panel in dashboard["panels"]
                   for target in panel.get("targets", [])]
    alerts_text = (ROOT / "docs" / "alerts.yml").read_text()
    try:
        import yaml
    except ImportError:  # PyYAML is not a requirement: the names are still checked below
        yaml = None
    if yaml is not None:
        rules = [rule for group in yaml.safe_load(alerts_text)["groups"] for rule in group["rules"]]
        assert {"VodErrorRateHigh", "UploadsStuckInFlight", "AuditChainNotAdvancing",
                "MetricsScrapeDown"} <= {rule["alert"] for rule in rules}
        expressions += [rule["expr"] for rule in rules]
    else:
        expressions.append(alerts_text)
    used = {name for expression in expressions
            for name in re.findall(r"\bvodportal_[a-z0-9_]+", expression)}
    assert used and not used - exposed, used - exposed


# --- Two gunicorn workers add up -----------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers(sandbox_server, tmp_path_factory):
    """A real gunicorn with two workers and a metrics directory that holds a file left by an
    earlier run (it must not count)."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    workdir = tmp_path_factory.mktemp("metrics-stack")
    directory = workdir / "prometheus"
    directory.mkdir()
    stale = MmapedDict(str(directory / "counter_424242.db"))
    stale.write_value(mmap_key("vodportal_credentials_issued", "vodportal_credentials_issued_total",
                               ["kind", "via"], ["video", "create"], "stale"), 1000.0, 0.0)
    stale.close()
    portal = start_portal(
        sandbox_endpoint=sandbox_server.endpoint, access_key_id=SANDBOX_ACCESS_KEY_ID,
        access_key_secret=SANDBOX_ACCESS_KEY_SECRET,
        database_url=fresh_database_url(os.environ.get("DATABASE_URL", ""),
                                        "vodp_metrics_stack", workdir),
        workdir=workdir, users=[f"metrics{index}" for index in range(4)],
        extra_env={"PROMETHEUS_MULTIPROC_DIR": str(directory), "GUNICORN_WORKERS": "2"})
    yield portal, directory
    portal.stop()


def _post_video(portal, name):
    return requests.post(f"{portal.url}/api/v1/videos/", json=VIDEO, timeout=30,
                         headers={"Authorization": f"Token {portal.tokens[name]}",
                                  "Connection": "close"})


def _issuing_pids(portal) -> set[str]:
    return set(re.findall(r'"POST /api/v1/videos/ HTTP/1.1" 201 .* pid=<?(\d+)',
                          portal.access_log.read_text()))


def _stack_scrape(portal) -> dict:
    response = requests.get(f"{portal.url}/metrics", timeout=10, headers={"Connection": "close"})
    assert response.status_code == 200, response.text
    return parse(response.text)


def test_counts_of_two_workers_add_up(two_workers, sandbox):
    portal, directory = two_workers
    issued = 0
    with ThreadPoolExecutor(max_workers=8) as pool:
        # Separate connections, concurrently, until both workers have issued some (the
        # kernel may give one worker every connection of a batch).
        for _ in range(6):
            statuses = [response.status_code for response in
                        pool.map(lambda index: _post_video(portal, f"metrics{index % 4}"),
                                 range(12))]
            assert statuses == [201] * 12, statuses
            issued += 12
            wait_until(lambda expected=issued: len(re.findall(
                r'"POST /api/v1/videos/ ', portal.access_log.read_text())) == expected,
                timeout=10, what="the access log to show every request")
            if len(_issuing_pids(portal)) == 2:
                break
    pids = _issuing_pids(portal)
    assert len(pids) == 2, "one worker served every request"

    for _ in range(6):  # any worker may serve a scrape: each must see both workers' counts
        samples = _stack_scrape(portal)
        assert value(samples, "vodportal_credentials_issued_total",
                     kind="video", via="create") == issued
        assert value(samples, "vodportal_vod_calls_total",
                     operation="CreateUploadVideo", outcome="ok") == issued
        assert value(samples, "vodportal_vod_call_duration_seconds_count",
                     operation="CreateUploadVideo") == issued
        assert value(samples, "vodportal_uploads_in_flight", kind="video",
                     status="uploading") == issued

    # A worker that dies takes its live gauge with it; its counts stay in the sum.
    victim = sorted(pids)[0]
    assert (directory / f"gauge_livesum_{victim}.db").exists()
    os.kill(int(victim), signal.SIGKILL)
    wait_until(lambda: not (directory / f"gauge_livesum_{victim}.db").exists(), timeout=20,
               what="child_exit to drop the dead worker's live gauges")

    def scraped_after_restart():
        try:
            return _stack_scrape(portal)
        except (requests.ConnectionError, AssertionError):
            return None

    samples = wait_until(scraped_after_restart, timeout=30, what="a scrape after the restart")
    assert value(samples, "vodportal_credentials_issued_total", kind="video",
                 via="create") == issued
