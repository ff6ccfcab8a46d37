"""vodsandbox's OSS side and its event notifications, with oss2 (the official OSS SDK).

Credentials come from the sandbox's own Create*/RefreshUploadVideo through the real VOD SDK.
Raw requests are signed here by OSS's documented V1 algorithm, written independently of the
sandbox's verifier; callback signatures are checked by VOD's documented md5 rule. None of
these tests touch the database.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import itertools
import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote
from xml.etree import ElementTree

import oss2
import pytest
from alibabacloud_vod20170321 import models as vod

from tests.test_vodsandbox import KEY_ID, SECRET, VIDEO, b64json, control, sdk_client
from vodsandbox import Sandbox, SandboxConfig
from vodsandbox.__main__ import build_parser

AUTH_KEY = "sandboxAuthKey0123456789"
KB = 1024
# Real small files (made with ffmpeg): the sandbox fails an upload whose bytes are not a
# media file of the declared kind, so tests that expect success upload these.
SAMPLES = Path(__file__).resolve().parent.parent / "vodsandbox" / "samples"
MP4 = (SAMPLES / "sample.mp4").read_bytes()
PNG = (SAMPLES / "sample.png").read_bytes()


# --- helpers ---------------------------------------------------------------------------


class Upload:
    """A media the sandbox issued, with its decoded UploadAddress and UploadAuth."""

    def __init__(self, media_id: str, address: str, auth: str) -> None:
        self.media_id = media_id
        self.address = b64json(address)
        self.auth = b64json(auth)
        self.key = self.address["FileName"]

    def bucket(self, *, secret=None, token=None, v4=False) -> oss2.Bucket:
        """oss2 with StsAuth, exactly as a client uploads with VOD's credential."""
        auth = oss2.StsAuth(self.auth["AccessKeyId"], secret or self.auth["AccessKeySecret"],
                            token or self.auth["SecurityToken"],
                            auth_version=oss2.AUTH_VERSION_4 if v4 else oss2.AUTH_VERSION_1)
        return oss2.Bucket(auth, self.address["Endpoint"], self.address["Bucket"],
                           region="cn-shanghai" if v4 else None)


def video(sandbox, **params) -> Upload:
    body = sdk_client(sandbox).create_upload_video(
        vod.CreateUploadVideoRequest(title="Clip", file_name="clip.mp4", **params)).body
    return Upload(body.video_id, body.upload_address, body.upload_auth)


def image(sandbox, **params) -> Upload:
    body = sdk_client(sandbox).create_upload_image(
        vod.CreateUploadImageRequest(image_type="default", image_ext="png", **params)).body
    return Upload(body.image_id, body.upload_address, body.upload_auth)


def attached(sandbox, **params) -> Upload:
    body = sdk_client(sandbox).create_upload_attached_media(
        vod.CreateUploadAttachedMediaRequest(business_type="subtitle", media_ext="vtt",
                                             **params)).body
    return Upload(body.media_id, body.upload_address, body.upload_auth)


def oss_error(call) -> oss2.exceptions.OssError:
    with pytest.raises(oss2.exceptions.OssError) as caught:
        call()
    return caught.value


def signed_v1(sandbox, method, key, *, key_id, secret, token=None, body=b"", sub="",
              headers=None, date=None):
    """A raw request signed by OSS's documented V1 algorithm; (status, headers, body)."""
    headers = {"Date": date or format_datetime(datetime.now(UTC), usegmt=True),
               "Content-Type": "application/octet-stream", **(headers or {})}
    if token:
        headers["x-oss-security-token"] = token
    oss_headers = "".join(f"{k.lower()}:{v}\n" for k, v in
                          sorted(headers.items(), key=lambda kv: kv[0].lower())
                          if k.lower().startswith("x-oss-"))
    resource = f"/{sandbox.bucket}/{key}" + (f"?{sub}" if sub else "")
    to_sign = "\n".join([method, headers.get("Content-MD5", ""), headers["Content-Type"],
                         headers["Date"], oss_headers + resource])
    signature = base64.b64encode(hmac.new(secret.encode(), to_sign.encode(),
                                          hashlib.sha1).digest()).decode()
    headers["Authorization"] = f"OSS {key_id}:{signature}"
    return raw(sandbox, method, f"/{sandbox.bucket}/{quote(key)}" + (f"?{sub}" if sub else ""),
               headers, body)


