"""vodsandbox serves browsers as a VOD bucket with a CORS rule does, and the requests ali-oss's
browser bundle sends.

The requests here are built by hand the way ali-oss 6.x builds them in a browser given the
sandbox's IP endpoint (checked against the real bundle in Chromium, see
test_web_upload_browser.py): the key alone as the path (the bucket would ride in a Host
header, which browsers may not set), `x-oss-date` instead of Date, `x-oss-user-agent`, the
STS token, and a V1 signature over `/<bucket>/<key>`. None of these tests touch the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime
from email.utils import format_datetime
from urllib.parse import quote
from xml.etree import ElementTree

import pytest

from tests.test_vodsandbox import control
from tests.test_vodsandbox_oss import error_fields, image, raw, video
from vodsandbox import SandboxConfig
from vodsandbox.config import DEFAULT_CORS_ORIGINS

PORTAL = "http://127.0.0.1:8000"
ALI_OSS_HEADERS = "authorization,content-type,x-oss-date,x-oss-security-token,x-oss-user-agent"


def preflight(sandbox, path, *, origin=PORTAL, method="PUT", headers=ALI_OSS_HEADERS):
    sent = {"Access-Control-Request-Method": method}
    if origin:
        sent["Origin"] = origin
    if headers:
        sent["Access-Control-Request-Headers"] = headers
    return raw(sandbox, "OPTIONS", path, sent)


def ali_oss(sandbox, upload, method, *, key=None, sub="", body=b"", origin=PORTAL,
            signed_bucket=None):
    """A request as ali-oss's browser bundle sends it to an IP endpoint (V1, STS)."""
    key = key or upload.key
    headers = {"x-oss-date": format_datetime(datetime.now(UTC), usegmt=True),
               "x-oss-security-token": upload.auth["SecurityToken"],
               "x-oss-user-agent": "aliyun-sdk-js/6.23.0 Chrome",
               "Content-Type": "video/mp4"}
    if origin:
        headers["Origin"] = origin
    oss_headers = "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)
                          if name.startswith("x-oss-"))
    resource = f"/{signed_bucket or sandbox.bucket}/{key}" + (f"?{sub}" if sub else "")
    # ali-oss puts x-oss-date where V1 has the Date (a browser may not set Date itself).
    to_sign = "\n".join([method, "", headers["Content-Type"], headers["x-oss-date"],
                         oss_headers + resource])
    signature = base64.b64encode(hmac.new(upload.auth["AccessKeySecret"].encode(),
                                          to_sign.encode(), hashlib.sha1).digest()).decode()
    headers["Authorization"] = f"OSS {upload.auth['AccessKeyId']}:{signature}"
    return raw(sandbox, method, f"/{quote(key)}" + (f"?{sub}" if sub else ""), headers, body)


def cors_headers(headers: dict) -> dict:
    return {name: value for name, value in headers.items()
            if name.lower().startswith("access-control-")}


# --- preflight ---------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["key only (ali-oss)", "path-style"])
def test_a_preflight_from_a_loopback_page_gets_the_rules_headers(sandbox, style):
    upload = video(sandbox)
    path = f"/{upload.key}" if style.startswith("key") else f"/{sandbox.bucket}/{upload.key}"

    status, headers, body = preflight(sandbox, f"{path}?partNumber=1&uploadId=X")

    assert (status, body) == (200, b"")
    assert headers["Access-Control-Allow-Origin"] == PORTAL
    assert headers["Access-Control-Allow-Methods"] == "GET, PUT, POST, DELETE, HEAD"
    assert headers["Access-Control-Allow-Headers"] == ", ".join(ALI_OSS_HEADERS.split(","))
    assert headers["Access-Control-Expose-Headers"] == "ETag, x-oss-request-id"
    assert headers["Access-Control-Max-Age"] == "600"
    assert headers["Vary"] == "Origin"
    assert len(headers["x-oss-request-id"]) == 24
    logged = sandbox.oss_requests[-1]
    assert (logged["operation"], logged["method"], logged["key"], logged["status"]) == (
        "Options", "OPTIONS", upload.key, 200)


def test_localhost_any_port_and_every_header_ali_oss_may_send_are_allowed(sandbox):
    status, headers, _ = preflight(
        sandbox, "/sv/abc/abc.mp4?uploads", origin="http://localhost:5173", method="POST",
        headers="Authorization,Content-MD5,Content-Type,x-oss-date,x-oss-security-token,"
                "x-oss-user-agent,x-oss-content-sha256,x-oss-meta-author")
    assert status == 200
    assert headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert "x-oss-meta-author" in headers["Access-Control-Allow-Headers"]


@pytest.mark.parametrize("origin,method,headers", [
    ("http://evil.example", "PUT", ALI_OSS_HEADERS),     # an origin the rule does not list
    ("https://127.0.0.1:8000", "PUT", ALI_OSS_HEADERS),  # https is another origin
    (PORTAL, "PATCH", ALI_OSS_HEADERS),                  # a method the rule does not allow
    (PORTAL, "PUT", "authorization,x-evil"),             # a header it does not allow
    (None, "PUT", ALI_OSS_HEADERS),                      # no Origin at all
])
def test_a_preflight_the_rule_does_not_cover_is_refused_without_cors_headers(
        sandbox, origin, method, headers):
    upload = video(sandbox)

    status, answer, body = preflight(sandbox, f"/{upload.key}", origin=origin, method=method,
                                     headers=headers)

    assert status == 403
    assert error_fields(body)["Code"] == "AccessForbidden"
    assert "CORS request is not allowed" in error_fields(body)["Message"]
    assert cors_headers(answer) == {}
    assert sandbox.oss_requests[-1]["code"] == "AccessForbidden"


