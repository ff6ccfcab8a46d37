"""The VOD operations vodportal uses, each returning a typed result or raising VodError."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, timedelta, timezone

from alibabacloud_vod20170321 import models as vod_models

from .client import call_vod, runtime_options
from .types import (
    AttachedMediaCredential,
    ImageCredential,
    MediaInfo,
    MediaInfoBatch,
    VideoCredential,
    UploadAddress,
    UploadCredential,
    VodBadResponse,
)

# VOD's documented validity of an upload credential. UploadAuth says "Expiration": "3600";
# the docs say 3,000 s for a video. We promise clients the stricter of the two.
CREDENTIAL_TTL_SECONDS = 3000


# --- Decoding --------------------------------------------------------------------------


def _decode_b64_json(value: str, what: str) -> dict:
    try:
        decoded = json.loads(base64.b64decode(value, validate=False))
    except (binascii.Error, ValueError, TypeError) as exc:
        raise VodBadResponse(f"VOD's {what} could not be decoded.", code="BadResponse") from exc
    if not isinstance(decoded, dict):
        raise VodBadResponse(f"VOD's {what} is not an object.", code="BadResponse")
    return decoded


def _parse_utc(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    except (ValueError, AttributeError):
        return None


def _decode_upload(body, media_id: str, issued_at: datetime, **extra):
    """Build the typed result from a Create/Refresh response body."""
    if not media_id or not body.upload_address or not body.upload_auth:
        raise VodBadResponse("VOD's answer lacks the media id or upload credential.",
                             code="BadResponse", request_id=body.request_id or "")
    address = _decode_b64_json(body.upload_address, "UploadAddress")
    auth = _decode_b64_json(body.upload_auth, "UploadAuth")
    try:
        lifetime = min(int(auth.get("Expiration") or CREDENTIAL_TTL_SECONDS), CREDENTIAL_TTL_SECONDS)
        expires_at = issued_at + timedelta(seconds=lifetime)
        stated = _parse_utc(auth.get("ExpireUTCTime", ""))
        if stated is not None:
            expires_at = min(expires_at, stated)
        return dict(
            media_id=media_id,
            request_id=body.request_id or "",
            upload_address=body.upload_address,
            upload_auth=body.upload_auth,
            address=UploadAddress(endpoint=address["Endpoint"], bucket=address["Bucket"],
                                  object_key=address["FileName"]),
            credential=UploadCredential(access_key_id=auth["AccessKeyId"],
                                        access_key_secret=auth["AccessKeySecret"],
                                        security_token=auth["SecurityToken"],
                                        expires_at=expires_at),
            **extra,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise VodBadResponse("VOD's upload credential is incomplete.", code="BadResponse",
                             request_id=body.request_id or "") from exc


def _compact(params: dict) -> dict:
    """Drop unset parameters so the SDK does not send them."""
    return {key: value for key, value in params.items() if value not in (None, "")}


def _now() -> datetime:
    return datetime.now(timezone.utc)


# --- Operations ------------------------------------------------------------------------


def create_upload_video(
    *,
    title: str,
    file_name: str,
    reference_id: str,
    file_size: int | None = None,
    description: str = "",
    cover_url: str = "",
    cate_id: int | None = None,
    tags: str = "",
    template_group_id: str = "",
    workflow_id: str = "",
    storage_location: str = "",
    app_id: str = "",
    user_data: str = "",
) -> VideoCredential:
    """CreateUploadVideo; the ReferenceId lets a lost answer be found again."""
    request = vod_models.CreateUploadVideoRequest(**_compact(dict(
        title=title, file_name=file_name, reference_id=reference_id, file_size=file_size,
        description=description, cover_url=cover_url, cate_id=cate_id, tags=tags,
        template_group_id=template_group_id, workflow_id=workflow_id,
        storage_location=storage_location, app_id=app_id, user_data=user_data)))
    issued_at = _now()
    # Repeated here only when the request never reached VOD: after any other failure the
    # service looks the ReferenceId up before it sends anything again (VOD documents the
    # ReferenceId as unique, but not what a duplicate is answered).
    response = call_vod("CreateUploadVideo",
                     lambda client: client.create_upload_video_with_options(request, runtime_options()),
                     idempotent=False)
    body = response.body
    return VideoCredential(**_decode_upload(body, body.video_id, issued_at))


def refresh_upload_video(*, video_id: str = "", reference_id: str = "") -> VideoCredential:
    """RefreshUploadVideo by VideoId, or by ReferenceId to find a video whose answer was lost."""
    if not (video_id or reference_id):
        raise ValueError("refresh_upload_video needs video_id or reference_id")
    request = vod_models.RefreshUploadVideoRequest(
        **_compact(dict(video_id=video_id, reference_id=reference_id)))
    issued_at = _now()
    response = call_vod("RefreshUploadVideo",
                     lambda client: client.refresh_upload_video_with_options(request, runtime_options()),
                     idempotent=True)
    body = response.body
    return VideoCredential(**_decode_upload(body, body.video_id, issued_at))


def create_upload_image(
    *,
    image_type: str,
    image_ext: str,
    title: str = "",
    original_file_name: str = "",
    description: str = "",
    cate_id: int | None = None,
    tags: str = "",
    storage_location: str = "",
    app_id: str = "",
    user_data: str = "",
) -> ImageCredential:
    """CreateUploadImage. Not repeated on an unanswered request: that could make two images."""
    request = vod_models.CreateUploadImageRequest(**_compact(dict(
        image_type=image_type, image_ext=image_ext, title=title,
        original_file_name=original_file_name, description=description, cate_id=cate_id,
        tags=tags, storage_location=storage_location, app_id=app_id, user_data=user_data)))
    issued_at = _now()
    response = call_vod("CreateUploadImage",
                     lambda client: client.create_upload_image_with_options(request, runtime_options()),
                     idempotent=False)
    body = response.body
    return ImageCredential(**_decode_upload(body, body.image_id, issued_at,
                                            image_url=body.image_url or "",
                                            file_url=body.file_url or ""))


def create_upload_attached_media(
    *,
    business_type: str,
    media_ext: str,
    title: str = "",
    file_name: str = "",
    file_size: int | None = None,
    description: str = "",
    cate_ids: str = "",
    tags: str = "",
    storage_location: str = "",
    app_id: str = "",
    user_data: str = "",
) -> AttachedMediaCredential:
    """CreateUploadAttachedMedia. Not repeated on an unanswered request."""
    request = vod_models.CreateUploadAttachedMediaRequest(**_compact(dict(
        business_type=business_type, media_ext=media_ext, title=title, file_name=file_name,
        file_size=file_size, description=description, cate_ids=cate_ids, tags=tags,
        storage_location=storage_location, app_id=app_id, user_data=user_data)))
    issued_at = _now()
    response = call_vod(
        "CreateUploadAttachedMedia",
        lambda client: client.create_upload_attached_media_with_options(request, runtime_options()),
        idempotent=False)
    body = response.body
    return AttachedMediaCredential(**_decode_upload(body, body.media_id, issued_at,
                                                    media_url=body.media_url or "",
                                                    file_url=body.file_url or ""))


def get_video_info(video_id: str) -> MediaInfo:
    """GetVideoInfo: the video's status in VOD. Raises VodNotFound for an unknown id."""
    request = vod_models.GetVideoInfoRequest(video_id=video_id)
    response = call_vod("GetVideoInfo",
                     lambda client: client.get_video_info_with_options(request, runtime_options()),
                     idempotent=True)
    video = response.body.video
    return MediaInfo(media_id=video.video_id, status=video.status or "", size=video.size,
                     duration=video.duration, title=video.title or "")