def raw(sandbox, method, path, headers=None, body=b""):
    connection = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, dict(response.headers), response.read()
    finally:
        connection.close()


def error_fields(body: bytes) -> dict:
    root = ElementTree.fromstring(body)
    assert root.tag == "Error"
    return {child.tag: child.text for child in root}


def multipart_etag(*parts: bytes) -> str:
    """OSS's multipart ETag: MD5 of the parts' binary MD5s, then -<count>, upper case."""
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f"{hashlib.md5(digests).hexdigest().upper()}-{len(parts)}"


class Receiver:
    """A local HTTP callback receiver answering a scripted list of statuses (then 200)."""

    def __init__(self, statuses=()) -> None:
        self.statuses = list(statuses)
        self.received: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                receiver.received.append({"at": time.monotonic(), "path": self.path,
                                          "headers": dict(self.headers),
                                          "json": json.loads(body)})
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/vod/events"
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(2)


@pytest.fixture
def receiver(sandbox):
    """A receiver the sandbox notifies, signing with AUTH_KEY and transcoding quickly."""
    server = Receiver()
    sandbox.configure(callback_url=server.url, callback_auth_key=AUTH_KEY,
                      transcode_delay=0.2)
    yield server
    sandbox.reset()  # drops pending deliveries before the receiver goes away
    server.close()


# --- PutObject and the status progression ----------------------------------------------


def test_put_object_stores_the_file_and_moves_the_video_to_normal(sandbox, receiver):
    sandbox.configure(transcode_delay=1.0)  # UploadSucc lasts a quarter of it
    upload = video(sandbox)
    data = MP4

    result = upload.bucket().put_object(upload.key, data)

    assert result.status == 200
    assert result.etag == hashlib.md5(data).hexdigest().upper()
    assert sandbox.get_object(upload.key) == data
    assert sandbox.get_video(upload.media_id)["Status"] == "UploadSucc"
    assert sandbox.get_video(upload.media_id)["Size"] == len(data)
    done = sandbox.wait_for_notifications(1, event_type="TranscodeComplete", delivered=True)
    assert sandbox.get_video(upload.media_id)["Status"] == "Normal"
    assert done[0]["payload"]["StreamInfos"][0]["Status"] == "success"
    info = sdk_client(sandbox).get_video_info(vod.GetVideoInfoRequest(
        video_id=upload.media_id)).body.video
    assert (info.status, info.size) == ("Normal", len(data))
    assert upload.bucket().get_object(upload.key).read() == data


def test_events_are_signed_as_vod_signs_and_carry_vods_fields(sandbox, receiver):
    upload = video(sandbox, user_data=json.dumps({"Extend": {"order": 7}}))
    upload.bucket().put_object(upload.key, MP4)
    sandbox.wait_for_notifications(1, event_type="TranscodeComplete", delivered=True)

    first, second = receiver.received[0], receiver.received[-1]
    assert [first["json"]["EventType"], second["json"]["EventType"]] == [
        "FileUploadComplete", "TranscodeComplete"]
    for delivery in receiver.received:
        stamp = delivery["headers"]["X-VOD-TIMESTAMP"]
        expected = hashlib.md5(f"{receiver.url}|{stamp}|{AUTH_KEY}".encode()).hexdigest()
        assert delivery["headers"]["X-VOD-SIGNATURE"] == expected
        assert abs(int(stamp) - time.time()) < 10
        assert delivery["json"]["Extend"] == '{"order":7}'
    event = first["json"]
    assert event["VideoId"] == upload.media_id and event["Status"] == "success"
    assert event["Size"] == len(MP4)
    assert event["FileUrl"].endswith(f"/{sandbox.bucket}/{upload.key}")
    assert datetime.strptime(event["EventTime"], "%Y-%m-%dT%H:%M:%SZ")
    assert second["json"]["StreamInfos"][0]["FileUrl"] == event["FileUrl"]


