"""vodsandbox: faults, the QPS limit, the clock and reset().

Also the helpers the other test_vodsandbox_* modules share: SDK clients built with explicit
keys, and raw requests signed here by Alibaba's documented algorithms (V3 and V1), written
independently of the sandbox's own verifier. None of these tests touch the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
import urllib.error
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from alibabacloud_tea_openapi.exceptions import (
    AlibabaCloudException,
    ThrottlingException,
)
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vod20170321 import models as vod
from alibabacloud_vod20170321.client import Client
from darabonba.exceptions import UnretryableException

from tests.conftest import SANDBOX_ACCESS_KEY_ID as KEY_ID
from tests.conftest import SANDBOX_ACCESS_KEY_SECRET as SECRET
from vodsandbox import Sandbox, SandboxConfig
from vodsandbox.faults import QpsLimiter

ROOT = Path(__file__).resolve().parent.parent
VIDEO = vod.CreateUploadVideoRequest(title="Clip", file_name="clip.mp4")


# --- shared helpers --------------------------------------------------------------------


def sdk_client(sandbox, *, key_id=KEY_ID, secret=SECRET, v1=False, read_timeout_ms=None):
    """The real SDK client pointed at the sandbox; v1=True makes it sign RPC HMAC-SHA1."""
    config = Config(access_key_id=key_id, access_key_secret=secret, endpoint=sandbox.endpoint,
                    protocol="http", region_id="cn-shanghai")
    if v1:
        config.signature_algorithm = "v2"
    if read_timeout_ms:
        config.read_timeout = read_timeout_ms
    return Client(config)


def vod_error(call) -> AlibabaCloudException:
    """The SDK exception a call raises."""
    with pytest.raises(AlibabaCloudException) as caught:
        call()
    return caught.value


def b64json(value: str) -> dict:
    return json.loads(base64.b64decode(value))


def utc_stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode(value: str) -> str:
    """RFC 3986 percent-encoding of UTF-8, as Alibaba's signature docs define it."""
    return quote(value, safe="-_.~", encoding="utf-8")


def send(url, *, method="POST", headers=None, body=b""):
    """One raw HTTP request; returns (status, headers, parsed JSON body)."""
    request = urllib.request.Request(url, data=body if method != "GET" else None,
                                     method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers, json.loads(error.read() or b"{}")


def v3_call(sandbox, action, params, *, secret=SECRET, key_id=KEY_ID, date=None, nonce=None,
            body=b"", unsigned=(), omit=(), tamper=None, sent_body=None,
            version="2017-03-21"):
    """A V3 (ACS3-HMAC-SHA256) request signed by the documented algorithm.

    unsigned: headers sent but left out of SignedHeaders; omit: headers not sent at all;
    tamper: a function changing the query string after signing; sent_body: a body sent
    in place of the signed one.
    """
    headers = {
        "host": sandbox.endpoint, "x-acs-action": action, "x-acs-version": version,
        "x-acs-date": date or utc_stamp(), "x-acs-signature-nonce": nonce or uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if body:
        headers["content-type"] = "application/x-www-form-urlencoded"
    for name in omit:
        headers.pop(name)
    query = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(params.items()))
    signed = sorted(name for name in headers if name not in unsigned)
    canonical = "\n".join([
        "POST", "/", query, "".join(f"{name}:{headers[name].strip()}\n" for name in signed),
        ";".join(signed), hashlib.sha256(body).hexdigest()])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    signature = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"ACS3-HMAC-SHA256 Credential={key_id},"
                                f"SignedHeaders={';'.join(signed)},Signature={signature}")
    if tamper:
        query = tamper(query)
    return send(f"{sandbox.base_url}/?{query}", headers=headers,
                body=body if sent_body is None else sent_body)