def get_image_info(image_id: str) -> MediaInfo:
    """GetImageInfo: the image's status in VOD. Raises VodNotFound for an unknown id."""
    request = vod_models.GetImageInfoRequest(image_id=image_id)
    response = call_vod("GetImageInfo",
                     lambda client: client.get_image_info_with_options(request, runtime_options()),
                     idempotent=True)
    image = response.body.image_info
    size = image.mezzanine.file_size if image.mezzanine else None
    return MediaInfo(media_id=image.image_id, status=image.status or "", size=size,
                     title=image.title or "")


def get_attached_media_info(media_ids: list[str]) -> MediaInfoBatch:
    """GetAttachedMediaInfo for up to 20 ids at once."""
    _check_batch(media_ids, "GetAttachedMediaInfo")
    request = vod_models.GetAttachedMediaInfoRequest(media_ids=",".join(media_ids))
    response = call_vod("GetAttachedMediaInfo",
                     lambda client: client.get_attached_media_info_with_options(request, runtime_options()),
                     idempotent=True)
    body = response.body
    found = {item.media_id: MediaInfo(media_id=item.media_id, status=item.status or "",
                                      title=item.title or "")
             for item in body.attached_media_list or []}
    return MediaInfoBatch(found=found, missing=tuple(body.non_exist_media_ids or ()),
                          request_id=body.request_id or "")