def test_images_and_attached_media_are_normal_at_once(sandbox, receiver):
    picture, subtitle = image(sandbox), attached(sandbox)
    picture.bucket().put_object(picture.key, PNG)
    subtitle.bucket().put_object(subtitle.key, b"WEBVTT\n")

    assert sandbox.get_image(picture.media_id)["Status"] == "Normal"
    assert sandbox.get_attached_media(subtitle.media_id)["Status"] == "Normal"
    events = {r["event_type"]: r["payload"] for r in sandbox.wait_for_notifications(2)}
    assert events["ImageUploadComplete"]["ImageId"] == picture.media_id
    assert events["ImageUploadComplete"]["FileURL"].endswith(picture.key)
    assert events["AttachedMediaUploadComplete"]["AttachedMediaId"] == subtitle.media_id
    assert events["AttachedMediaUploadComplete"]["Size"] == 7
    assert sandbox.wait_until_idle(2)
    assert len(sandbox.notifications) == 2  # no transcoding for these kinds


def test_v4_signature_is_accepted(sandbox):
    upload = image(sandbox)
    assert upload.bucket(v4=True).put_object(upload.key, b"v4 bytes").status == 200
    assert sandbox.oss_requests[-1]["signature_version"] == "v4"
    assert upload.bucket(v4=True).get_object(upload.key).read() == b"v4 bytes"


# --- multipart -------------------------------------------------------------------------


def test_multipart_upload_assembles_the_parts(sandbox, receiver):
    upload = video(sandbox)
    bucket = upload.bucket()
    parts = [os.urandom(120 * KB), os.urandom(100 * KB), b"tail"]

    upload_id = bucket.init_multipart_upload(upload.key).upload_id
    infos = [oss2.models.PartInfo(n, bucket.upload_part(upload.key, upload_id, n, data).etag)
             for n, data in enumerate(parts, start=1)]
    assert sandbox.get_video(upload.media_id)["Status"] == "Uploading"
    result = bucket.complete_multipart_upload(upload.key, upload_id, infos)

    assert result.etag == multipart_etag(*parts)
    assert sandbox.get_object(upload.key) == b"".join(parts)
    head = bucket.head_object(upload.key)
    assert head.content_length == sum(map(len, parts)) and head.object_type == "Multipart"
    event = sandbox.wait_for_notifications(1, event_type="FileUploadComplete")[0]
    assert event["payload"]["Size"] == sum(map(len, parts))
    assert [r["operation"] for r in sandbox.oss_requests[:5]] == [
        "InitiateMultipartUpload", "UploadPart", "UploadPart", "UploadPart",
        "CompleteMultipartUpload"]


def test_complete_checks_order_etags_and_part_sizes(sandbox):
    upload = image(sandbox)
    bucket = upload.bucket()
    upload_id = bucket.init_multipart_upload(upload.key).upload_id
    small = bucket.upload_part(upload.key, upload_id, 1, b"too small").etag
    last = bucket.upload_part(upload.key, upload_id, 2, b"last").etag

    def complete(infos):
        # A raw body, since oss2 sorts the parts it is given.
        body = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>\"{e}\"</ETag></Part>"
                       for n, e in infos)
        return signed_v1(sandbox, "POST", upload.key, key_id=upload.auth["AccessKeyId"],
                         secret=upload.auth["AccessKeySecret"],
                         token=upload.auth["SecurityToken"], sub=f"uploadId={upload_id}",
                         body=f"<CompleteMultipartUpload>{body}</CompleteMultipartUpload>"
                         .encode())

    for infos, code in [([(2, last), (1, small)], "InvalidPartOrder"),
                        ([(1, small), (2, "0" * 32)], "InvalidPart"),
                        ([(1, small), (3, last)], "InvalidPart"),
                        ([(1, small), (2, last)], "EntityTooSmall")]:
        status, _, body = complete(infos)
        assert (status, error_fields(body)["Code"]) == (400, code), infos
    status, _, body = signed_v1(sandbox, "POST", upload.key, key_id=upload.auth["AccessKeyId"],
                                secret=upload.auth["AccessKeySecret"],
                                token=upload.auth["SecurityToken"],
                                sub=f"uploadId={upload_id}", body=b"<not xml")
    assert (status, error_fields(body)["Code"]) == (400, "MalformedXML")
    assert sandbox.get_image(upload.media_id)["Status"] == "Uploading"
    assert oss_error(lambda: bucket.complete_multipart_upload(
        upload.key, "F" * 32, [oss2.models.PartInfo(1, small)])).code == "NoSuchUpload"


