"""Lookups (Get*Info, Get*Infos) and deletion (Delete*), with VOD's answers and errors."""

from __future__ import annotations

from collections.abc import Callable

from . import account
from . import validation as v
from .errors import VodError, invalid, missing
from .operations import Context, find_video


def _present(values: dict) -> dict:
    """Drop fields VOD would leave out because they are unset."""
    return {key: value for key, value in values.items() if value not in (None, "")}


def _int_or_none(value) -> int | None:
    return int(value) if str(value or "").isdigit() else None


def _size(snap: dict) -> int:
    """The uploaded size once known, else the size declared at creation, else 0."""
    return int(snap.get("Size") or snap.get("FileSize") or 0)


def _snapshots(ctx: Context, ids: list[str], kind: str) -> tuple[list[dict], list[str]]:
    """The snapshots of the ids that exist (as `kind`), and the ids that do not."""
    found, absent = [], []
    for media_id in ids:
        snap = ctx.store.snapshot(media_id, kind)
        if snap is None:
            absent.append(media_id)
        else:
            found.append(snap)
    return found, absent


def video_view(ctx: Context, snap: dict) -> dict:
    """A video as GetVideoInfo's Video (and GetVideoInfos' VideoList items) show it."""
    return _present({
        "VideoId": snap["VideoId"], "Title": snap.get("Title"), "Status": snap["Status"],
        "Size": _size(snap), "Duration": float(snap.get("Duration") or 0.0),
        "CoverURL": snap.get("CoverURL"), "CreationTime": snap["CreationTime"],
        "ModificationTime": snap["ModificationTime"],
        "StorageLocation": snap["StorageLocation"], "AppId": snap["AppId"],
        "Description": snap.get("Description"), "Tags": snap.get("Tags"),
        "CateId": _int_or_none(snap.get("CateId")),
        "TemplateGroupId": snap.get("TemplateGroupId"), "ReferenceId": snap["ReferenceId"],
        "RegionId": ctx.config.region_id, "StorageClass": "Standard", "DownloadSwitch": "on",
    })


def image_view(snap: dict) -> dict:
    """An image as GetImageInfo's ImageInfo (and GetImageInfos' items) show it."""
    return _present({
        "ImageId": snap["ImageId"], "Title": snap.get("Title"), "Status": snap["Status"],
        "ImageType": snap["ImageType"], "URL": snap["ImageURL"],
        "CreationTime": snap["CreationTime"], "StorageLocation": snap["StorageLocation"],
        "AppId": snap["AppId"], "Tags": snap.get("Tags"),
        "CateId": _int_or_none(snap.get("CateId")), "Description": snap.get("Description"),
        "Mezzanine": _present({"OriginalFileName": snap.get("OriginalFileName"),
                               "FileURL": snap["FileURL"],
                               "FileSize": _int_or_none(snap.get("Size"))}),
    })


def attached_view(snap: dict) -> dict:
    """An attached media as GetAttachedMediaInfo's AttachedMediaList items show it."""
    return _present({
        "MediaId": snap["MediaId"], "Title": snap.get("Title"), "Status": snap["Status"],
        "Type": snap["BusinessType"], "URL": snap["MediaURL"],
        "CreationTime": snap["CreationTime"], "ModificationTime": snap["ModificationTime"],
        "StorageLocation": snap["StorageLocation"], "AppId": snap["AppId"],
        "Tags": snap.get("Tags"), "Description": snap.get("Description"),
        "FileSize": _size(snap),
        "Categories": [{"CateId": int(c)} for c in (snap.get("CateIds") or "").split(",")
                       if c.strip().isdigit()],
    })


# --- lookups ---------------------------------------------------------------------------


def get_video_info(ctx: Context, params: dict) -> dict:
    """GetVideoInfo (by VideoId or ReferenceId)."""
    snap = ctx.store.snapshot(find_video(ctx, params).media_id, "video")
    if snap is None:  # deleted between the two looks
        raise VodError("InvalidVideo.NotFound")
    view = video_view(ctx, snap)
    view["Snapshots"] = {"Snapshot": []}
    return {"Video": view}


