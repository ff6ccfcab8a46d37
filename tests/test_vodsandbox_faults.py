"""vodsandbox: faults that break the answer on the wire (truncated and non-JSON bodies,
connection resets), seen by a raw HTTP client and by the real SDK."""

from __future__ import annotations

import errno
import http.client
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from darabonba.exceptions import UnretryableException
from alibabacloud_vod20170321 import models as vod

from tests import test_vodsandbox
from tests.test_vodsandbox import VIDEO, control, sdk_client, v3_call


@dataclass
class Raw:
    """What a plain HTTP client got: the head, the bytes read, and how reading ended."""

    status: int | None = None
    headers: http.client.HTTPMessage | None = None
    body: bytes = b""
    error: BaseException | None = None


def _raw_send(url, *, method="POST", headers=None, body=b""):
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    raw = Raw()
    try:
        connection.request(method, f"{parts.path}?{parts.query}", body=body,
                           headers=headers or {})
        response = connection.getresponse()
        raw.status, raw.headers = response.status, response.headers
        raw.body = response.read()
    except http.client.IncompleteRead as error:
        raw.body, raw.error = error.partial, error
    except OSError as error:
        raw.error = error
    finally:
        connection.close()
    return raw


def raw_create_video(sandbox, monkeypatch, **params) -> Raw:
    """CreateUploadVideo signed by the documented V3 algorithm, read by http.client."""
    monkeypatch.setattr(test_vodsandbox, "send", _raw_send)
    return v3_call(sandbox, "CreateUploadVideo",
                   {"Title": "Clip", "FileName": "clip.mp4", **params})


def causes(exc: BaseException) -> list[BaseException]:
    """The chain under an SDK exception (inner exceptions, causes, unsuppressed contexts)."""
    chain, current = [], exc
    while current is not None and current not in chain:
        chain.append(current)
        context = None if current.__suppress_context__ else current.__context__
        current = getattr(current, "inner_exception", None) or current.__cause__ or context
    return chain


def sdk_failure(sandbox) -> list[BaseException]:
    with pytest.raises(Exception) as caught:
        sdk_client(sandbox).create_upload_video(VIDEO)
    return causes(caught.value)


# --- truncated ------------------------------------------------------------------------


def test_a_truncated_answer_announces_the_whole_body_and_sends_half(sandbox, monkeypatch):
    sandbox.faults.add(action="CreateUploadVideo", body="truncated")

    raw = raw_create_video(sandbox, monkeypatch)

    assert raw.status == 200
    assert isinstance(raw.error, http.client.IncompleteRead)
    announced = int(raw.headers["Content-Length"])
    assert len(raw.body) == announced // 2 and raw.body.startswith(b'{"RequestId"')
    # No code: the operation's own answer was cut, so VOD acted.
    assert sandbox.count_videos() == 1
    call = sandbox.calls[-1]
    assert (call["status"], call["code"], call["fault"]) == (200, None, "truncated")


def test_the_sdk_sees_a_truncated_answer_as_an_incomplete_read(sandbox):
    sandbox.faults.add(action="CreateUploadVideo", body="truncated", times=1)

    names = [type(error).__name__ for error in sdk_failure(sandbox)]

    assert "ChunkedEncodingError" in names and "IncompleteRead" in names
    # The connection is gone, the pool is not: the next call works.
    assert sdk_client(sandbox).create_upload_video(VIDEO).body.video_id
    assert sandbox.count_videos() == 2


def test_a_truncated_error_answer_does_not_act_unless_apply_after(sandbox, monkeypatch):
    sandbox.faults.add(action="CreateUploadVideo", code="InternalError", body="truncated",
                       times=1)
    sandbox.faults.add(action="CreateUploadVideo", code="InternalError", body="truncated",
                       apply_after=True, times=1)

    first = raw_create_video(sandbox, monkeypatch)
    assert first.status == 500 and isinstance(first.error, http.client.IncompleteRead)
    assert first.body.startswith(b'{"RequestId"') and sandbox.count_videos() == 0

    second = raw_create_video(sandbox, monkeypatch)
    assert second.status == 500 and sandbox.count_videos() == 1
    assert [call["code"] for call in sandbox.calls] == ["InternalError", "InternalError"]


# --- non-JSON -------------------------------------------------------------------------