def test_abort_drops_the_upload_and_its_parts(sandbox):
    upload = video(sandbox)
    bucket = upload.bucket()
    upload_id = bucket.init_multipart_upload(upload.key).upload_id
    etag = bucket.upload_part(upload.key, upload_id, 1, b"part").etag

    assert bucket.abort_multipart_upload(upload.key, upload_id).status == 204
    error = oss_error(lambda: bucket.upload_part(upload.key, upload_id, 2, b"more"))
    assert (error.status, error.code) == (404, "NoSuchUpload")
    assert oss_error(lambda: bucket.complete_multipart_upload(
        upload.key, upload_id, [oss2.models.PartInfo(1, etag)])).code == "NoSuchUpload"
    assert sandbox.get_object(upload.key) is None
    assert sandbox.get_video(upload.media_id)["Status"] == "Uploading"


# --- refusals --------------------------------------------------------------------------


def test_wrong_secret_gets_oss_signature_error_as_xml(sandbox):
    upload = video(sandbox)
    status, headers, body = signed_v1(sandbox, "PUT", upload.key,
                                      key_id=upload.auth["AccessKeyId"], secret="wrong",
                                      token=upload.auth["SecurityToken"], body=b"x")

    assert status == 403 and headers["Content-Type"] == "application/xml"
    fields = error_fields(body)
    assert fields["Code"] == "SignatureDoesNotMatch"
    assert fields["Message"].startswith("The request signature we calculated does not match")
    assert fields["RequestId"] == headers["x-oss-request-id"] and len(fields["RequestId"]) == 24
    assert fields["HostId"] == f"{sandbox.bucket}.oss-cn-shanghai.aliyuncs.com"
    assert fields["OSSAccessKeyId"] == upload.auth["AccessKeyId"]
    assert fields["StringToSign"].endswith(f"/{sandbox.bucket}/{upload.key}")
    assert fields["EC"] == headers["x-oss-ec"] == "0002-00000040"
    assert oss_error(lambda: upload.bucket(secret="wrong").put_object(
        upload.key, b"x")).code == "SignatureDoesNotMatch"
    assert sandbox.get_object(upload.key) is None


def test_unknown_missing_and_mismatched_credentials_are_refused(sandbox):
    upload, other = video(sandbox), video(sandbox)
    auth = upload.auth

    def put(**kwargs):
        args = {"key_id": auth["AccessKeyId"], "secret": auth["AccessKeySecret"],
                "token": auth["SecurityToken"], **kwargs}
        status, _, body = signed_v1(sandbox, "PUT", upload.key, body=b"x", **args)
        return status, error_fields(body)["Code"]

    assert put(key_id="STS.NotIssuedByTheSandbox00") == (403, "InvalidAccessKeyId")
    assert put(token=None) == (403, "InvalidAccessKeyId")
    assert put(token="CAIS" + "A" * 40) == (403, "InvalidSecurityToken")
    assert put(token=other.auth["SecurityToken"]) == (403,
                                                      "AccessKeyIdAndSecurityTokenNotMatch")
    status, _, body = raw(sandbox, "PUT", f"/{sandbox.bucket}/{quote(upload.key)}",
                          {"Content-Type": "application/octet-stream"}, b"x")
    assert (status, error_fields(body)["Code"]) == (403, "AccessDenied")  # anonymous
    assert sandbox.get_video(upload.media_id)["Status"] == "Uploading"


def test_expired_credential_is_refused_and_a_refreshed_one_accepted(sandbox):
    upload = video(sandbox)
    sandbox.clock.advance(3001)

    error = oss_error(lambda: upload.bucket().put_object(upload.key, b"late"))
    assert (error.status, error.code) == (403, "SecurityTokenExpired")
    assert error.message == "The security token you provided has expired."
    assert error.details["EC"] == "0002-00000007"

    body = sdk_client(sandbox).refresh_upload_video(
        vod.RefreshUploadVideoRequest(video_id=upload.media_id)).body
    fresh = Upload(body.video_id, body.upload_address, body.upload_auth)
    assert fresh.key == upload.key
    assert fresh.bucket().put_object(fresh.key, b"in time").status == 200
    assert sandbox.get_video(upload.media_id)["Status"] == "UploadSucc"


