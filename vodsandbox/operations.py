"""The upload actions (Create*/RefreshUploadVideo), with VOD's validation, answers and errors.

Each action takes the Context and the operation's own parameters and returns the response
body without RequestId (the HTTP layer adds it), or raises VodError. Lookups and deletion
live in lookups.py.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from . import validation as v
from .config import SandboxConfig
from .errors import VodError, missing
from .state import Clock, Credential, Media, Store, expiry, iso

# UploadAuth says "Expiration": "3600" whatever the real validity (VOD documents 3,000 s for
# a video); ExpireUTCTime carries the sandbox's actual expiry.
STATED_EXPIRATION = "3600"
DEFAULT_APP_ID = "app-1000000"
_ALNUM = string.ascii_letters + string.digits

# Codes for ids the account does not have (README, "Account settings", for their sources).
TEMPLATE_GROUP_NOT_FOUND = "InvalidTemplateGroupId.NotFound"
STORAGE_NOT_FOUND = "InvalidStorage.NotFound"
APP_ID_NOT_FOUND = "Forbidden.OperateApp"
CATE_ID_NOT_FOUND = "InvalidCateId.NotFound"
# The key of a video's details (and snapshot) naming the template group it is processed
# with: its TemplateGroupId parameter, else the account's default_template_group_id.
TEMPLATE_GROUP_KEY = "TemplateGroupId"

# VOD's documented QPS limits per account and operation (README "Throttling" for sources):
# CreateUploadVideo and RefreshUploadVideo 80/s in the first regions, 40/s in the others
# (regions VOD lists in neither get 40 too); CreateUploadImage and CreateUploadAttachedMedia
# 100/s everywhere.
HIGH_QPS_REGIONS = frozenset({"cn-beijing", "cn-shanghai", "cn-shenzhen", "ap-southeast-1"})
LOW_QPS_REGIONS = frozenset({"eu-central-1", "ap-northeast-1", "us-west-1", "ap-southeast-5",
                             "ap-south-1", "cn-hongkong"})
VIDEO_QPS_HIGH, VIDEO_QPS_LOW = 80, 40
IMAGE_QPS = 100


@dataclass(frozen=True)
class Context:
    """What an action may use: the live config, the store, the clock and where it is served."""

    config: SandboxConfig
    store: Store
    clock: Clock
    base_url: str
    bucket: str

    @property
    def default_storage_location(self) -> str:
        """Where media are stored when the caller names no StorageLocation."""
        return f"{self.bucket}.oss-{self.config.region_id}.aliyuncs.com"

    def object_url(self, object_key: str) -> str:
        """Path-style URL of an object on the sandbox's own OSS side."""
        return f"{self.base_url}/{self.bucket}/{object_key}"


def documented_qps_limits(region_id: str) -> dict[str, int]:
    """VOD's per-operation QPS limits for a region ({action: calls per second}); regions VOD
    lists in neither group get the lower video figure (CHOSEN)."""
    video = VIDEO_QPS_HIGH if region_id in HIGH_QPS_REGIONS else VIDEO_QPS_LOW
    return {"CreateUploadVideo": video, "RefreshUploadVideo": video,
            "CreateUploadImage": IMAGE_QPS, "CreateUploadAttachedMedia": IMAGE_QPS}


def qps_limit_for(config: SandboxConfig, action: str) -> int | None:
    """Calls per second allowed for an action: qps_limit when set (every action), else
    qps_limits (None: VOD's documented limits for region_id); None means unlimited."""
    if config.qps_limit is not None:
        return config.qps_limit
    limits = config.qps_limits if config.qps_limits is not None \
        else documented_qps_limits(config.region_id)
    return limits.get(action)


def known_template_groups(config: SandboxConfig) -> frozenset[str]:
    """The template groups CreateUploadVideo accepts (empty: any): the configured ones, the
    no-transcode ones and the default one."""
    if not config.template_group_ids:
        return frozenset()
    default = {config.default_template_group_id} if config.default_template_group_id else set()
    return config.template_group_ids | config.no_transcode_template_group_ids | default


def _b64json(value: dict) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode("utf-8")).decode()


def _random_alnum(length: int) -> str:
    # One read of the system's random source rather than one per character. 62 letters, so
    # bytes from 248 up are dropped to keep every letter equally likely.
    letters = ""
    while len(letters) < length:
        letters += "".join(_ALNUM[byte % len(_ALNUM)] for byte in secrets.token_bytes(length * 2)
                           if byte < 248)
    return letters[:length]