MAX_BATCH = 20  # VOD's limit of ids per Get*Infos / Delete* call


def _check_batch(ids: list[str], operation: str) -> None:
    if len(ids) > MAX_BATCH:
        raise ValueError(f"{operation} takes at most {MAX_BATCH} ids")


def get_video_infos(*, video_ids: list[str] = (), reference_ids: list[str] = ()) -> MediaInfoBatch:
    """GetVideoInfos for up to 20 VideoIds, or up to 20 ReferenceIds (to find videos whose
    create answer was lost, without issuing a new credential)."""
    if bool(video_ids) == bool(reference_ids):
        raise ValueError("get_video_infos takes video_ids or reference_ids")
    _check_batch(list(video_ids or reference_ids), "GetVideoInfos")
    request = vod_models.GetVideoInfosRequest(**_compact(dict(
        video_ids=",".join(video_ids), reference_ids=",".join(reference_ids))))
    response = call_vod("GetVideoInfos",
                        lambda client: client.get_video_infos_with_options(request, runtime_options()),
                        idempotent=True)
    body = response.body
    infos = [MediaInfo(media_id=item.video_id, status=item.status or "", size=item.size,
                       duration=item.duration, title=item.title or "",
                       reference_id=item.reference_id or "",
                       template_group_id=item.template_group_id or "")
             for item in body.video_list or []]
    return MediaInfoBatch(
        found={info.media_id: info for info in infos},
        missing=tuple(body.non_exist_video_ids or ()),
        request_id=body.request_id or "",
        found_by_reference={info.reference_id: info for info in infos if info.reference_id},
        missing_references=tuple(body.non_exist_reference_ids or ()))


def get_image_infos(image_ids: list[str]) -> MediaInfoBatch:
    """GetImageInfos for up to 20 ImageIds."""
    _check_batch(image_ids, "GetImageInfos")
    request = vod_models.GetImageInfosRequest(image_ids=",".join(image_ids))
    response = call_vod("GetImageInfos",
                        lambda client: client.get_image_infos_with_options(request, runtime_options()),
                        idempotent=True)
    body = response.body
    found = {}
    for item in body.image_info or []:
        size = item.mezzanine.file_size if item.mezzanine else None
        found[item.image_id] = MediaInfo(media_id=item.image_id, status=item.status or "",
                                         size=size, title=item.title or "")
    return MediaInfoBatch(found=found, missing=tuple(body.non_exist_image_ids or ()),
                          request_id=body.request_id or "")


def delete_videos(video_ids: list[str] = (), *, reference_ids: list[str] = ()) -> str:
    """DeleteVideo for up to 20 videos, by VideoId or ReferenceId; returns VOD's RequestId."""
    if bool(video_ids) == bool(reference_ids):
        raise ValueError("delete_videos takes video_ids or reference_ids")
    _check_batch(list(video_ids or reference_ids), "DeleteVideo")
    request = vod_models.DeleteVideoRequest(**_compact(dict(
        video_ids=",".join(video_ids), reference_ids=",".join(reference_ids))))
    response = call_vod("DeleteVideo",
                        lambda client: client.delete_video_with_options(request, runtime_options()),
                        idempotent=True)
    return response.body.request_id or ""