def test_credential_of_another_media_is_refused(sandbox):
    mine, theirs = video(sandbox), video(sandbox)

    error = oss_error(lambda: mine.bucket().put_object(theirs.key, b"overwrite"))
    assert (error.status, error.code) == (403, "AccessDenied")
    assert error.message == "Access denied by authorizer's policy."
    assert error.details["EC"] == "0003-00000301"
    assert oss_error(lambda: mine.bucket().init_multipart_upload(theirs.key)).code \
        == "AccessDenied"
    assert sandbox.get_object(theirs.key) is None
    assert sandbox.get_video(theirs.media_id)["Status"] == "Uploading"


def test_request_dates_are_checked_against_the_real_time(sandbox):
    upload = image(sandbox)
    auth = upload.auth
    stale = format_datetime(datetime.now(UTC) - timedelta(minutes=20), usegmt=True)
    status, _, body = signed_v1(sandbox, "PUT", upload.key, key_id=auth["AccessKeyId"],
                                secret=auth["AccessKeySecret"], token=auth["SecurityToken"],
                                body=b"x", date=stale)
    fields = error_fields(body)
    assert (status, fields["Code"]) == (403, "RequestTimeTooSkewed")
    assert fields["MaxAllowedSkewMilliseconds"] == "900000"

    sandbox.clock.advance(1000)  # ages the credential, not the client's clock
    assert upload.bucket().put_object(upload.key, b"fresh").status == 200


def test_content_md5_other_buckets_and_missing_objects(sandbox):
    upload = image(sandbox)
    bad_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    error = oss_error(lambda: upload.bucket().put_object(upload.key, b"x",
                                                         headers={"Content-MD5": bad_md5}))
    assert (error.status, error.code) == (400, "InvalidDigest")

    elsewhere = oss2.Bucket(oss2.StsAuth(upload.auth["AccessKeyId"],
                                         upload.auth["AccessKeySecret"],
                                         upload.auth["SecurityToken"]),
                            upload.address["Endpoint"], "outin-elsewhere")
    error = oss_error(lambda: elsewhere.put_object(upload.key, b"x"))
    assert (error.status, error.code) == (404, "NoSuchBucket")

    # The account's own AccessKey may read any key; HEAD errors come in x-oss-err.
    owner = oss2.Bucket(oss2.Auth(KEY_ID, SECRET), upload.address["Endpoint"],
                        upload.address["Bucket"])
    error = oss_error(lambda: owner.head_object("image/default/missing.png"))
    assert (error.status, error.code) == (404, "NoSuchKey")
    upload.bucket().put_object(upload.key, b"mine")
    assert owner.get_object(upload.key).read() == b"mine"


def test_vod_and_control_routes_are_unchanged(sandbox):
    assert sdk_client(sandbox).create_upload_video(VIDEO).body.video_id
    assert control(sandbox, "GET", "/state")[0] == 200
    status, _, body = raw(sandbox, "GET", "/somewhere-else")
    assert status == 404 and json.loads(body)["Code"] == "InvalidAction.NotFound"
    assert sandbox.oss_requests == []


# --- notifications ---------------------------------------------------------------------


def test_a_failing_receiver_gets_three_tries_a_second_apart(sandbox, receiver):
    receiver.statuses = [500, 204]  # only a 200 counts as delivered
    upload = image(sandbox)
    upload.bucket().put_object(upload.key, PNG)

    attempts = sandbox.wait_for_notifications(3, timeout=6)
    assert [(a["attempt"], a["status"], a["delivered"]) for a in attempts] == [
        (1, 500, False), (2, 204, False), (3, 200, True)]
    times = [delivery["at"] for delivery in receiver.received]
    assert all(0.9 <= later - earlier < 2.0 for earlier, later in itertools.pairwise(times))
    assert len({d["json"]["ImageId"] for d in receiver.received}) == 1


def test_an_event_is_dropped_after_three_failed_tries(sandbox, receiver):
    receiver.statuses = [503, 503, 503, 503]
    upload = attached(sandbox)
    upload.bucket().put_object(upload.key, b"WEBVTT")

    assert len(sandbox.wait_for_notifications(3, timeout=6)) == 3
    assert sandbox.wait_until_idle(3)
    assert len(receiver.received) == 3 and not any(r["delivered"]
                                                   for r in sandbox.notifications)