def get_video_infos(ctx: Context, params: dict) -> dict:
    """GetVideoInfos: up to 20 VideoIds or ReferenceIds; unknown ones are listed apart."""
    if not params.get("VideoIds") and not params.get("ReferenceIds"):
        raise missing("VideoIds")
    video_ids = v.check_id_list(params, "VideoIds", max_count=v.IDS_PER_CALL_MAX, needed=False)
    references = v.check_id_list(params, "ReferenceIds", max_count=v.IDS_PER_CALL_MAX,
                                 needed=False)
    found, absent = _snapshots(ctx, video_ids, "video")
    absent_refs = []
    for reference_id in references:
        media = ctx.store.video_by_reference(reference_id)
        snap = ctx.store.snapshot(media.media_id, "video") if media else None
        if snap is None:
            absent_refs.append(reference_id)
        else:
            found.append(snap)
    body = {"VideoList": [video_view(ctx, snap) for snap in found], "NonExistVideoIds": absent}
    if references:
        body["NonExistReferenceIds"] = absent_refs
    return body


def get_image_info(ctx: Context, params: dict) -> dict:
    """GetImageInfo."""
    snap = ctx.store.snapshot(v.required(params, "ImageId"), "image")
    if snap is None:
        raise VodError("InvalidImage.NotFound")
    return {"ImageInfo": image_view(snap)}


def get_image_infos(ctx: Context, params: dict) -> dict:
    """GetImageInfos: up to 20 ImageIds; unknown ones come back in NonExistImageIds."""
    ids = v.check_id_list(params, "ImageIds", max_count=v.IDS_PER_CALL_MAX)
    found, absent = _snapshots(ctx, ids, "image")
    return {"ImageInfo": [image_view(snap) for snap in found], "NonExistImageIds": absent}


def get_attached_media_info(ctx: Context, params: dict) -> dict:
    """GetAttachedMediaInfo for up to 20 MediaIds; unknown ones come back in NonExistMediaIds."""
    ids = v.check_id_list(params, "MediaIds", max_count=v.IDS_PER_CALL_MAX)
    found, absent = _snapshots(ctx, ids, "attached")
    return {"AttachedMediaList": [attached_view(snap) for snap in found],
            "NonExistMediaIds": absent}


# --- deletion --------------------------------------------------------------------------


def delete_video(ctx: Context, params: dict) -> dict:
    """DeleteVideo by VideoIds or ReferenceIds (up to 20); DeleteMediaComplete follows for
    each video removed (lifecycle.media_deleted)."""
    if not params.get("VideoIds") and not params.get("ReferenceIds"):
        raise missing("VideoIds")
    video_ids = v.check_id_list(params, "VideoIds", max_count=v.IDS_PER_CALL_MAX, needed=False)
    references = v.check_id_list(params, "ReferenceIds", max_count=v.IDS_PER_CALL_MAX,
                                 needed=False)
    removed, absent = [], []
    for video_id in video_ids:
        media = ctx.store.remove(video_id, "video")
        if media:
            removed.append(media)
        else:
            absent.append(video_id)
    absent_refs = []
    for reference_id in references:
        found = ctx.store.video_by_reference(reference_id)
        media = ctx.store.remove(found.media_id, "video") if found else None
        if media:
            removed.append(media)
        else:
            absent_refs.append(reference_id)
    ctx.store.announce_deleted(removed)
    body = {"NonExistVideoIds": absent, "ForbiddenVideoIds": []}
    if references:
        body["NonExistReferenceIds"] = absent_refs
    return body