def test_a_non_json_answer_is_an_html_page_with_the_answers_status(sandbox, monkeypatch):
    sandbox.faults.add(action="CreateUploadVideo", body="non_json")

    raw = raw_create_video(sandbox, monkeypatch)

    assert raw.error is None and raw.status == 200
    assert raw.headers["Content-Type"] == "text/html"
    assert raw.body.startswith(b"<html>") and b"200 OK" in raw.body
    assert int(raw.headers["Content-Length"]) == len(raw.body)
    assert sandbox.count_videos() == 1
    assert sandbox.calls[-1]["fault"] == "non_json"


def test_a_non_json_error_page_keeps_the_error_status(sandbox, monkeypatch):
    sandbox.faults.add(action="CreateUploadVideo", code="ServiceUnAvailable", body="non_json")

    raw = raw_create_video(sandbox, monkeypatch)

    assert raw.status == 503 and b"503 Service Unavailable" in raw.body
    assert sandbox.count_videos() == 0
    assert sandbox.calls[-1]["code"] == "ServiceUnAvailable"


def test_the_sdk_fails_to_parse_a_non_json_answer(sandbox):
    sandbox.faults.add(action="CreateUploadVideo", body="non_json", times=1)

    chain = sdk_failure(sandbox)

    assert any(type(error).__name__ == "JSONDecodeError" for error in chain)
    # Keep-alive survives an answer that was whole, only not JSON.
    assert sdk_client(sandbox).create_upload_video(VIDEO).body.video_id


# --- connection reset -----------------------------------------------------------------


def _is_reset(error: BaseException) -> bool:
    # A FIN would give http.client.RemoteDisconnected (a ConnectionResetError without errno).
    return isinstance(error, ConnectionResetError) and error.errno == errno.ECONNRESET


def test_a_reset_closes_the_connection_with_rst(sandbox, monkeypatch):
    sandbox.faults.add(action="CreateUploadVideo", reset=True)

    raw = raw_create_video(sandbox, monkeypatch)

    assert raw.status is None and _is_reset(raw.error), repr(raw.error)
    assert sandbox.count_videos() == 0
    call = sandbox.calls[-1]
    assert (call["status"], call["fault"]) == (None, "reset")


def test_the_sdk_sees_connection_reset_by_peer(sandbox):
    sandbox.faults.add(action="CreateUploadVideo", reset=True, times=1)

    chain = sdk_failure(sandbox)

    assert any(_is_reset(error) for error in chain), chain
    assert any(type(error).__name__ == "ConnectionError" for error in chain)
    assert sdk_client(sandbox).create_upload_video(VIDEO).body.video_id


def test_a_reset_after_applying_leaves_the_video_in_vod(sandbox):
    sandbox.faults.add(action="CreateUploadVideo", reset=True, apply_after=True, times=1)
    request = vod.CreateUploadVideoRequest(title="Clip", file_name="clip.mp4",
                                           reference_id="reset-after-apply")

    with pytest.raises(UnretryableException):  # the SDK's wrapper of a network failure
        sdk_client(sandbox).create_upload_video(request)

    assert sandbox.count_videos() == 1
    found = sdk_client(sandbox).refresh_upload_video(
        vod.RefreshUploadVideoRequest(reference_id="reset-after-apply"))
    assert sandbox.get_video(found.body.video_id)["ReferenceId"] == "reset-after-apply"


# --- rules ----------------------------------------------------------------------------


@pytest.mark.parametrize("arguments", [
    {"body": "garbled"},
    {"reset": True, "code": "InternalError"},
    {"reset": True, "timeout": True},
    {"reset": True, "body": "truncated"},
    {"timeout": True, "body": "non_json"},
])
def test_faults_that_cannot_happen_are_refused(sandbox, arguments):
    with pytest.raises(ValueError):
        sandbox.faults.add(action="CreateUploadVideo", **arguments)


def test_a_body_fault_answers_alone_and_spends_only_itself(sandbox):
    sandbox.faults.add(action="CreateUploadVideo", body="non_json", times=1)
    sandbox.faults.add(action="CreateUploadVideo", code="InternalError", times=1)

    sdk_failure(sandbox)  # the first fault answers; the second is not spent on this call

    assert [fault["fired"] for fault in sandbox.faults.list()] == [1, 0]


def test_the_control_endpoint_adds_body_and_reset_faults(sandbox):
    status, _, body = control(sandbox, "POST", "/faults",
                              {"action": "CreateUploadImage", "body": "truncated"})
    assert status == 201 and body["fault"]["body"] == "truncated"
    status, _, body = control(sandbox, "POST", "/faults", {"reset": True, "times": 1})
    assert status == 201 and body["fault"]["reset"] is True
    assert control(sandbox, "POST", "/faults", {"body": "html"})[0] == 400
