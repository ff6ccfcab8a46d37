"""Every kind of VOD failure the sandbox can inject, through the three create endpoints.

For each fault: the client gets the mapped status and our error shape (`code`, `vod_code`,
a `detail`, the request id), the failure is on the row and in the audit trail, and once
`vod_sync` has run no row is left `requesting` and VOD keeps no media whose credential
reached nobody. Video creation, repeated after a lookup by ReferenceId, never makes a
second video.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import pytest
from django.core.management import call_command

from uploads import audit
from uploads.models import (
    AttachedMediaUpload,
    AuditEvent,
    ImageUpload,
    UploadStatus,
    VideoUpload,
)

pytestmark = pytest.mark.django_db(transaction=True)


@dataclass(frozen=True)
class Endpoint:
    path: str
    body: dict
    action: str
    model: type
    count: str  # the sandbox's counter of this kind of media


ENDPOINTS = {
    "video": Endpoint("/api/v1/videos/", {"title": "Clip", "file_name": "clip.mp4"},
                      "CreateUploadVideo", VideoUpload, "count_videos"),
    "image": Endpoint("/api/v1/images/", {"image_type": "default"}, "CreateUploadImage",
                      ImageUpload, "count_images"),
    "attached_media": Endpoint("/api/v1/attached-media/",
                               {"business_type": "watermark", "media_ext": "png"},
                               "CreateUploadAttachedMedia", AttachedMediaUpload,
                               "count_attached_media"),
}


@dataclass(frozen=True)
class Case:
    fault: dict
    status: int
    code: str
    vod_code: str
    # Whether VOD may have acted: the row waits for vod_sync instead of ending as failed.
    indeterminate: bool = True
    retry_after: bool = True
    # Whether the sandbox carried the call out (a body fault spoils a real answer).
    acted: bool = False
    extra: dict = field(default_factory=dict)


CASES = {
    "InternalError-500": Case({"code": "InternalError"}, 503, "vod_unavailable",
                              "InternalError"),
    "InternalError-502": Case({"code": "InternalError", "status": 502}, 503,
                              "vod_unavailable", "InternalError"),
    "ServiceUnAvailable-503": Case({"code": "ServiceUnAvailable"}, 503, "vod_unavailable",
                                   "ServiceUnAvailable"),
    "AddVideoFailed-503": Case({"code": "AddVideoFailed"}, 503, "vod_unavailable",
                               "AddVideoFailed"),
    "InternalError-504": Case({"code": "InternalError", "status": 504}, 503,
                              "vod_unavailable", "InternalError"),
    "timeout": Case({"timeout": True}, 504, "vod_timeout", "ReadTimeout"),
    "Throttling": Case({"code": "Throttling"}, 429, "vod_throttled", "Throttling",
                       indeterminate=False),
    "Throttling.User-retry-after": Case({"code": "Throttling.User", "retry_after": 7}, 429,
                                        "vod_throttled", "Throttling.User",
                                        indeterminate=False, extra={"Retry-After": "7"}),
    "truncated": Case({"body": "truncated"}, 502, "vod_bad_response", "IncompleteResponse",
                      acted=True),
    "non_json": Case({"body": "non_json"}, 502, "vod_bad_response", "BadResponse",
                     acted=True),
    "non_json-503-page": Case({"code": "ServiceUnAvailable", "body": "non_json"}, 502,
                              "vod_bad_response", "BadResponse"),
    "truncated-500": Case({"code": "InternalError", "body": "truncated"}, 502,
                          "vod_bad_response", "IncompleteResponse"),
    "reset": Case({"reset": True}, 503, "vod_unavailable", "ConnectionError"),
}


def run_vod_sync(time_passes):
    """vod_sync as cron runs it, once every row is older than its grace period."""
    time_passes()
    call_command("vod_sync", "--grace", "10")


def rows_requesting() -> int:
    return sum(endpoint.model.objects.filter(status=UploadStatus.REQUESTING).count()
               for endpoint in ENDPOINTS.values())


@pytest.mark.parametrize("kind", ENDPOINTS)
@pytest.mark.parametrize("case_name", CASES)
def test_a_fault_is_mapped_audited_and_resolved_by_vod_sync(case_name, kind, api, sandbox,
                                                           settings, capsys, time_passes):
    case, endpoint = CASES[case_name], ENDPOINTS[kind]
    settings.VOD_MAX_ATTEMPTS = 1  # the fault is met once; repeats have their own test below
    settings.VOD_READ_TIMEOUT_MS = 300
    sandbox.faults.add(action=endpoint.action, **case.fault)

    response = api.post(endpoint.path, endpoint.body, format="json")

    assert response.status_code == case.status, response.content
    body = response.json()
    assert (body["code"], body["vod_code"]) == (case.code, case.vod_code)
    assert body["detail"] and body["request_id"] == response["X-Request-ID"]
    assert ("Retry-After" in response) == case.retry_after
    for name, value in case.extra.items():
        assert response[name] == value
    row = endpoint.model.objects.get()
    assert row.error_code == case.vod_code
    assert row.status == (UploadStatus.REQUESTING if case.indeterminate
                          else UploadStatus.FAILED)
    event = AuditEvent.objects.get(action=f"{row.kind}.credential.failed")
    assert event.outcome == "failure" and event.target_pk == str(row.pk)
    assert event.data["code"] == case.vod_code
    assert event.data["operation"] == endpoint.action
    assert event.request_id == body["request_id"]
    assert getattr(sandbox, endpoint.count)() == (1 if case.acted else 0)

    run_vod_sync(time_passes)
    capsys.readouterr()

    assert rows_requesting() == 0
    row.refresh_from_db()
    assert row.status == UploadStatus.FAILED
    if case.acted:
        # The answer was lost, the media was not: found again (videos by ReferenceId, the
        # others by their marker tag) and deleted, since its credential reached nobody.
        assert row.vod_id and row.error_code == "CredentialNeverDelivered"
        assert AuditEvent.objects.filter(action="upload.discarded", target_vod_id=row.vod_id,
                                         target_pk=str(row.pk)).exists()
    else:
        # VOD was asked and said it holds nothing for the row.
        assert row.vod_id is None and row.error_code in (case.vod_code, "NotFoundInVod")
    assert getattr(sandbox, endpoint.count)() == 0
    assert audit.verify_chain().ok


@pytest.mark.parametrize("kind", ENDPOINTS)
def test_latency_under_the_read_timeout_only_slows_the_answer(kind, api, sandbox):
    endpoint = ENDPOINTS[kind]
    sandbox.faults.add(action=endpoint.action, latency=0.2)

    response = api.post(endpoint.path, endpoint.body, format="json")

    assert response.status_code == 201, response.content
    row = endpoint.model.objects.get()
    assert row.status == UploadStatus.UPLOADING
    assert AuditEvent.objects.filter(action=f"{row.kind}.credential.issued",
                                     target_pk=str(row.pk)).exists()


# Faults a repeat of CreateUploadVideo may mend; each also as "VOD acted, the answer was lost".
RETRIED = {
    "InternalError": {"code": "InternalError"},
    "ServiceUnAvailable": {"code": "ServiceUnAvailable"},
    "timeout": {"timeout": True},
    "truncated": {"body": "truncated"},
    "non_json": {"body": "non_json"},
    "reset": {"reset": True},
}


@pytest.mark.parametrize("attempts", [2, 3])
@pytest.mark.parametrize("times", [1, None], ids=["once", "always"])
@pytest.mark.parametrize("apply_after", [False, True], ids=["before", "after-acting"])
@pytest.mark.parametrize("fault_name", RETRIED)
def test_repeated_video_creation_never_makes_a_second_video(fault_name, apply_after, times,
                                                             attempts, api, sandbox,
                                                             settings, capsys, time_passes):
    settings.VOD_MAX_ATTEMPTS = attempts
    settings.VOD_READ_TIMEOUT_MS = 300
    fault = dict(RETRIED[fault_name], times=times)
    if "body" not in fault:  # a body fault always acts: it spoils a real answer
        fault["apply_after"] = apply_after
    # Every action: the repeat, and the refresh that finds a lost video, meet it too.
    sandbox.faults.add(action="*", **fault)

    response = api.post("/api/v1/videos/", ENDPOINTS["video"].body, format="json")

    row = VideoUpload.objects.get()
    assert sandbox.count_calls("CreateUploadVideo") <= attempts
    assert sandbox.count_videos() <= 1
    if response.status_code == 201:
        assert row.status == UploadStatus.UPLOADING
        assert response.json()["video_id"] == row.vod_id
        assert sandbox.get_video(row.vod_id)["ReferenceId"] == row.reference_id
    else:
        assert response.status_code in (502, 503, 504), response.content
        assert row.status == UploadStatus.REQUESTING
    if times == 1:
        assert response.status_code == 201, "one passing fault is mended by the repeat"

    sandbox.faults.clear()
    run_vod_sync(time_passes)
    capsys.readouterr()

    row.refresh_from_db()
    assert rows_requesting() == 0
    videos = sandbox.state()["videos"]
    if response.status_code == 201:
        assert videos == [row.vod_id] and row.status == UploadStatus.UPLOADING
    else:
        # Never delivered: found by ReferenceId and deleted, or never made.
        assert videos == [] and row.status == UploadStatus.FAILED
        created = any(call["action"] == "CreateUploadVideo" and call["status"] != 400
                      and (call["fault"] is None or apply_after or "body" in fault)
                      for call in sandbox.calls)
        if row.vod_id:
            assert row.error_code == "CredentialNeverDelivered" and created
    assert audit.verify_chain().ok