def delete_image(ctx: Context, params: dict) -> dict:
    """DeleteImage by ImageId or ImageURL (a video's snapshots: nothing to do here)."""
    kind = v.required(params, "DeleteImageType")
    removed = []
    if kind == "ImageId":
        for image_id in v.check_id_list(params, "ImageIds", max_count=v.IDS_PER_CALL_MAX):
            removed.append(ctx.store.remove(image_id, "image"))
    elif kind == "ImageURL":
        urls = set(v.check_id_list(params, "ImageURLs", max_count=v.IDS_PER_CALL_MAX))
        for image_id in ctx.store.media_ids("image"):
            snap = ctx.store.snapshot(image_id, "image")
            if snap and {snap["ImageURL"], snap["FileURL"]} & urls:
                removed.append(ctx.store.remove(image_id, "image"))
    elif kind == "VideoId":
        v.required(params, "VideoId")
    else:
        raise invalid("DeleteImageType", "Valid values: ImageId, ImageURL, VideoId.")
    ctx.store.announce_deleted([media for media in removed if media])
    return {}


def delete_attached_media(ctx: Context, params: dict) -> dict:
    """DeleteAttachedMedia for up to 20 MediaIds."""
    ids = v.check_id_list(params, "MediaIds", max_count=v.IDS_PER_CALL_MAX)
    removed = {media_id: ctx.store.remove(media_id, "attached") for media_id in ids}
    ctx.store.announce_deleted([media for media in removed.values() if media])
    return {"NonExistMediaIds": [media_id for media_id, media in removed.items() if not media]}


# --- the source file -------------------------------------------------------------------

# GetMezzanineInfo's Status is the file's, not the video's: the file is there (Normal) from
# the end of its upload on, whatever the transcoding does.
_MEZZANINE_STATUS = {"Uploading": "Uploading", "UploadFail": "UploadFail"}
_ADDITION_TYPES = frozenset({"video", "audio"})
_OUTPUT_TYPES = frozenset({"oss", "cdn"})


def get_mezzanine_info(ctx: Context, params: dict) -> dict:
    """GetMezzanineInfo (VideoId or ReferenceId): the source file's name, size, status,
    creation time and URL. No stream lists, duration, resolution, frame rate or bitrate:
    the sandbox does not decode files and VOD leaves out what it does not report."""
    auth_timeout = params.get("AuthTimeout", "")
    if auth_timeout and (not auth_timeout.isascii() or not auth_timeout.isdigit()
                         or int(auth_timeout) < 1):
        raise invalid("AuthTimeout", "It must be a whole number of seconds, at least 1.")
    v.check_choice(params, "OutputType", _OUTPUT_TYPES, default="cdn")
    additions = {part.strip().lower() for part in params.get("AdditionType", "").split(",")
                 if part.strip()}
    if additions - _ADDITION_TYPES:
        raise invalid("AdditionType", "Valid values: video, audio.")
    snap = ctx.store.snapshot(find_video(ctx, params).media_id, "video")
    if snap is None:  # deleted between the two looks
        raise VodError("InvalidVideo.NotFound")
    uploaded = snap["Status"] != "Uploading"
    return {"Mezzanine": _present({
        "VideoId": snap["VideoId"], "FileName": snap.get("FileName"),
        "Size": _int_or_none(snap.get("Size")) if uploaded else None,
        "Status": _MEZZANINE_STATUS.get(snap["Status"], "Normal"),
        "CreationTime": snap["CreationTime"],
        "FileURL": f"{ctx.base_url}/{ctx.bucket}/{snap['UploadAddress']['FileName']}",
        # The sandbox has no CDN: the URL is always its OSS (origin) one, as VOD answers
        # for a file in an "in" bucket.
        "OutputType": "oss", "StorageClass": "Standard",
    })}


LOOKUP_ACTIONS: dict[str, Callable[[Context, dict], dict]] = {
    "GetVideoInfo": get_video_info,
    "GetVideoInfos": get_video_infos,
    "GetImageInfo": get_image_info,
    "GetImageInfos": get_image_infos,
    "GetAttachedMediaInfo": get_attached_media_info,
    "DeleteVideo": delete_video,
    "DeleteImage": delete_image,
    "DeleteAttachedMedia": delete_attached_media,
    "GetMezzanineInfo": get_mezzanine_info,
    "GetAppInfos": account.get_app_infos,
    "GetTranscodeTemplateGroup": account.get_transcode_template_group,
}