def _new_id() -> str:
    return uuid.uuid4().hex


def issue_credential(ctx: Context) -> Credential:
    """A fresh STS-like triple, valid for credential_ttl seconds on the sandbox's clock."""
    now = ctx.clock.now()
    return Credential(
        access_key_id=f"STS.{_random_alnum(25)}",
        access_key_secret=_random_alnum(44),
        security_token="CAIS" + base64.b64encode(secrets.token_bytes(360)).decode(),
        issued_at=now,
        expires_at=expiry(now, ctx.config.credential_ttl),
    )


def _upload_auth(ctx: Context, credential: Credential) -> str:
    return _b64json({
        "SecurityToken": credential.security_token,
        "AccessKeyId": credential.access_key_id,
        "ExpireUTCTime": iso(credential.expires_at),
        "AccessKeySecret": credential.access_key_secret,
        "Expiration": STATED_EXPIRATION,
        "Region": ctx.config.region_id,
    })


def _upload_address(media: Media) -> str:
    return _b64json(media.address)


def _new_media(ctx: Context, kind: str, params: dict, object_key: str, *,
               reference_id: str | None = None, details: dict | None = None) -> Media:
    details = dict(details or {})
    details.setdefault("StorageLocation", params.get("StorageLocation")
                       or ctx.default_storage_location)
    details.setdefault("AppId", params.get("AppId") or DEFAULT_APP_ID)
    return Media(kind=kind, media_id=_new_id(), params=dict(params), status="Uploading",
                 created=ctx.clock.now(), credentials=[issue_credential(ctx)],
                 address={"Endpoint": ctx.base_url, "Bucket": ctx.bucket,
                          "FileName": object_key},
                 reference_id=reference_id, details=details)


def _common_checks(ctx: Context, params: dict) -> list[str]:
    """What every Create* action checks the same way; returns the tags."""
    v.check_text(params, "Title", v.TITLE_MAX_BYTES)
    v.check_text(params, "Description", v.DESCRIPTION_MAX_BYTES, multiline=True)
    tags = v.check_tags(params)
    v.check_integer(params, "CateId")
    v.check_integer(params, "FileSize")
    v.check_user_data(params)
    return tags


def _account_checks(ctx: Context, params: dict, cate_ids: list[int]) -> None:
    """The ids every Create* names must be the account's: StorageLocation, AppId (the
    default app always exists) and each category."""
    config = ctx.config
    v.check_known(params, "StorageLocation", config.storage_locations, STORAGE_NOT_FOUND)
    v.check_known(params, "AppId", config.app_ids, APP_ID_NOT_FOUND,
                  always=frozenset({DEFAULT_APP_ID}))
    v.check_categories(cate_ids, config.category_ids, CATE_ID_NOT_FOUND)


def _cate_id(params: dict) -> list[int]:
    cate_id = v.check_integer(params, "CateId")
    return [] if cate_id is None else [cate_id]


# --- uploads ---------------------------------------------------------------------------


def create_upload_video(ctx: Context, params: dict) -> dict:
    """CreateUploadVideo: a new video in Uploading, its upload address and credential."""
    v.required(params, "Title")
    v.required(params, "FileName")
    tags = _common_checks(ctx, params)
    ext = v.check_file_name(params, "FileName", v.VIDEO_EXTENSIONS | v.AUDIO_EXTENSIONS)
    reference_id = v.check_reference_id(params)
    # WorkflowId wins over TemplateGroupId, so a stale template id does not matter then.
    if not params.get("WorkflowId"):
        v.check_known(params, "TemplateGroupId", known_template_groups(ctx.config),
                      TEMPLATE_GROUP_NOT_FOUND)
    _account_checks(ctx, params, _cate_id(params))
    template_group_id = params.get("TemplateGroupId") or ctx.config.default_template_group_id
    prefix = secrets.token_hex(8)
    media = _new_media(ctx, "video", params, f"sv/{prefix}/{prefix}.{ext}",
                       reference_id=reference_id,
                       details={"Tags": ",".join(tags), "FileExt": ext,
                                TEMPLATE_GROUP_KEY: template_group_id})
    stored = ctx.store.add_media(media)
    if stored is not media:
        # VOD documents ReferenceId as unique per account; the exact code is undocumented.
        raise VodError("InvalidParameter.ReferenceId",
                       f'The specified ReferenceId "{reference_id}" already exists.')
    return {"VideoId": media.media_id, "UploadAddress": _upload_address(media),
            "UploadAuth": _upload_auth(ctx, media.credential)}


