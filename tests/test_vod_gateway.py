"""The gateway (uploads.vod) driving the real SDK against the sandbox."""

import base64
import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.conftest import concurrently
from uploads import vod

REFERENCE = "0123456789abcdef0123456789abcdef"


def test_create_upload_video_returns_typed_decoded_result(sandbox):
    result = vod.create_upload_video(title="Clip", file_name="clip.mp4", reference_id=REFERENCE,
                                     file_size=10, tags="a,b")

    assert isinstance(result, vod.VideoCredential)
    assert result.video_id == result.media_id and len(result.video_id) == 32
    assert result.request_id
    address = json.loads(base64.b64decode(result.upload_address))
    assert result.address == vod.UploadAddress(endpoint=address["Endpoint"],
                                               bucket=address["Bucket"],
                                               object_key=address["FileName"])
    auth = json.loads(base64.b64decode(result.upload_auth))
    assert result.credential.access_key_id == auth["AccessKeyId"]
    assert result.credential.security_token == auth["SecurityToken"]
    assert timedelta(seconds=2990) <= result.expires_at - timezone.now() <= timedelta(seconds=3000)
    sent = sandbox.get_video(result.video_id)
    assert sent["ReferenceId"] == REFERENCE
    assert sandbox.calls[-1]["signature_version"] == "v3"


def test_results_never_show_secrets_in_repr(sandbox):
    result = vod.create_upload_video(title="Clip", file_name="clip.mp4", reference_id=REFERENCE)
    text = repr(result)
    assert result.credential.access_key_secret not in text
    assert result.credential.security_token not in text
    assert result.upload_auth not in text


def test_refresh_by_video_id_and_by_reference_id(sandbox):
    created = vod.create_upload_video(title="Clip", file_name="clip.mp4", reference_id=REFERENCE)

    by_id = vod.refresh_upload_video(video_id=created.video_id)
    by_reference = vod.refresh_upload_video(reference_id=REFERENCE)

    assert by_id.video_id == by_reference.video_id == created.video_id
    assert by_id.address == created.address == by_reference.address
    assert len({created.credential.access_key_id, by_id.credential.access_key_id,
                by_reference.credential.access_key_id}) == 3


def test_duplicate_reference_id_is_its_own_error(sandbox):
    vod.create_upload_video(title="Clip", file_name="clip.mp4", reference_id=REFERENCE)
    with pytest.raises(vod.VodDuplicateReference) as caught:
        vod.create_upload_video(title="Again", file_name="clip.mp4", reference_id=REFERENCE)
    assert caught.value.request_id
    assert sandbox.count_videos() == 1


def test_image_and_attached_media(sandbox):
    image = vod.create_upload_image(image_type="cover", image_ext="jpg", title="Poster")
    media = vod.create_upload_attached_media(business_type="watermark", media_ext="png")

    assert image.image_url and image.file_url and image.address.object_key.endswith(".jpg")
    assert media.media_url and media.file_url and media.address.object_key.endswith(".png")
    assert sandbox.get_image(image.media_id) and sandbox.get_attached_media(media.media_id)


def test_get_info_operations(sandbox):
    video = vod.create_upload_video(title="Clip", file_name="clip.mp4", reference_id=REFERENCE)
    image = vod.create_upload_image(image_type="default", image_ext="png")
    media = vod.create_upload_attached_media(business_type="material", media_ext="zip")

    assert vod.get_video_info(video.video_id).status == "Uploading"
    assert vod.get_image_info(image.media_id).status == "Uploading"
    batch = vod.get_attached_media_info([media.media_id, "f" * 32])
    assert batch.found[media.media_id].status == "Uploading"
    assert batch.missing == ("f" * 32,)
    with pytest.raises(vod.VodNotFound):
        vod.get_video_info("e" * 32)


def test_vod_errors_carry_code_status_request_id_and_retryability(sandbox):
    sandbox.faults.add(action="CreateUploadImage", code="Throttling")
    with pytest.raises(vod.VodThrottled) as caught:
        vod.create_upload_image(image_type="default", image_ext="png")
    error = caught.value
    assert (error.code, error.http_status, error.retryable) == ("Throttling", 400, True)
    assert error.request_id and error.operation == "CreateUploadImage"

    with pytest.raises(vod.VodInvalidInput) as caught:
        vod.create_upload_video(title="x" * 129, file_name="clip.mp4", reference_id=REFERENCE)
    assert caught.value.code == "LengthExceededMax" and caught.value.retryable is False


def test_one_client_per_settings_rebuilt_when_settings_change(settings, sandbox):
    first = vod.get_client()
    assert vod.get_client() is first
    settings.VOD_READ_TIMEOUT_MS = 1234
    assert vod.get_client() is not first


def _resolve_in_fresh_process(env: dict) -> str:
    """Build the production client in a new process (the credentials package reads the
    environment when imported) and report what it resolved."""
    import os
    import subprocess
    import sys

    code = ("from uploads import vod; "
            "ok = vod.credentials_resolvable(); "
            "print(ok, vod.get_client().get_access_key_id() if ok else '-')")
    base = {key: value for key, value in os.environ.items()
            if not key.startswith("ALIBABA_CLOUD_")}
    completed = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
        env={**base, "DJANGO_SETTINGS_MODULE": "vodportal.settings", "DJANGO_DEBUG": "true",
             "VOD_SANDBOX": "false", "HOME": "/nonexistent", **env},
        capture_output=True, text=True, timeout=60, check=True)
    return completed.stdout.strip()


def test_production_client_uses_the_credentials_chain():
    """Outside the sandbox the SDK gets its AccessKey from the default chain (here: the
    environment), never from settings."""
    resolved = _resolve_in_fresh_process({"ALIBABA_CLOUD_ACCESS_KEY_ID": "FromTheEnv",
                                          "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "env-secret"})
    assert resolved == "True FromTheEnv"


def test_without_credentials_the_chain_fails_fast_and_never_asks_ecs_metadata():
    """Settings disable the chain's ECS metadata step (100.100.100.200) unless
    VOD_USE_ECS_RAM_ROLE is set, so a missing key is reported at once."""
    assert _resolve_in_fresh_process({}) == "False -"


def test_the_sdk_keeps_a_connection_for_every_call_in_flight(settings, sandbox, caplog):
    """50 calls waiting on VOD at once (as a gevent worker has when VOD is slow): the SDK's
    pool keeps VOD_HTTP_CONNECTIONS connections, so none is thrown away after its call. With
    the SDK's default of 40, urllib3 discards the ten past it ("Connection pool is full")."""
    settings.VOD_HTTP_CONNECTIONS = 60
    created = vod.create_upload_video(title="Clip", file_name="clip.mp4", reference_id=REFERENCE)
    sandbox.faults.add(action="RefreshUploadVideo", latency=1.0)
    in_flight = 50

    with caplog.at_level(logging.WARNING, logger="urllib3.connectionpool"):
        results = concurrently(
            *[lambda: vod.refresh_upload_video(video_id=created.video_id)] * in_flight)

    assert [result.video_id for result in results] == [created.video_id] * in_flight
    assert sandbox.count_calls("RefreshUploadVideo") == in_flight
    assert not [record for record in caplog.records if "pool is full" in record.getMessage()]
