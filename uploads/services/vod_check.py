"""Proving the VOD configuration with harmless calls (`manage.py vod_check`, `/readyz`):
the credentials, region and endpoint (a lookup of a media id nobody has), the app id
(GetAppInfos) and the template group (GetTranscodeTemplateGroup). Each finding names what
is wrong. The verdict is kept in the cache for /readyz.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from .. import vod

# A well-formed VideoId that no account holds: looking it up reads nothing and changes
# nothing, yet VOD must check the signature, the AccessKey and its permissions to answer.
PROBE_VIDEO_ID = "0" * 32
logger = logging.getLogger("uploads.vod")
VERDICT_KEY = "vodportal:vod-check"
DEFAULT_APP_ID = "app-1000000"


@dataclass(frozen=True)
class Finding:
    """One setting checked: whether VOD accepted it, and what it said."""

    setting: str
    ok: bool
    detail: str
    skipped: bool = False


def _where() -> str:
    endpoint = settings.VOD_ENDPOINT or f"vod.{settings.VOD_REGION}.aliyuncs.com"
    return f"region {settings.VOD_REGION}, endpoint {endpoint}"


def _credentials() -> Finding:
    setting = "credentials, VOD_REGION, VOD_ENDPOINT"
    try:
        batch = vod.get_video_infos(video_ids=[PROBE_VIDEO_ID])
    except vod.VodNotConfigured as error:
        return Finding(setting, False, f"VOD refused the credentials ({_where()}): "
                                       f"{error.code}: {error.message}")
    except (vod.VodUnavailable, vod.VodTimeout) as error:
        return Finding(setting, False, f"VOD could not be reached ({_where()}): "
                                       f"{error.code}: {error.message}")
    except vod.VodError as error:
        return Finding(setting, False, f"VOD answered {error.code}: {error.message} "
                                       f"({_where()})")
    return Finding(setting, True, f"VOD accepted the credentials ({_where()}; "
                                  f"RequestId {batch.request_id})")


def _app() -> Finding:
    app_id = settings.VOD_APP_ID
    if not app_id:
        return Finding("VOD_APP_ID", True, f"not set: VOD's default app ({DEFAULT_APP_ID})")
    try:
        missing, request_id = vod.missing_app_ids([app_id])
    except vod.VodError as error:
        return Finding("VOD_APP_ID", False, f"GetAppInfos failed: {error.code}: "
                                            f"{error.message}")
    if missing:
        return Finding("VOD_APP_ID", False, f"{app_id!r} is not an app of this account")
    return Finding("VOD_APP_ID", True, f"{app_id!r} exists (RequestId {request_id})")


def _template_group() -> Finding:
    group = settings.VOD_TEMPLATE_GROUP_ID
    if not group:
        return Finding("VOD_TEMPLATE_GROUP_ID", True,
                       "not set: the account's default template group")
    try:
        request_id = vod.transcode_template_group_exists(group)
    except vod.VodNotFound:
        return Finding("VOD_TEMPLATE_GROUP_ID", False,
                       f"{group!r} is not a template group of this account")
    except vod.VodError as error:
        return Finding("VOD_TEMPLATE_GROUP_ID", False,
                       f"GetTranscodeTemplateGroup failed: {error.code}: {error.message}")
    return Finding("VOD_TEMPLATE_GROUP_ID", True, f"{group!r} exists (RequestId {request_id})")


def _storage_location() -> Finding:
    location = settings.VOD_STORAGE_LOCATION
    if not location:
        return Finding("VOD_STORAGE_LOCATION", True, "not set: the account's default storage")
    # VOD has no read-only call that says whether a storage location exists; only a
    # create would, and that makes a media.
    return Finding("VOD_STORAGE_LOCATION", True,
                   f"{location!r} not checked: VOD offers no harmless call for it; a create "
                   "with a wrong one is answered 503 vod_not_configured "
                   "(InvalidStorage.NotFound)", skipped=True)


def vod_check() -> list[Finding]:
    """Check every VOD setting with harmless calls; remember the verdict for /readyz."""
    findings = [_credentials()]
    if findings[0].ok:
        findings += [_app(), _template_group(), _storage_location()]
    else:
        findings += [Finding(name, False, "not checked: the credentials do not work",
                             skipped=True)
                     for name in ("VOD_APP_ID", "VOD_TEMPLATE_GROUP_ID", "VOD_STORAGE_LOCATION")]
    ok = all(finding.ok for finding in findings)
    verdict = {"ok": ok, "at": timezone.now().isoformat(),
               "findings": [asdict(finding) for finding in findings]}
    try:
        # A failing verdict is kept briefly, so a fixed configuration shows up soon.
        cache.set(VERDICT_KEY, verdict, timeout=settings.VOD_CHECK_CACHE_SECONDS if ok else 60)
    except Exception:  # noqa: BLE001 - any cache backend's failure; the check still stands
        logger.warning("vod_check: the verdict could not be kept in the cache", exc_info=True)
    return findings


def vod_check_verdict() -> dict | None:
    """The last verdict, {"ok", "at", "findings"}, checking now when there is none; None
    when the cache cannot be read (then VOD is not asked on every probe)."""
    try:
        verdict = cache.get(VERDICT_KEY)
    except Exception:  # noqa: BLE001 - any cache backend's failure; /readyz names the cache
        logger.warning("vod_check: the cache cannot be read", exc_info=True)
        return None
    if verdict is None:
        findings = vod_check()
        verdict = {"ok": all(finding.ok for finding in findings), "at": "now",
                   "findings": [asdict(finding) for finding in findings]}
    return verdict