def find_video(ctx: Context, params: dict) -> Media:
    """The video named by VideoId or else ReferenceId; VOD's errors when there is none."""
    video_id = params.get("VideoId", "")
    reference_id = params.get("ReferenceId", "")
    if not video_id and not reference_id:
        raise missing("VideoId")
    media = (ctx.store.get(video_id, "video") if video_id
             else ctx.store.video_by_reference(reference_id))
    if media is None:
        raise VodError("InvalidVideo.NotFound")
    return media


def refresh_upload_video(ctx: Context, params: dict) -> dict:
    """RefreshUploadVideo (by VideoId or ReferenceId): same address, a new credential."""
    media = find_video(ctx, params)
    credential = issue_credential(ctx)
    ctx.store.add_credential(media.media_id, credential, ctx.clock.now())
    return {"VideoId": media.media_id, "UploadAddress": _upload_address(media),
            "UploadAuth": _upload_auth(ctx, credential)}


def create_upload_image(ctx: Context, params: dict) -> dict:
    """CreateUploadImage: a new image in Uploading, its URLs, address and credential."""
    image_type = v.check_choice(params, "ImageType", v.IMAGE_TYPES)
    ext = v.check_choice(params, "ImageExt", v.IMAGE_EXTENSIONS, default="png")
    tags = _common_checks(ctx, params)
    if params.get("OriginalFileName"):
        # VOD's CreateUploadImage docs: the extension of OriginalFileName is optional.
        v.check_file_name(params, "OriginalFileName", None, extension_required=False)
    _account_checks(ctx, params, _cate_id(params))
    object_key = f"image/{image_type}/{_new_id()}.{ext}"
    url = ctx.object_url(object_key)
    media = _new_media(ctx, "image", params, object_key, details={
        "ImageType": image_type, "ImageExt": ext, "Tags": ",".join(tags),
        "ImageURL": url, "FileURL": url})
    ctx.store.add_media(media)
    return {"ImageId": media.media_id, "ImageURL": url, "FileURL": url,
            "UploadAddress": _upload_address(media),
            "UploadAuth": _upload_auth(ctx, media.credential)}


def create_upload_attached_media(ctx: Context, params: dict) -> dict:
    """CreateUploadAttachedMedia: a watermark, subtitle or material in Uploading."""
    business_type = v.check_choice(params, "BusinessType",
                                   frozenset(v.ATTACHED_MEDIA_EXTENSIONS))
    allowed = v.ATTACHED_MEDIA_EXTENSIONS[business_type]
    tags = _common_checks(ctx, params)
    v.check_characters("FileName", params.get("FileName", ""))
    cate_ids = v.check_id_list(params, "CateIds", max_count=v.CATE_IDS_MAX_COUNT, numeric=True,
                               needed=False)
    # MediaExt wins over the FileName's extension; without it, the FileName's is used.
    if params.get("MediaExt"):
        ext = v.check_choice(params, "MediaExt", allowed)
    elif params.get("FileName"):
        ext = v.check_file_name(params, "FileName", allowed)
    else:
        raise missing("MediaExt")
    _account_checks(ctx, params, [int(cate_id) for cate_id in cate_ids])
    object_key = f"attached/{business_type}/{_new_id()}.{ext}"
    url = ctx.object_url(object_key)
    media = _new_media(ctx, "attached", params, object_key, details={
        "BusinessType": business_type, "MediaExt": ext, "Tags": ",".join(tags),
        "MediaURL": url, "FileURL": url})
    ctx.store.add_media(media)
    return {"MediaId": media.media_id, "MediaURL": url, "FileURL": url,
            "UploadAddress": _upload_address(media),
            "UploadAuth": _upload_auth(ctx, media.credential)}


UPLOAD_ACTIONS: dict[str, Callable[[Context, dict], dict]] = {
    "CreateUploadVideo": create_upload_video,
    "RefreshUploadVideo": refresh_upload_video,
    "CreateUploadImage": create_upload_image,
    "CreateUploadAttachedMedia": create_upload_attached_media,
}
