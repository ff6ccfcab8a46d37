"""manage.py vod_check: the VOD configuration proven with harmless calls, naming what is
wrong; the real SDK against the sandbox, configured as an account with its own settings."""

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def run(capsys) -> str:
    call_command("vod_check")
    return capsys.readouterr().out


def test_a_working_configuration_passes_and_changes_nothing(capsys, sandbox, settings):
    sandbox.configure(app_ids=["app-2"], template_group_ids=["tg-main"])
    settings.VOD_APP_ID, settings.VOD_TEMPLATE_GROUP_ID = "app-2", "tg-main"

    out = run(capsys)

    assert "the VOD configuration works" in out and "FAIL" not in out
    assert {call["action"] for call in sandbox.calls} == {
        "GetVideoInfos", "GetAppInfos", "GetTranscodeTemplateGroup"}
    assert sandbox.count_videos() == sandbox.count_images() == 0


def test_wrong_keys_are_named_and_the_rest_is_not_asked(capsys, settings, sandbox):
    settings.VOD_SANDBOX_ACCESS_KEY_SECRET = "not-the-secret"

    with pytest.raises(CommandError, match="credentials"):
        call_command("vod_check")

    out = capsys.readouterr().out
    assert "FAIL  credentials, VOD_REGION, VOD_ENDPOINT: VOD refused the credentials" in out
    assert sandbox.count_calls("GetAppInfos") == 0
    assert "not-the-secret" not in out


@pytest.mark.parametrize("setting, value, named", [
    ("VOD_APP_ID", "app-nope", "'app-nope' is not an app of this account"),
    ("VOD_TEMPLATE_GROUP_ID", "tg-nope", "'tg-nope' is not a template group of this account"),
])
def test_a_wrong_account_setting_is_named(capsys, sandbox, settings, setting, value, named):
    sandbox.configure(app_ids=["app-2"], template_group_ids=["tg-main"])
    setattr(settings, setting, value)

    with pytest.raises(CommandError, match=setting):
        call_command("vod_check")

    assert named in capsys.readouterr().out


def test_vods_no_transcoding_group_is_known(capsys, sandbox, settings):
    sandbox.configure(template_group_ids=["tg-main"])
    settings.VOD_TEMPLATE_GROUP_ID = "VOD_NO_TRANSCODE"

    assert "'VOD_NO_TRANSCODE' exists" in run(capsys)
