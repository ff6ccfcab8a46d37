"""vodsandbox's control endpoints, CLI and lifecycle (start, stop, threads, speed)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta

import pytest
from alibabacloud_tea_openapi.exceptions import (
    AlibabaCloudException,
    ThrottlingException,
)
from alibabacloud_vod20170321 import models as vod
from darabonba.exceptions import UnretryableException

from tests.test_vodsandbox import (
    KEY_ID,
    ROOT,
    SECRET,
    VIDEO,
    control,
    free_port,
    sdk_client,
    send,
    v3_call,
    vod_error,
)
from vodsandbox import Sandbox, SandboxConfig

# --- control endpoints -----------------------------------------------------------------


def test_state_endpoint_reports_counts_and_ids(sandbox):
    video_id = sdk_client(sandbox).create_upload_video(VIDEO).body.video_id
    status, _, state = control(sandbox, "GET", "/state")

    assert status == 200
    assert state["videos"] == [video_id] and state["counts"]["videos"] == 1
    assert state["counts"]["calls_by_action"] == {"CreateUploadVideo": 1}
    assert "access_key_secret" not in state["config"]
    status, _, media = control(sandbox, "GET", f"/media/{video_id}")
    assert status == 200 and media["Status"] == "Uploading"


def test_arrivals_endpoint_times_each_call_to_the_microsecond(sandbox):
    sandbox.qps_limit = 1
    client = sdk_client(sandbox)
    client.create_upload_video(VIDEO)
    with pytest.raises(AlibabaCloudException, match="Throttling"):
        client.create_upload_video(VIDEO)

    status, _, body = control(sandbox, "GET", "/arrivals")

    assert status == 200
    (first_at, first_status, first_code), (second_at, _, second_code) = (
        body["arrivals"]["CreateUploadVideo"])
    assert (first_status, first_code, second_code) == (200, None, "Throttling.User")
    assert 0 < second_at - first_at < 1 and second_at != int(second_at)


def test_faults_endpoints_add_and_clear(sandbox):
    status, _, body = control(sandbox, "POST", "/faults",
                              {"action": "CreateUploadVideo", "code": "Throttling",
                               "retry_after": 3})
    assert status == 201 and body["fault"]["status"] == 400
    assert isinstance(vod_error(lambda: sdk_client(sandbox).create_upload_video(VIDEO)),
                      ThrottlingException)

    assert control(sandbox, "DELETE", "/faults")[0] == 200
    assert sdk_client(sandbox).create_upload_video(VIDEO).body.video_id
    assert control(sandbox, "POST", "/faults", {"bogus": 1})[0] == 400
    assert control(sandbox, "POST", "/faults", {"rate": 2})[0] == 400


def test_clock_config_and_reset_endpoints(sandbox):
    status, _, body = control(sandbox, "POST", "/clock/advance", {"seconds": 3001})
    assert status == 200 and body["offset"] == 3001 and sandbox.clock.offset == 3001
    assert control(sandbox, "POST", "/clock/advance", {"seconds": "x"})[0] == 400

    status, _, body = control(sandbox, "POST", "/config", {"qps_limit": 5})
    assert status == 200 and sandbox.config.qps_limit == 5
    assert control(sandbox, "POST", "/config", {"access_key_secret": "x"})[0] == 400

    sdk_client(sandbox).create_upload_video(VIDEO)
    assert control(sandbox, "POST", "/reset")[0] == 200
    assert sandbox.count_videos() == 0 and sandbox.clock.offset == 0
    assert sandbox.config.qps_limit is None


def test_control_paths_are_not_vod_and_vod_cannot_reach_them(sandbox):
    assert control(sandbox, "GET", "/nope")[0] == 404
    assert control(sandbox, "GET", "/reset")[0] == 405
    assert send(f"{sandbox.base_url}/_sandbox/reset", body=b"{not json")[0] == 400
    # An Action on a control path stays a control request (and is not logged as a call) ...
    status, _, body = send(f"{sandbox.base_url}/_sandbox/state?Action=CreateUploadVideo",
                           method="GET")
    assert status == 200 and "videos" in body and sandbox.calls == []
    # ... and an Action naming a control operation is just an unknown VOD action.
    assert v3_call(sandbox, "_sandbox/reset", {})[2]["Code"] == "InvalidAction.NotFound"


# --- CLI and lifecycle -----------------------------------------------------------------


def test_cli_starts_answers_and_stops_on_sigterm():
    port = free_port()
    env = dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true",
               VODSANDBOX_ACCESS_KEY_ID="FromTheEnvironment")
    process = subprocess.Popen(
        [sys.executable, "-m", "vodsandbox", "--host", "127.0.0.1", "--port", str(port),
         "--access-key-secret", "cli-secret", "--fault", "CreateUploadImage:Throttling:1",
         "--latency-ms", "1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}" in line
        server = type("Endpoint", (), {"endpoint": f"127.0.0.1:{port}"})()
        client = sdk_client(server, key_id="FromTheEnvironment", secret="cli-secret")
        assert client.create_upload_video(VIDEO).body.video_id
        image = vod.CreateUploadImageRequest(image_type="default")
        assert vod_error(lambda: client.create_upload_image(image)).code == "Throttling"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err


def test_cli_refuses_a_non_loopback_host():
    result = subprocess.run([sys.executable, "-m", "vodsandbox", "--host", "0.0.0.0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
                            env=dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true"))
    assert result.returncode == 2 and "loopback" in result.stderr


def test_stop_ends_idle_and_held_connections_and_frees_the_port():
    server = Sandbox(SandboxConfig(access_key_id=KEY_ID, access_key_secret=SECRET)).start()
    port = server.port
    sdk_client(server).create_upload_video(VIDEO)  # leaves a pooled keep-alive connection
    server.faults.add(action="CreateUploadImage", timeout=True)
    held = threading.Thread(target=lambda: pytest.raises(
        UnretryableException, sdk_client(server, read_timeout_ms=5000).create_upload_image,
        vod.CreateUploadImageRequest(image_type="default")))
    held.start()
    while server.count_calls("CreateUploadImage") == 0 and held.is_alive():
        time.sleep(0.01)

    started = time.perf_counter()
    server.stop()
    held.join(5)

    assert time.perf_counter() - started < 2 and not held.is_alive()
    assert not [t for t in threading.enumerate() if t.name.startswith(f"vodsandbox-{port}")]
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


def test_non_loopback_hosts_are_refused_unless_allowed():
    with pytest.raises(ValueError, match="loopback"):
        SandboxConfig(host="0.0.0.0")
    assert SandboxConfig(host="0.0.0.0", allow_remote=True).host == "0.0.0.0"


def test_keep_alive_round_trips_are_fast(sandbox):
    client = sdk_client(sandbox)
    client.create_upload_video(VIDEO)  # warm the connection pool
    started = time.perf_counter()
    for _ in range(20):
        client.create_upload_video(VIDEO)
    # A delayed-ACK stall alone would cost ~40 ms a call.
    assert (time.perf_counter() - started) / 20 < 0.02


def test_concurrent_clients_get_distinct_videos(sandbox):
    ids, errors = [], []

    def work():
        client = sdk_client(sandbox)
        try:
            for _ in range(10):
                ids.append(client.create_upload_video(VIDEO).body.video_id)
        except AlibabaCloudException as error:  # pragma: no cover - reported below
            errors.append(error)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert errors == [] and len(set(ids)) == 80 == sandbox.count_videos()
    assert sandbox.count_calls("CreateUploadVideo") == 80 == sandbox.count_calls()


def test_now_is_utc_and_advance_moves_it():
    server = Sandbox(SandboxConfig(access_key_id=KEY_ID, access_key_secret=SECRET))
    before = server.clock.now()
    assert before.tzinfo is not None
    assert server.clock.advance(60) - before >= timedelta(seconds=60)
