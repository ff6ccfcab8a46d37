"""Lookups of the account's own settings, as VOD answers them: GetAppInfos and
GetTranscodeTemplateGroup (what `manage.py vod_check` asks). README, "Account settings"."""

from __future__ import annotations

from .errors import VodError, invalid, missing
from .operations import DEFAULT_APP_ID, Context, known_template_groups
from .state import iso


def get_app_infos(ctx: Context, params: dict) -> dict:
    """GetAppInfos: up to 10 AppIds; unknown ones come back in NonExistAppIds (VOD's
    GetAppInfos reference), not as an error."""
    app_ids = [app.strip() for app in (params.get("AppIds") or "").split(",") if app.strip()]
    if not app_ids:
        raise missing("AppIds")
    if len(app_ids) > 10:
        raise invalid("AppIds", "at most 10 ids")
    known = ctx.config.app_ids
    found = [app for app in app_ids if not known or app in known or app == DEFAULT_APP_ID]
    return {"AppInfoList": [{"AppId": app, "AppName": "Default" if app == DEFAULT_APP_ID
                             else app, "Type": "System" if app == DEFAULT_APP_ID else "Child",
                             "Status": "Normal", "CreationTime": iso(ctx.clock.now())}
                            for app in found],
            "NonExistAppIds": [app for app in app_ids if app not in found]}


def get_transcode_template_group(ctx: Context, params: dict) -> dict:
    """GetTranscodeTemplateGroup: the group, or InvalidTranscodeTemplateGroup.NotFound (the
    code VOD's template-group operations use; the upload operations say
    InvalidTemplateGroupId.NotFound)."""
    group = params.get("TranscodeTemplateGroupId") or ""
    if not group:
        raise missing("TranscodeTemplateGroupId")
    known = known_template_groups(ctx.config)
    if known and group not in known:
        raise VodError("InvalidTranscodeTemplateGroup.NotFound")
    no_transcode = group in ctx.config.no_transcode_template_group_ids
    return {"TranscodeTemplateGroup": {
        "TranscodeTemplateGroupId": group,
        "Name": "No Transcoding" if no_transcode else group, "Locked": "Disabled",
        "IsDefault": "Default" if group == ctx.config.default_template_group_id
        else "NotDefault",
        "TranscodeTemplateList": [] if no_transcode else [
            {"Definition": definition, "TemplateName": definition}
            for definition in ctx.config.transcode_definitions]}}