def v1_call(sandbox, action, params, *, secret=SECRET, key_id=KEY_ID, timestamp=None,
            nonce=None, in_body=False):
    """A V1 (RPC, HMAC-SHA1) request signed by the documented algorithm."""
    signed = dict(params, Action=action, Version="2017-03-21", Format="JSON",
                  AccessKeyId=key_id, SignatureMethod="HMAC-SHA1", SignatureVersion="1.0",
                  SignatureNonce=nonce or uuid.uuid4().hex, Timestamp=timestamp or utc_stamp())
    canonical = "&".join(f"{encode(k)}={encode(v)}" for k, v in sorted(signed.items()))
    to_sign = f"POST&{encode('/')}&{encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()
    signed["Signature"] = base64.b64encode(digest).decode()
    encoded = "&".join(f"{encode(k)}={encode(v)}" for k, v in signed.items())
    if in_body:
        return send(f"{sandbox.base_url}/", body=encoded.encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    return send(f"{sandbox.base_url}/?{encoded}")


def control(sandbox, method, path, payload=None):
    """A request to a /_sandbox control endpoint."""
    body = json.dumps(payload).encode() if payload is not None else b""
    return send(f"{sandbox.base_url}/_sandbox{path}", method=method, body=body,
                headers={"Content-Type": "application/json"})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- faults ----------------------------------------------------------------------------


def test_throttling_fault_answers_as_vod_and_counts_the_call(sandbox):
    sandbox.faults.add(action="CreateUploadVideo", code="Throttling")
    error = vod_error(lambda: sdk_client(sandbox).create_upload_video(VIDEO))

    assert (error.code, error.status_code) == ("Throttling", 400)
    assert error.data["Message"] == "Request was denied due to request throttling."
    assert sandbox.calls[-1]["code"] == "Throttling" and sandbox.calls[-1]["status"] == 400
    assert sandbox.count_videos() == 0


def test_retry_after_makes_the_sdk_raise_throttling_exception(sandbox):
    sandbox.faults.add(action="*", code="Throttling.User", retry_after=7)
    error = vod_error(lambda: sdk_client(sandbox).create_upload_video(VIDEO))

    assert isinstance(error, ThrottlingException)
    assert (error.code, error.retry_after) == ("Throttling.User", 7)


@pytest.mark.parametrize("code,status", [("InternalError", 500), ("ServiceUnAvailable", 503),
                                         ("Forbidden.InitFailed", 403),
                                         ("AddVideoFailed", 503)])
def test_error_faults_carry_vods_status(sandbox, code, status):
    sandbox.faults.add(action="CreateUploadVideo", code=code)
    error = vod_error(lambda: sdk_client(sandbox).create_upload_video(VIDEO))
    assert (error.code, error.status_code) == (code, status)


def test_times_rate_and_action_scope_of_a_fault(sandbox):
    client = sdk_client(sandbox)
    sandbox.faults.add(action="CreateUploadVideo", code="InternalError", times=1)
    sandbox.faults.add(action="CreateUploadImage", code="InternalError", rate=0.0)

    assert vod_error(lambda: client.create_upload_video(VIDEO)).code == "InternalError"
    assert client.create_upload_video(VIDEO).body.video_id
    assert client.create_upload_image(vod.CreateUploadImageRequest(image_type="default"))
    assert [f["fired"] for f in sandbox.faults.list()] == [1, 0]
    sandbox.faults.clear()
    assert sandbox.faults.list() == []


def test_latency_slows_the_answer_but_lets_it_through(sandbox):
    sandbox.faults.add(action="CreateUploadVideo", latency=0.2)
    started = time.perf_counter()
    assert sdk_client(sandbox).create_upload_video(VIDEO).body.video_id
    assert time.perf_counter() - started >= 0.2


def test_timeout_holds_the_answer_past_the_client_read_timeout(sandbox):
    sandbox.faults.add(action="CreateUploadVideo", timeout=True)
    started = time.perf_counter()
    with pytest.raises(UnretryableException) as caught:
        sdk_client(sandbox, read_timeout_ms=200).create_upload_video(VIDEO)
    assert "timed out" in str(caught.value.inner_exception)
    assert time.perf_counter() - started < 2
    assert sandbox.count_videos() == 0
    assert sandbox.calls[-1]["status"] is None


def test_apply_after_acts_then_loses_the_answer(sandbox):
    sandbox.faults.add(action="CreateUploadVideo", timeout=True, times=1, apply_after=True)
    request = vod.CreateUploadVideoRequest(title="Clip", file_name="clip.mp4",
                                           reference_id="lost-answer-1")
    with pytest.raises(UnretryableException):
        sdk_client(sandbox, read_timeout_ms=200).create_upload_video(request)

    assert sandbox.count_videos() == 1
    found = sdk_client(sandbox).refresh_upload_video(
        vod.RefreshUploadVideoRequest(reference_id="lost-answer-1"))
    assert sandbox.get_video(found.body.video_id)["ReferenceId"] == "lost-answer-1"


def test_qps_limit_throttles_per_action(sandbox):
    client = sdk_client(sandbox)
    sandbox.configure(qps_limit=3)
    outcomes = []
    for _ in range(5):
        try:
            client.create_upload_video(VIDEO)
            outcomes.append("ok")
        except AlibabaCloudException as error:
            outcomes.append(error.code)

    assert outcomes.count("ok") == 3 and outcomes.count("Throttling.User") == 2
    assert client.create_upload_image(vod.CreateUploadImageRequest(image_type="default"))
    sandbox.reset()
    assert sandbox.config.qps_limit is None


def test_qps_window_slides_over_one_second(monkeypatch):
    now = [100.0]
    monkeypatch.setattr("vodsandbox.faults.time.monotonic", lambda: now[0])
    limiter = QpsLimiter()

    assert [limiter.admit("A", 2) for _ in range(3)] == [True, True, False]
    now[0] += 0.5
    assert limiter.admit("A", 2) is False and limiter.admit("B", 2) is True
    now[0] += 0.5
    assert limiter.admit("A", 2) is True
    assert limiter.admit("A", None) is True


# --- clock and reset -------------------------------------------------------------------


def test_the_clock_expires_credentials_without_sleeping(sandbox):
    video_id = sdk_client(sandbox).create_upload_video(VIDEO).body.video_id
    expires = sandbox.get_video(video_id)["CredentialExpiresAt"]
    assert sandbox.clock.now() < expires

    sandbox.clock.advance(3001)

    assert sandbox.clock.now() > expires
    # Clients still sign with the real time: the sandbox's moved clock must not refuse them.
    refreshed = sdk_client(sandbox).refresh_upload_video(
        vod.RefreshUploadVideoRequest(video_id=video_id))
    assert b64json(refreshed.body.upload_auth)["ExpireUTCTime"] > utc_stamp(expires)


def test_reset_forgets_media_calls_faults_nonces_and_config(sandbox):
    sdk_client(sandbox).create_upload_video(VIDEO)
    sandbox.faults.add(code="InternalError", action="GetVideoInfo")
    sandbox.configure(credential_ttl=60)
    sandbox.clock.advance(10)
    assert v3_call(sandbox, "GetVideoInfo", {"VideoId": "a" * 32}, nonce="n-1")[0] == 500

    sandbox.reset()

    assert sandbox.count_videos() == 0 and sandbox.calls == [] and sandbox.faults.list() == []
    assert sandbox.config.credential_ttl == 3000 and sandbox.clock.offset == 0
    assert v3_call(sandbox, "GetVideoInfo", {"VideoId": "a" * 32}, nonce="n-1")[0] == 404


def test_configured_faults_and_latency_come_back_after_reset():
    server = Sandbox(SandboxConfig(
        access_key_id=KEY_ID, access_key_secret=SECRET, latency=0.05,
        faults=({"action": "CreateUploadImage", "code": "Throttling"},))).start()
    try:
        image = vod.CreateUploadImageRequest(image_type="default")
        server.reset()
        assert vod_error(lambda: sdk_client(server).create_upload_image(image)).code == \
            "Throttling"
        started = time.perf_counter()
        sdk_client(server).create_upload_video(VIDEO)
        assert time.perf_counter() - started >= 0.05
    finally:
        server.stop()
