"""vodsandbox's account: per-operation QPS limits (Throttling.User) and the ids every Create*
must name (template groups, storage locations, apps, categories), through the real SDK; their
command line and control API. None of these tests touch the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from alibabacloud_tea_openapi.exceptions import AlibabaCloudException
from alibabacloud_vod20170321 import models as vod

from tests.test_vodsandbox import ROOT, control, free_port, sdk_client, vod_error
from vodsandbox import SandboxConfig
from vodsandbox.__main__ import build_parser, config_from_args
from vodsandbox.operations import qps_limit_for

THROTTLED = ("Throttling.User", 400, "Request was denied due to user flow control.")


def video(**fields):
    fields.setdefault("title", "Clip")
    fields.setdefault("file_name", "clip.mp4")
    return vod.CreateUploadVideoRequest(**fields)


def image(**fields):
    return vod.CreateUploadImageRequest(image_type="default", **fields)


def attached(**fields):
    return vod.CreateUploadAttachedMediaRequest(business_type="watermark", media_ext="png",
                                                **fields)


def refusal(call) -> tuple[str, int, str]:
    error = vod_error(call)
    return error.code, error.status_code, error.data["Message"]


def burst(call, most: int) -> tuple[int, tuple | None, float]:
    """Call until the first refusal (at most `most` times): how many passed, the refusal
    (code, status, message) or None, and the seconds the burst took."""
    started = time.perf_counter()
    for passed in range(most):
        try:
            call()
        except AlibabaCloudException as error:
            return passed, (error.code, error.status_code, error.data["Message"]), \
                time.perf_counter() - started
    return most, None, time.perf_counter() - started


# --- QPS limits ------------------------------------------------------------------------


@pytest.mark.parametrize("region, action, limit", [
    ("cn-shanghai", "CreateUploadVideo", 80),
    ("eu-central-1", "RefreshUploadVideo", 40),
    ("cn-shanghai", "CreateUploadImage", 100),
    ("ap-northeast-1", "CreateUploadAttachedMedia", 100),
])
def test_documented_limits_refuse_the_call_past_them_with_throttling_user(
        sandbox, region, action, limit):
    sandbox.configure(region_id=region, qps_limits=None)  # the suite's sandbox has none
    client = sdk_client(sandbox)
    video_id = client.create_upload_video(video()).body.video_id if action == \
        "RefreshUploadVideo" else None
    calls = {
        "CreateUploadVideo": lambda: client.create_upload_video(video()),
        "RefreshUploadVideo": lambda: client.refresh_upload_video(
            vod.RefreshUploadVideoRequest(video_id=video_id)),
        "CreateUploadImage": lambda: client.create_upload_image(image()),
        "CreateUploadAttachedMedia": lambda: client.create_upload_attached_media(attached()),
    }

    passed, refused, seconds = burst(calls[action], limit + 1)

    if seconds >= 1:
        pytest.skip(f"{limit + 1} calls took {seconds:.2f} s: too slow to fill one window")
    assert (passed, refused) == (limit, THROTTLED)
    assert sandbox.calls[-1]["code"] == "Throttling.User"
    # Windows are per action: another one still gets through.
    other = "CreateUploadAttachedMedia" if action == "CreateUploadImage" else "CreateUploadImage"
    assert calls[other]()


def test_limits_follow_the_region_and_leave_other_actions_unlimited():
    shanghai, frankfurt, elsewhere = (SandboxConfig(region_id=region) for region in
                                      ("cn-shanghai", "eu-central-1", "cn-hangzhou"))
    assert [qps_limit_for(shanghai, action) for action in (
        "CreateUploadVideo", "RefreshUploadVideo", "CreateUploadImage",
        "CreateUploadAttachedMedia", "GetVideoInfo", "DeleteVideo")] == [
        80, 80, 100, 100, None, None]
    assert qps_limit_for(frankfurt, "CreateUploadVideo") == 40
    assert qps_limit_for(elsewhere, "RefreshUploadVideo") == 40


def test_configured_per_action_limits_replace_the_documented_ones(sandbox):
    sandbox.configure(qps_limits={"GetVideoInfo": 2})
    client = sdk_client(sandbox)
    video_id = client.create_upload_video(video()).body.video_id
    get = vod.GetVideoInfoRequest(video_id=video_id)

    assert client.get_video_info(get) and client.get_video_info(get)
    assert refusal(lambda: client.get_video_info(get)) == THROTTLED
    assert qps_limit_for(sandbox.config, "CreateUploadVideo") is None
    sandbox.configure(qps_limits={})
    assert qps_limit_for(sandbox.config, "CreateUploadVideo") is None


def test_qps_limit_applies_to_every_action_over_the_per_action_ones(sandbox):
    sandbox.configure(qps_limit=2, qps_limits={"CreateUploadVideo": 50})
    client = sdk_client(sandbox)
    client.create_upload_video(video())
    client.create_upload_video(video())

    assert refusal(lambda: client.create_upload_video(video())) == THROTTLED
    assert qps_limit_for(sandbox.config, "SearchMedia") == 2


# --- account settings ------------------------------------------------------------------


def test_template_groups_known_to_the_account(sandbox):
    client = sdk_client(sandbox)
    assert client.create_upload_video(video(template_group_id="any"))  # nothing configured
    sandbox.configure(template_group_ids={"tg-transcode"},
                      no_transcode_template_group_ids={"VOD_NO_TRANSCODE", "tg-raw"},
                      default_template_group_id="tg-default")

    for known in ("tg-transcode", "VOD_NO_TRANSCODE", "tg-raw", "tg-default"):
        assert client.create_upload_video(video(template_group_id=known)).body.video_id
    assert refusal(lambda: client.create_upload_video(video(template_group_id="tg-other"))) \
        == ("InvalidTemplateGroupId.NotFound", 404, "The TemplateGroupId does not exist.")
    # A workflow wins over the template group, so a stale one is not checked then.
    assert client.create_upload_video(video(template_group_id="tg-other", workflow_id="wf-1"))


def test_the_video_records_its_template_group(sandbox):
    client = sdk_client(sandbox)
    named = client.create_upload_video(video(template_group_id="VOD_NO_TRANSCODE")).body
    unnamed = client.create_upload_video(video()).body
    sandbox.configure(default_template_group_id="tg-default")
    defaulted = client.create_upload_video(video()).body

    assert sandbox.get_video(named.video_id)["TemplateGroupId"] == "VOD_NO_TRANSCODE"
    assert sandbox.get_video(unnamed.video_id)["TemplateGroupId"] is None
    assert sandbox.get_video(defaulted.video_id)["TemplateGroupId"] == "tg-default"


@pytest.mark.parametrize("create", [
    lambda client, **f: client.create_upload_video(video(**f)),
    lambda client, **f: client.create_upload_image(image(**f)),
    lambda client, **f: client.create_upload_attached_media(attached(**f)),
], ids=["video", "image", "attached"])
def test_app_ids_known_to_the_account(sandbox, create):
    client = sdk_client(sandbox)
    assert create(client, app_id="app-anything")  # nothing configured: any app
    sandbox.configure(app_ids={"app-2"})

    for known in ("app-2", "app-1000000", None):
        assert create(client, app_id=known)
    assert refusal(lambda: create(client, app_id="app-3")) == (
        "Forbidden.OperateApp", 403, "User not authorized to operate app.")


@pytest.mark.parametrize("create, field", [
    (lambda client, **f: client.create_upload_video(video(**f)), "cate_id"),
    (lambda client, **f: client.create_upload_image(image(**f)), "cate_id"),
], ids=["video", "image"])
def test_categories_known_to_the_account(sandbox, create, field):
    client = sdk_client(sandbox)
    assert create(client, **{field: 99})  # nothing configured: any category
    sandbox.configure(category_ids={7, 8})

    assert create(client, **{field: 7})
    assert refusal(lambda: create(client, **{field: 9})) == (
        "InvalidCateId.NotFound", 404, "The CateId not exist.")


def test_attached_media_checks_each_of_its_categories(sandbox):
    client = sdk_client(sandbox)
    sandbox.configure(category_ids={7, 8})

    assert client.create_upload_attached_media(attached(cate_ids="7,8"))
    assert refusal(lambda: client.create_upload_attached_media(attached(cate_ids="7,9")))[:2] \
        == ("InvalidCateId.NotFound", 404)


def test_storage_locations_known_to_the_account_for_every_kind(sandbox):
    client = sdk_client(sandbox)
    sandbox.configure(storage_locations={"outin-a.oss"})

    assert client.create_upload_image(image(storage_location="outin-a.oss"))
    for call in (lambda: client.create_upload_video(video(storage_location="outin-b.oss")),
                 lambda: client.create_upload_image(image(storage_location="outin-b.oss")),
                 lambda: client.create_upload_attached_media(
                     attached(storage_location="outin-b.oss"))):
        assert refusal(call) == ("InvalidStorage.NotFound", 404,
                                 "The StorageLocation does not exist.")


# --- command line ----------------------------------------------------------------------


def test_cli_flags_make_the_account():
    config = config_from_args(build_parser().parse_args([
        "--qps-limit-for", "CreateUploadVideo=10", "--qps-limit-for", "GetVideoInfo=5",
        "--template-group", "tg-1", "--template-group", "tg-2",
        "--no-transcode-template-group", "tg-raw", "--default-template-group", "tg-1",
        "--storage-location", "outin-a.oss", "--app-id", "app-2", "--app-id", "app-3",
        "--category-id", "7", "--category-id", "8", "--callback-duplicates", "0.25",
        "--callback-reorder", "--transcode-definitions", "LD,SD,HD"]))

    assert config.qps_limits == {"CreateUploadVideo": 10, "GetVideoInfo": 5}
    assert config.template_group_ids == {"tg-1", "tg-2"}
    assert config.no_transcode_template_group_ids == {"VOD_NO_TRANSCODE", "tg-raw"}
    assert config.default_template_group_id == "tg-1"
    assert config.storage_locations == {"outin-a.oss"}
    assert config.app_ids == {"app-2", "app-3"} and config.category_ids == {7, 8}
    assert (config.callback_duplicates, config.callback_reorder) == (0.25, True)
    assert config.transcode_definitions == ("LD", "SD", "HD")


def test_cli_defaults_keep_vods_documented_limits_and_an_open_account():
    config = config_from_args(build_parser().parse_args([]))
    assert config.qps_limits is None and config.qps_limit is None
    assert config.template_group_ids == frozenset() and config.app_ids == frozenset()
    assert config.no_transcode_template_group_ids == {"VOD_NO_TRANSCODE"}
    assert config.default_template_group_id is None and config.callback_reorder is False
    assert config_from_args(build_parser().parse_args(["--qps-limit", "80"])).qps_limit == 80
    unlimited = config_from_args(build_parser().parse_args(["--no-qps-limits"]))
    assert unlimited.qps_limits == {} and qps_limit_for(unlimited, "CreateUploadVideo") is None


@pytest.mark.parametrize("argv, why", [
    (["--qps-limit-for", "CreateUploadVideo"], "expected ACTION=N"),
    (["--qps-limit-for", "CreateUploadVideo=0"], "expected ACTION=N"),
    (["--qps-limit-for", "=5"], "expected ACTION=N"),
    (["--category-id", "x"], "invalid int value"),
    (["--callback-duplicates", "2"], "between 0 and 1"),
    (["--transcode-definitions", ","], "definitions such as LD,SD"),
])
def test_cli_refuses_malformed_account_flags(argv, why, capsys):
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2 and why in capsys.readouterr().err


def test_cli_sandbox_checks_the_account_it_was_given():
    port = free_port()
    env = dict(os.environ, ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    process = subprocess.Popen(
        [sys.executable, "-m", "vodsandbox", "--host", "127.0.0.1", "--port", str(port),
         "--access-key-id", "CliKey", "--access-key-secret", "cli-secret",
         "--app-id", "app-2", "--template-group", "tg-1", "--default-template-group", "tg-1",
         "--qps-limit-for", "CreateUploadImage=1"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert f"http://127.0.0.1:{port}" in process.stdout.readline()
        server = type("Endpoint", (), {"endpoint": f"127.0.0.1:{port}"})()
        client = sdk_client(server, key_id="CliKey", secret="cli-secret")
        assert client.create_upload_video(video(app_id="app-2", template_group_id="tg-1"))
        assert client.create_upload_video(video(template_group_id="VOD_NO_TRANSCODE"))
        assert vod_error(lambda: client.create_upload_video(video(app_id="app-9"))).code == \
            "Forbidden.OperateApp"
        assert vod_error(lambda: client.create_upload_video(
            video(template_group_id="tg-9"))).code == "InvalidTemplateGroupId.NotFound"
        client.create_upload_image(image())
        assert vod_error(lambda: client.create_upload_image(image())).code == "Throttling.User"
    finally:
        process.terminate()
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0, err


# --- control API -----------------------------------------------------------------------


def test_control_api_sets_the_account_and_answers_json(sandbox):
    status, _, body = control(sandbox, "POST", "/config", {
        "template_group_ids": ["tg-1"], "no_transcode_template_group_ids": ["VOD_NO_TRANSCODE",
                                                                          "tg-raw"],
        "default_template_group_id": "tg-1", "app_ids": ["app-2"], "category_ids": [8, 7],
        "storage_locations": ["outin-a.oss"], "qps_limits": {"CreateUploadImage": 1},
        "transcode_definitions": ["LD"], "callback_reorder": True})

    assert status == 200
    config = body["config"]
    assert config["template_group_ids"] == ["tg-1"] and config["category_ids"] == [7, 8]
    assert config["no_transcode_template_group_ids"] == ["VOD_NO_TRANSCODE", "tg-raw"]
    assert config["app_ids"] == ["app-2"] and config["qps_limits"] == {"CreateUploadImage": 1}
    assert config["transcode_definitions"] == ["LD"] and config["default_template_group_id"] \
        == "tg-1"
    # The in-process view is JSON as it is: no sets or tuples left.
    assert json.loads(json.dumps(sandbox.public_config())) == sandbox.public_config()
    assert control(sandbox, "GET", "/state")[2]["config"]["app_ids"] == ["app-2"]

    client = sdk_client(sandbox)
    assert refusal(lambda: client.create_upload_video(video(cate_id=9)))[0] == \
        "InvalidCateId.NotFound"
    video_id = client.create_upload_video(video(app_id="app-2", cate_id=7)).body.video_id
    assert sandbox.get_video(video_id)["TemplateGroupId"] == "tg-1"
    client.create_upload_image(image())
    assert refusal(lambda: client.create_upload_image(image())) == THROTTLED


@pytest.mark.parametrize("payload", [
    # A bare string would otherwise become a set of its letters, a list of pairs a dict.
    {"app_ids": "app-2"}, {"template_group_ids": "tg-1"}, {"storage_locations": "outin-a"},
    {"transcode_definitions": "LD"}, {"qps_limits": [["CreateUploadImage", 1]]},
])
def test_control_api_refuses_malformed_account_settings(sandbox, payload):
    status, _, body = control(sandbox, "POST", "/config", payload)
    assert status == 400 and body["error"]
    assert sandbox.config.app_ids == frozenset() and sandbox.config.qps_limits == {}
