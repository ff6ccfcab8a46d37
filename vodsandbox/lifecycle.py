"""What happens to a media once its file is in OSS: VOD statuses and event notifications.

A video goes Uploading -> UploadSucc (FileUploadComplete) and, `transcode_delay` seconds
later, -> Normal (TranscodeComplete). An image or attached media is usable at once:
Uploading -> Normal (ImageUploadComplete / AttachedMediaUploadComplete).

Events go to the media's UserData.MessageCallback.CallbackURL when it named one at creation,
else to SandboxConfig.callback_url; with neither, nothing is sent (the statuses still move).
Fields follow VOD's event documentation: EventTime (UTC, to the second), EventType, Status
"success", the media id, Size, FileUrl/FileURL and Extend (UserData.Extend as a JSON string).
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

from .state import Media, iso

if TYPE_CHECKING:
    from .sandbox import Sandbox

# EventType and id field of the upload event, per media kind.
_UPLOAD_EVENTS = {
    "video": ("FileUploadComplete", "VideoId"),
    "image": ("ImageUploadComplete", "ImageId"),
    "attached": ("AttachedMediaUploadComplete", "AttachedMediaId"),
}


def user_data(media: Media) -> dict:
    """The media's UserData as an object ({} when absent or not a JSON object)."""
    try:
        value = json.loads(media.params.get("UserData") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def callback_url(media: Media, default: str | None) -> str | None:
    """Where this media's events go: its own MessageCallback, else the sandbox default."""
    callback = user_data(media).get("MessageCallback")
    if isinstance(callback, str):
        # VOD's own UserData example writes MessageCallback as a JSON string.
        try:
            callback = json.loads(callback)
        except ValueError:
            return default or None
    if isinstance(callback, dict) and callback.get("CallbackURL") \
            and str(callback.get("CallbackType", "http")).lower() == "http":
        return str(callback["CallbackURL"])
    return default or None


def _extend(media: Media) -> dict:
    """Extend as VOD echoes it: a JSON string, left out when UserData had none."""
    extend = user_data(media).get("Extend")
    if extend is None:
        return {}
    return {"Extend": extend if isinstance(extend, str)
            else json.dumps(extend, ensure_ascii=False, separators=(",", ":"))}


def upload_completed(sandbox: Sandbox, media: Media, size: int) -> None:
    """A PutObject or CompleteMultipartUpload finished for `media`'s object."""
    now = sandbox.clock.now()
    status = "UploadSucc" if media.kind == "video" else "Normal"
    # Re-uploading a video (after RefreshUploadVideo) transcodes again, as in VOD: each
    # upload gets its own job, and only the newest one turns the video Normal.
    job = secrets.token_hex(8)
    details = {"Size": size, "TranscodeJob": job} if media.kind == "video" else {"Size": size}
    if sandbox.store.set_status(media.media_id, status, now, details) is None:
        return  # deleted meanwhile
    event_type, id_field = _UPLOAD_EVENTS[media.kind]
    file_url = f"{sandbox.base_url}/{sandbox.bucket}/{media.address['FileName']}"
    payload = {"EventTime": iso(now), "EventType": event_type, id_field: media.media_id,
               "Status": "success", "Size": size,
               ("FileUrl" if media.kind == "video" else "FileURL"): file_url}
    if media.kind == "image":
        payload["AppId"] = media.details.get("AppId")
    payload.update(_extend(media))
    _notify(sandbox, media, payload)
    if media.kind == "video":
        sandbox.notifier.schedule(sandbox.config.transcode_delay,
                                  lambda: _transcoded(sandbox, media, size, file_url, job))


def _transcoded(sandbox: Sandbox, media: Media, size: int, file_url: str, job: str) -> None:
    """The pretend transcoding of a video finished: Normal, then TranscodeComplete."""
    current = sandbox.store.snapshot(media.media_id, "video")
    if current is None or current.get("TranscodeJob") != job \
            or current["Status"] != "UploadSucc":
        return  # deleted, uploaded again, or moved by set_status() meanwhile
    now = sandbox.clock.now()
    sandbox.store.set_status(media.media_id, "Normal", now)
    # One stream, the original definition: the sandbox does not look inside the file, so it
    # reports no duration, bitrate or resolution it would have to make up.
    stream = {"Status": "success", "Definition": "OD",
              "Format": media.details.get("FileExt") or "mp4", "Size": size,
              "Encrypt": False, "FileUrl": file_url, "JobId": secrets.token_hex(16)}
    payload = {"EventTime": iso(now), "EventType": "TranscodeComplete",
               "VideoId": media.media_id, "Status": "success", "StreamInfos": [stream]}
    payload.update(_extend(media))
    _notify(sandbox, media, payload)


def _notify(sandbox: Sandbox, media: Media, payload: dict) -> None:
    config = sandbox.config
    url = callback_url(media, config.callback_url)
    if url:
        sandbox.notifier.send(url, payload, config.callback_auth_key, media.media_id)