def delete_images(image_ids: list[str]) -> str:
    """DeleteImage by ImageIds (up to 20); returns VOD's RequestId."""
    _check_batch(image_ids, "DeleteImage")
    request = vod_models.DeleteImageRequest(delete_image_type="ImageId",
                                            image_ids=",".join(image_ids))
    response = call_vod("DeleteImage",
                        lambda client: client.delete_image_with_options(request, runtime_options()),
                        idempotent=True)
    return response.body.request_id or ""


def delete_attached_media(media_ids: list[str]) -> str:
    """DeleteAttachedMedia for up to 20 ids; returns VOD's RequestId."""
    _check_batch(media_ids, "DeleteAttachedMedia")
    request = vod_models.DeleteAttachedMediaRequest(media_ids=",".join(media_ids))
    response = call_vod(
        "DeleteAttachedMedia",
        lambda client: client.delete_attached_media_with_options(request, runtime_options()),
        idempotent=True)
    return response.body.request_id or ""


# SearchType per kind of media, for SearchMedia.
SEARCH_TYPES = ("video", "audio", "image", "attached")


def search_media_by_tags(*, search_type: str, tags: list[str]) -> MediaInfoBatch:
    """SearchMedia for the media of `search_type` carrying any of `tags` (up to 20 marker
    tags we set at creation); each found media comes with its tags, to tell whose it is.

    VOD's search index trails creation by a short delay, so "not found" is evidence that
    nothing exists only for media created longer ago than that (VOD_SEARCH_LAG_SECONDS).
    """
    if search_type not in SEARCH_TYPES:
        raise ValueError(f"search_type must be one of {', '.join(SEARCH_TYPES)}")
    _check_batch(tags, "SearchMedia")
    if any("'" in tag or "," in tag for tag in tags):
        raise ValueError("a marker tag may not contain quotes or commas")
    values = ",".join(f"'{tag}'" for tag in tags)
    request = vod_models.SearchMediaRequest(
        search_type=search_type, match=f"Tags in ({values})", page_size=MAX_SEARCH_PAGE,
        sort_by="CreationTime:Asc", fields="Title,Tags,Status")
    response = call_vod("SearchMedia",
                        lambda client: client.search_media_with_options(request, runtime_options()),
                        idempotent=True)
    body = response.body
    found = {}
    for item in body.media_list or []:
        media = item.image or item.attached_media or item.video or item.audio
        found[item.media_id] = MediaInfo(
            media_id=item.media_id, status=(media.status if media else "") or "",
            title=(media.title if media else "") or "",
            tags=tuple(tag.strip() for tag in ((media.tags if media else "") or "").split(",")
                       if tag.strip()))
    return MediaInfoBatch(found=found, missing=(), request_id=body.request_id or "")


# SearchMedia's largest page: 20 markers find 20 media (a few more, were one created twice).
MAX_SEARCH_PAGE = 100


# --- The account's settings (manage.py vod_check) ---------------------------------------


def missing_app_ids(app_ids: list[str]) -> tuple[tuple[str, ...], str]:
    """GetAppInfos: which of `app_ids` (up to 10) the account does not have, and VOD's
    RequestId."""
    request = vod_models.GetAppInfosRequest(app_ids=",".join(app_ids))
    response = call_vod("GetAppInfos",
                        lambda client: client.get_app_infos_with_options(request,
                                                                         runtime_options()),
                        idempotent=True)
    return tuple(response.body.non_exist_app_ids or ()), response.body.request_id or ""


def transcode_template_group_exists(group_id: str) -> str:
    """GetTranscodeTemplateGroup: VOD's RequestId when the group exists; VodNotFound when
    it does not."""
    request = vod_models.GetTranscodeTemplateGroupRequest(transcode_template_group_id=group_id)
    response = call_vod(
        "GetTranscodeTemplateGroup",
        lambda client: client.get_transcode_template_group_with_options(request,
                                                                        runtime_options()),
        idempotent=True)
    return response.body.request_id or ""