def test_a_preflight_for_another_vod_bucket_is_no_such_bucket(sandbox):
    status, headers, body = preflight(sandbox, "/outin-elsewhere/sv/a/a.mp4")
    assert status == 404 and error_fields(body)["Code"] == "NoSuchBucket"
    assert cors_headers(headers) == {}


def test_the_allowed_origins_are_configurable_until_reset(sandbox):
    upload = video(sandbox)
    sandbox.configure(cors_origins=("https://*.example.com",))

    assert preflight(sandbox, f"/{upload.key}", origin="https://portal.example.com")[0] == 200
    assert preflight(sandbox, f"/{upload.key}")[0] == 403

    status, _, answer = control(sandbox, "POST", "/config", {"cors_origins": [PORTAL]})
    assert status == 200 and answer["config"]["cors_origins"] == [PORTAL]
    assert preflight(sandbox, f"/{upload.key}")[0] == 200

    sandbox.reset()
    assert sandbox.config.cors_origins == DEFAULT_CORS_ORIGINS


def test_cors_origins_are_checked_when_configured():
    assert SandboxConfig(cors_origins="http://127.0.0.1:*").cors_origins == (
        "http://127.0.0.1:*",)
    with pytest.raises(ValueError, match="cors_origins"):
        SandboxConfig(cors_origins=("",))


# --- actual requests ---------------------------------------------------------------------


def test_ali_oss_requests_with_the_key_alone_store_the_object_and_expose_the_etag(sandbox):
    upload = video(sandbox)
    data = b"\x00\x00\x00\x18ftypmp42" + bytes(1000)

    status, headers, _ = ali_oss(sandbox, upload, "PUT", body=data)

    assert status == 200, headers
    assert headers["Access-Control-Allow-Origin"] == PORTAL
    assert headers["Access-Control-Expose-Headers"] == "ETag, x-oss-request-id"
    assert headers["ETag"] == f'"{hashlib.md5(data).hexdigest().upper()}"'
    assert sandbox.get_object(upload.key) == data
    logged = sandbox.oss_requests[-1]
    assert (logged["operation"], logged["key"], logged["signature_version"]) == (
        "PutObject", upload.key, "v1")
    assert sandbox.get_video(upload.media_id)["Status"] == "UploadSucc"


def test_ali_oss_multipart_requests_with_the_key_alone(sandbox):
    upload = video(sandbox)
    status, headers, body = ali_oss(sandbox, upload, "POST", sub="uploads")
    assert status == 200 and headers["Access-Control-Allow-Origin"] == PORTAL
    upload_id = ElementTree.fromstring(body).findtext("UploadId")
    part = bytes(200 * 1024)

    status, headers, _ = ali_oss(sandbox, upload, "PUT", sub=f"partNumber=1&uploadId={upload_id}",
                                 body=part)
    assert status == 200
    listed = (f"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber>"
              f"<ETag>{headers['ETag']}</ETag></Part></CompleteMultipartUpload>").encode()
    status, headers, _ = ali_oss(sandbox, upload, "POST", sub=f"uploadId={upload_id}",
                                 body=listed)

    assert status == 200 and headers["Access-Control-Allow-Origin"] == PORTAL
    assert sandbox.get_object(upload.key) == part


def test_errors_carry_the_cors_headers_so_a_page_can_read_why(sandbox):
    upload = video(sandbox)
    sandbox.clock.advance(3001)

    status, headers, body = ali_oss(sandbox, upload, "PUT", body=b"late")

    assert status == 403 and error_fields(body)["Code"] == "SecurityTokenExpired"
    assert headers["Access-Control-Allow-Origin"] == PORTAL
    assert "x-oss-request-id" in headers["Access-Control-Expose-Headers"]

    # An anonymous HEAD: the error document travels in x-oss-err, with the CORS headers.
    status, headers, _ = raw(sandbox, "HEAD", f"/{sandbox.bucket}/{upload.key}",
                             {"Origin": PORTAL})
    assert status == 403 and headers["Access-Control-Allow-Origin"] == PORTAL
    assert "x-oss-err" in headers


def test_a_page_of_another_origin_gets_no_cors_headers(sandbox):
    upload = video(sandbox)

    status, headers, _ = ali_oss(sandbox, upload, "PUT", body=b"x", origin="http://evil.example")

    # The server does not stop it (OSS neither): the browser hides the answer from the page.
    assert status == 200 and cors_headers(headers) == {}
    status, headers, _ = ali_oss(sandbox, upload, "PUT", body=b"x", origin=None)
    assert status == 200 and cors_headers(headers) == {}


def test_the_key_alone_still_needs_the_bucket_in_the_signature_and_the_right_key(sandbox):
    mine, theirs = video(sandbox), image(sandbox)

    status, _, body = ali_oss(sandbox, mine, "PUT", body=b"x", signed_bucket="outin-other")
    assert status == 403 and error_fields(body)["Code"] == "SignatureDoesNotMatch"

    status, headers, body = ali_oss(sandbox, mine, "PUT", key=theirs.key, body=b"x")
    assert status == 403 and error_fields(body)["Code"] == "AccessDenied"
    assert headers["Access-Control-Allow-Origin"] == PORTAL
    assert sandbox.get_object(theirs.key) is None


def test_unsigned_requests_and_the_vod_api_stay_as_they_were(sandbox):
    upload = video(sandbox)
    # No signature and no preflight: not the bucket's business (VOD answers, as before).
    status, _, _ = raw(sandbox, "GET", f"/{upload.key}", {"Origin": PORTAL})
    assert status == 404
    # OPTIONS on VOD's own path is not a preflight to the bucket.
    status, headers, _ = raw(sandbox, "OPTIONS", "/", {
        "Origin": PORTAL, "Access-Control-Request-Method": "POST"})
    assert status != 200 and cors_headers(headers) == {}
