"""vodsandbox checks V3 (ACS3-HMAC-SHA256) and V1 (HMAC-SHA1) signatures as VOD's gateway does.

Requests come from the real SDK and from raw requests signed here by the documented
algorithms (tests/test_vodsandbox.py), so the verifier is not checked against itself.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from alibabacloud_vod20170321 import models as vod

from tests.test_vodsandbox import (
    KEY_ID,
    VIDEO,
    b64json,
    sdk_client,
    send,
    utc_stamp,
    v1_call,
    v3_call,
    vod_error,
)

TRICKY = {"Title": "Ein Titel + 標題 ~*/&=?'\"", "FileName": "mein film (1).MP4",
          "Description": "spaces  and\nline breaks", "Tags": "a b,c+d"}


def ago(seconds: float) -> str:
    return utc_stamp(datetime.now(UTC) - timedelta(seconds=seconds))


def test_the_sdk_signs_v3_by_default_and_v1_when_asked(sandbox):
    video_id = sdk_client(sandbox).create_upload_video(VIDEO).body.video_id
    info = sdk_client(sandbox, v1=True).get_video_info(vod.GetVideoInfoRequest(video_id=video_id))

    assert info.body.video.video_id == video_id
    assert [c["signature_version"] for c in sandbox.calls] == ["v3", "v1"]
    assert [c["action"] for c in sandbox.calls] == ["CreateUploadVideo", "GetVideoInfo"]


def test_every_v1_sdk_operation_is_accepted(sandbox):
    client = sdk_client(sandbox, v1=True)
    created = client.create_upload_video(vod.CreateUploadVideoRequest(
        title=TRICKY["Title"], file_name=TRICKY["FileName"], tags=TRICKY["Tags"]))
    assert sandbox.get_video(created.body.video_id)["Title"] == TRICKY["Title"]
    assert client.refresh_upload_video(
        vod.RefreshUploadVideoRequest(video_id=created.body.video_id)).body.upload_auth
    assert client.create_upload_image(vod.CreateUploadImageRequest(image_type="cover"))
    assert client.create_upload_attached_media(
        vod.CreateUploadAttachedMediaRequest(business_type="subtitle", media_ext="vtt"))


def test_raw_v3_request_with_awkward_characters_is_accepted(sandbox):
    status, headers, body = v3_call(sandbox, "CreateUploadVideo", TRICKY)

    assert status == 200, body
    assert headers["x-acs-request-id"] == body["RequestId"]
    assert sandbox.get_video(body["VideoId"])["Title"] == TRICKY["Title"]
    assert sandbox.calls[-1]["signature_version"] == "v3"


@pytest.mark.parametrize("in_body", [False, True], ids=["query", "form-body"])
def test_raw_v1_request_in_the_query_or_the_form_body(sandbox, in_body):
    status, _, body = v1_call(sandbox, "CreateUploadVideo", TRICKY, in_body=in_body)

    assert status == 200, body
    assert sandbox.get_video(body["VideoId"])["Description"] == TRICKY["Description"]
    assert sandbox.calls[-1]["signature_version"] == "v1"
    assert "Signature" not in sandbox.calls[-1]["params"]


@pytest.mark.parametrize("v1", [False, True], ids=["v3", "v1"])
def test_wrong_secret_is_signature_does_not_match(sandbox, v1):
    error = vod_error(lambda: sdk_client(sandbox, secret="not-the-secret", v1=v1)
                      .create_upload_video(VIDEO))

    assert (error.code, error.status_code) == ("SignatureDoesNotMatch", 400)
    assert error.data["Message"].startswith(
        "Specified signature is not matched with our calculation.")
    assert sandbox.count_videos() == 0
    assert sandbox.calls[-1]["code"] == "SignatureDoesNotMatch"


@pytest.mark.parametrize("v1", [False, True], ids=["v3", "v1"])
def test_unknown_access_key_is_not_found(sandbox, v1):
    error = vod_error(lambda: sdk_client(sandbox, key_id="NobodyKnowsThis", v1=v1)
                      .create_upload_video(VIDEO))

    assert (error.code, error.status_code) == ("InvalidAccessKeyId.NotFound", 404)
    assert error.data["Message"] == "Specified access key is not found."


@pytest.mark.parametrize("call", [v3_call, v1_call], ids=["v3", "v1"])
def test_dates_more_than_15_minutes_off_are_expired(sandbox, call):
    stamp = "date" if call is v3_call else "timestamp"
    for offset in (901, -901):
        status, _, body = call(sandbox, "GetVideoInfo", {"VideoId": "a" * 32},
                               **{stamp: ago(offset)})
        assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")
    # Within the window the request passes the gateway (and VOD finds no such video).
    assert call(sandbox, "GetVideoInfo", {"VideoId": "a" * 32}, **{stamp: ago(600)})[0] == 404


def test_malformed_date_is_a_format_error(sandbox):
    status, _, body = v3_call(sandbox, "GetVideoInfo", {"VideoId": "a" * 32},
                              date="25/11/2026 10:00")
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Format")


@pytest.mark.parametrize("call", [v3_call, v1_call], ids=["v3", "v1"])
def test_a_reused_nonce_is_refused(sandbox, call):
    first = call(sandbox, "CreateUploadVideo", {"Title": "a", "FileName": "a.mp4"}, nonce="n1")
    again = call(sandbox, "CreateUploadVideo", {"Title": "b", "FileName": "b.mp4"}, nonce="n1")

    assert first[0] == 200
    assert (again[0], again[2]["Code"]) == (400, "SignatureNonceUsed")
    assert again[2]["Message"] == "Specified signature nonce was used already."
    assert sandbox.count_videos() == 1


def test_a_forged_request_does_not_spend_the_nonce(sandbox):
    forged = v3_call(sandbox, "GetVideoInfo", {"VideoId": "a" * 32}, nonce="n2", secret="x")
    genuine = v3_call(sandbox, "GetVideoInfo", {"VideoId": "a" * 32}, nonce="n2")

    assert forged[2]["Code"] == "SignatureDoesNotMatch"
    assert genuine[2]["Code"] == "InvalidVideo.NotFound"


def test_tampering_after_signing_is_detected(sandbox):
    params = {"Title": "Clip", "FileName": "clip.mp4"}
    status, _, body = v3_call(sandbox, "CreateUploadVideo", params,
                              tamper=lambda q: q.replace("Clip", "Evil"))
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")

    status, _, body = v3_call(sandbox, "CreateUploadVideo", params, body=b"FileSize=1",
                              sent_body=b"FileSize=9")
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")

    status, _, body = v3_call(sandbox, "CreateUploadVideo", params, body=b"FileSize=1")
    assert status == 200 and sandbox.get_video(body["VideoId"])["FileSize"] == "1"


def test_missing_and_unsigned_required_headers(sandbox):
    status, _, body = v3_call(sandbox, "GetVideoInfo", {"VideoId": "a" * 32},
                              omit=["x-acs-signature-nonce"])
    assert (status, body["Code"]) == (400, "MissingParameter")
    assert "x-acs-signature-nonce" in body["Message"]

    status, _, body = v3_call(sandbox, "GetVideoInfo", {"VideoId": "a" * 32},
                              unsigned=["x-acs-date"])
    assert (status, body["Code"]) == (400, "IncompleteSignature")
    assert "x-acs-date" in body["Message"]


def test_no_signature_unknown_action_and_wrong_version(sandbox):
    status, _, body = send(f"{sandbox.base_url}/?Action=GetVideoInfo&VideoId=x")
    assert (status, body["Code"]) == (400, "MissingParameter")

    status, _, body = v3_call(sandbox, "DescribeEverything", {})
    assert (status, body["Code"]) == (404, "InvalidAction.NotFound")
    assert body["Message"] == "Specified api is not found, please check your url and method."

    status, _, body = v3_call(sandbox, "GetVideoInfo", {"VideoId": "a"}, version="2014-05-26")
    assert (status, body["Code"]) == (400, "InvalidVersion")


def test_unsupported_algorithm_is_incomplete_signature(sandbox):
    status, _, body = send(f"{sandbox.base_url}/", headers={
        "x-acs-action": "GetVideoInfo", "x-acs-version": "2017-03-21",
        "Authorization": "ACS3-HMAC-SM3 Credential=x,SignedHeaders=host,Signature=00"})
    assert (status, body["Code"]) == (400, "IncompleteSignature")


def test_errors_have_vods_shape_and_fresh_request_ids(sandbox):
    answers = [v3_call(sandbox, "GetVideoInfo", {"VideoId": "a" * 32}) for _ in range(3)]

    for status, headers, body in answers:
        assert status == 404
        assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}
        assert re.fullmatch(r"[0-9A-F]{8}(-[0-9A-F]{4}){3}-[0-9A-F]{12}", body["RequestId"])
        assert headers["x-acs-request-id"] == body["RequestId"]
        assert headers["Content-Type"].startswith("application/json")
        assert body["HostId"] == "vod.cn-shanghai.aliyuncs.com"
    assert len({body["RequestId"] for _, _, body in answers}) == 3


def test_the_call_log_records_who_asked_what(sandbox):
    v3_call(sandbox, "CreateUploadVideo", {"Title": "Clip", "FileName": "clip.mp4"})
    v1_call(sandbox, "GetVideoInfo", {"VideoId": "b" * 32}, key_id="Unknown")

    first, second = sandbox.calls
    assert first["params"] == {"Title": "Clip", "FileName": "clip.mp4"}
    assert (first["status"], first["code"], first["signature_version"]) == (200, None, "v3")
    assert (second["status"], second["code"]) == (404, "InvalidAccessKeyId.NotFound")
    assert second["signature_version"] == "v1" and second["params"] == {"VideoId": "b" * 32}
    assert sandbox.count_calls("GetVideoInfo") == 1 and KEY_ID not in str(sandbox.calls)


def test_upload_auth_is_never_in_the_call_log(sandbox):
    created = sdk_client(sandbox).create_upload_video(VIDEO).body
    secret = b64json(created.upload_auth)["AccessKeySecret"]
    assert secret not in str(sandbox.calls)