def test_userdata_callback_url_wins_and_no_url_means_no_event(sandbox, receiver):
    own = Receiver()
    try:
        sandbox.configure(callback_auth_key=None)
        upload = image(sandbox, user_data=json.dumps(
            {"MessageCallback": {"CallbackType": "http", "CallbackURL": own.url}}))
        upload.bucket().put_object(upload.key, PNG)
        record = sandbox.wait_for_notifications(1, delivered=True)[0]
        assert record["url"] == own.url and receiver.received == []
        assert "X-VOD-SIGNATURE" not in own.received[0]["headers"]  # no AuthKey: unsigned
    finally:
        sandbox.reset()
        own.close()

    silent = image(sandbox)  # reset: no callback_url configured any more
    silent.bucket().put_object(silent.key, PNG)
    assert sandbox.get_image(silent.media_id)["Status"] == "Normal"
    assert sandbox.wait_until_idle(2) and sandbox.notifications == []


def test_a_message_callback_given_as_a_json_string_is_used(sandbox, receiver):
    """VOD's own UserData example writes MessageCallback as a JSON string."""
    own = Receiver()
    try:
        upload = image(sandbox, user_data=json.dumps({"MessageCallback": json.dumps(
            {"CallbackType": "http", "CallbackURL": own.url})}))
        upload.bucket().put_object(upload.key, PNG)
        record = sandbox.wait_for_notifications(1, delivered=True)[0]
        assert record["url"] == own.url and receiver.received == []
    finally:
        sandbox.reset()
        own.close()


def test_callbacks_never_leave_loopback(sandbox):
    sandbox.configure(callback_url="http://192.0.2.10/vod/events")  # TEST-NET-1
    upload = image(sandbox)
    upload.bucket().put_object(upload.key, PNG)
    record = sandbox.wait_for_notifications(1)[0]
    assert record["status"] is None and record["error"].startswith("not sent")
    assert sandbox.wait_until_idle(2) and len(sandbox.notifications) == 1


def test_reset_drops_pending_transcoding_and_objects(sandbox, receiver):
    sandbox.configure(transcode_delay=1.2)  # its first step is 0.3 s after the upload
    upload = video(sandbox)
    upload.bucket().put_object(upload.key, b"v")
    sandbox.wait_for_notifications(1, event_type="FileUploadComplete")
    sandbox.reset()

    time.sleep(0.5)
    assert [d["json"]["EventType"] for d in receiver.received] == ["FileUploadComplete"]
    assert sandbox.notifications == [] and sandbox.get_object(upload.key) is None
    assert sandbox.config.transcode_delay == 0.5  # back to the initial config


def test_stop_leaves_no_notifier_thread():
    server = Receiver()
    sandbox = Sandbox(SandboxConfig(access_key_id=KEY_ID, access_key_secret=SECRET,
                                    callback_url=server.url, transcode_delay=30)).start()
    port = sandbox.port
    try:
        upload = image(sandbox)
        upload.bucket().put_object(upload.key, PNG)
        sandbox.wait_for_notifications(1)
        upload = video(sandbox)
        upload.bucket().put_object(upload.key, b"vid")  # transcoding pending for 30 s
    finally:
        sandbox.stop()
        server.close()
    assert not [t for t in threading.enumerate() if t.name.startswith(f"vodsandbox-{port}")]


def test_notification_settings_from_cli_and_control_endpoints(sandbox):
    args = build_parser().parse_args(["--callback-url", "http://127.0.0.1:9/cb",
                                      "--callback-auth-key", "k", "--transcode-delay", "2"])
    assert (args.callback_url, args.callback_auth_key, args.transcode_delay) == (
        "http://127.0.0.1:9/cb", "k", 2.0)
    status, _, body = control(sandbox, "POST", "/config", {"transcode_delay": 0.1,
                                                           "callback_auth_key": "k"})
    assert status == 200 and body["config"]["transcode_delay"] == 0.1
    assert "callback_auth_key" not in body["config"]
    assert control(sandbox, "GET", "/notifications")[2] == {"notifications": []}
    with pytest.raises(ValueError):
        sandbox.configure(transcode_delay=-1)
