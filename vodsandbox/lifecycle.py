"""What happens to a media once its file is in OSS, or once it is deleted: VOD statuses and
event notifications. README "After the upload: statuses and events" gives each behaviour's
source (DOCUMENTED, INFERRED or CHOSEN).

Video, template group that transcodes (the default):
    Uploading -> UploadSucc (FileUploadComplete) -> Transcoding (VideoAnalysisComplete,
    SnapshotComplete) -> one StreamTranscodeComplete per config.transcode_definitions ->
    Normal (TranscodeComplete), spread over config.transcode_delay seconds. A file that is
    not a media container of its FileName's kind (media.py) fails instead: the analysis,
    every stream and TranscodeComplete carry Status "fail" with VOD's ErrorCode, and the
    video ends TranscodeFail.
Video, no-transcode group (VOD_NO_TRANSCODE): Normal (or UploadSucc for formats VOD cannot
    play untranscoded), FileUploadComplete only.
Image / attached media: Normal with ImageUploadComplete / AttachedMediaUploadComplete, or
    UploadFail and no event when the bytes are not what the media declared.
DeleteVideo: one DeleteMediaComplete per video.

Events go to the media's UserData.MessageCallback.CallbackURL or else SandboxConfig.
callback_url, and only when callback_url is set at all: VOD honours a per-upload callback
only while the console's global HTTP callback is on.
"""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING

from . import media as sniff
from .state import Media, iso, iso_millis

if TYPE_CHECKING:
    from .sandbox import Sandbox

# Formats VOD plays without transcoding; with the no-transcode group anything else stays
# UploadSucc ("Basic data types", Status: UploadSucc).
PLAYABLE_UNTRANSCODED = frozenset({"mp4", "flv", "m3u8", "mp3", "webm"})
# VOD's code and message for a source it cannot read (VideoAnalysisComplete's fail sample).
RESOURCE_BAD = {"ErrorCode": "InvalidParameter.ResourceContentBad",
                "ErrorMessage": "The resource operated InputFile is bad"}
# The format of every (pretend) transcoded stream: VOD's default templates output MP4.
STREAM_FORMAT = "mp4"


# --- where events go -------------------------------------------------------------------


def user_data(media: Media) -> dict:
    """The media's UserData as an object ({} when absent or not a JSON object)."""
    try:
        value = json.loads(media.params.get("UserData") or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def callback_url(media: Media, default: str | None) -> str | None:
    """Where this media's events go: its own MessageCallback, else the sandbox default; with
    no default (the console's HTTP callback off) nowhere at all."""
    if not default:
        return None
    callback = user_data(media).get("MessageCallback")
    if isinstance(callback, str):
        # VOD's own UserData example writes MessageCallback as a JSON string.
        try:
            callback = json.loads(callback)
        except ValueError:
            return default
    if isinstance(callback, dict) and callback.get("CallbackURL") \
            and str(callback.get("CallbackType", "http")).lower() == "http":
        return str(callback["CallbackURL"])
    return default


def _extend(media: Media) -> dict:
    """Extend as VOD echoes it: a JSON string, left out when UserData had none."""
    extend = user_data(media).get("Extend")
    if extend is None:
        return {}
    return {"Extend": extend if isinstance(extend, str)
            else json.dumps(extend, ensure_ascii=False, separators=(",", ":"))}


def _notify(sandbox: Sandbox, media: Media, payload: dict, *, final: bool,
            extend: bool = True) -> None:
    """Send one event (with the media's Extend unless `extend` is False) by the config in
    force; `final` marks the last event of its sequence (what callback_reorder waits for)."""
    if extend:
        payload.update(_extend(media))
    config = sandbox.config
    url = callback_url(media, config.callback_url)
    if url:
        sandbox.notifier.send(url, payload, config.callback_auth_key, media.media_id,
                              duplicates=config.callback_duplicates,
                              reorder=config.callback_reorder, final=final)


def _file_url(sandbox: Sandbox, media: Media) -> str:
    return f"{sandbox.base_url}/{sandbox.bucket}/{media.address['FileName']}"


# --- uploads ---------------------------------------------------------------------------


def transcodes(sandbox: Sandbox, media: Media) -> bool:
    """Whether a video's template group transcodes: the group it was created with (its
    TemplateGroupId, else the account default) is not a no-transcode one. A WorkflowId wins
    over TemplateGroupId in VOD, and a workflow transcodes."""
    if media.params.get("WorkflowId"):
        return True
    group = (media.details.get("TemplateGroupId") or media.params.get("TemplateGroupId")
             or sandbox.config.default_template_group_id)
    return group not in sandbox.config.no_transcode_template_group_ids


def upload_completed(sandbox: Sandbox, media: Media, size: int) -> None:
    """A PutObject or CompleteMultipartUpload finished for `media`'s object."""
    data = sandbox.get_object(media.address["FileName"]) or b""
    good = sniff.acceptable(media.kind, data, media.details)
    if media.kind == "video":
        _video_uploaded(sandbox, media, size, good)
    else:
        _asset_uploaded(sandbox, media, size, good)


def _asset_uploaded(sandbox: Sandbox, media: Media, size: int, good: bool) -> None:
    """An image or attached media: usable at once, or UploadFail without an event."""
    now = sandbox.clock.now()
    if not good:
        sandbox.store.set_status(media.media_id, "UploadFail", now, {"Size": size})
        return  # VOD sends no event for a failed upload
    if sandbox.store.set_status(media.media_id, "Normal", now, {"Size": size}) is None:
        return  # deleted meanwhile
    if media.kind == "image":
        payload = {"EventTime": iso_millis(now), "EventType": "ImageUploadComplete",
                   "ImageId": media.media_id, "Status": "success", "Size": size,
                   "FileURL": _file_url(sandbox, media), "AppId": media.details.get("AppId")}
    else:
        payload = {"EventTime": iso(now), "EventType": "AttachedMediaUploadComplete",
                   "AttachedMediaId": media.media_id, "Status": "success", "Size": size,
                   "FileURL": _file_url(sandbox, media)}
    _notify(sandbox, media, payload, final=True)


def _video_uploaded(sandbox: Sandbox, media: Media, size: int, good: bool) -> None:
    now = sandbox.clock.now()
    # Re-uploading a video (after RefreshUploadVideo) processes it again, as in VOD: each
    # upload gets its own job, and only the newest one moves the video on.
    job = secrets.token_hex(8)
    transcoded = transcodes(sandbox, media)
    if transcoded:
        status = "UploadSucc"
    else:
        ext = (media.details.get("FileExt") or "").lower()
        status = "Normal" if ext in PLAYABLE_UNTRANSCODED else "UploadSucc"
    if sandbox.store.set_status(media.media_id, status, now,
                                {"Size": size, "TranscodeJob": job}) is None:
        return  # deleted meanwhile
    payload = {"EventTime": iso(now), "EventType": "FileUploadComplete",
               "VideoId": media.media_id, "Status": "success", "Size": size,
               "FileUrl": _file_url(sandbox, media)}
    _notify(sandbox, media, payload, final=not transcoded)
    if transcoded:
        Transcoding(sandbox, media, job, size, good).start()


class Transcoding:
    """The pretend processing of one upload of a video, step by step on the notifier thread.

    Steps are spaced so the whole runs over transcode_delay seconds: the analysis (with the
    snapshot), one step per definition, then TranscodeComplete. Each step first checks that
    its upload is still the video's newest and that nobody moved the video meanwhile
    (deleted, uploaded again, set_status()); reset() drops the steps not yet run.
    """

    def __init__(self, sandbox: Sandbox, media: Media, job: str, size: int,
                 good: bool) -> None:
        self.sandbox, self.media, self.job, self.size, self.good = (sandbox, media, job, size,
                                                                     good)
        self.definitions = tuple(sandbox.config.transcode_definitions)
        self.interval = sandbox.config.transcode_delay / (len(self.definitions) + 2)
        self.file_url = _file_url(sandbox, media)
        self.streams: list[dict] = []

    def start(self) -> None:
        """Schedule the first step."""
        self._next(self._analysis)

    def _next(self, step) -> None:
        self.sandbox.notifier.schedule(self.interval, step)

    def _current(self, expected: str) -> bool:
        """Whether this upload still owns the video, in the status its last step left."""
        snap = self.sandbox.store.snapshot(self.media.media_id, "video")
        return snap is not None and snap.get("TranscodeJob") == self.job \
            and snap["Status"] == expected

    def _event(self, event_type: str, **fields) -> dict:
        return {"EventTime": iso(self.sandbox.clock.now()), "EventType": event_type,
                "VideoId": self.media.media_id, **fields}

    def _analysis(self) -> None:
        if not self._current("UploadSucc"):
            return
        self.sandbox.store.set_status(self.media.media_id, "Transcoding",
                                      self.sandbox.clock.now())
        if self.good:
            # No Width, Height, Duration, Bitrate or Fps: the sandbox does not decode the
            # file, and VOD leaves out what it does not report.
            _notify(self.sandbox, self.media,
                    self._event("VideoAnalysisComplete", Status="success", Size=self.size),
                    final=False)
            # No CoverUrl or SnapshotInfos: the sandbox makes no snapshot images.
            _notify(self.sandbox, self.media, self._event("SnapshotComplete",
                                                          Status="success"), final=False)
        else:
            _notify(self.sandbox, self.media,
                    self._event("VideoAnalysisComplete", Status="fail", **RESOURCE_BAD),
                    final=False)
        self._next(lambda: self._stream(0))

    def _stream(self, index: int) -> None:
        if index >= len(self.definitions):
            self._finish()
            return
        if not self._current("Transcoding"):
            return
        if self.good:
            stream = {"Status": "success", "Definition": self.definitions[index],
                      "Format": STREAM_FORMAT, "Encrypt": False, "FileUrl": self.file_url,
                      "JobId": secrets.token_hex(16)}
        else:
            stream = {"Status": "fail", "Definition": self.definitions[index],
                      "Format": STREAM_FORMAT, "JobId": secrets.token_hex(16), **RESOURCE_BAD}
        self.streams.append(stream)
        _notify(self.sandbox, self.media, self._event("StreamTranscodeComplete", **stream),
                final=False)
        self._next(lambda: self._stream(index + 1))

    def _finish(self) -> None:
        if not self._current("Transcoding"):
            return
        # VOD: TranscodeComplete is a success when at least one stream succeeded.
        ok = self.good
        self.sandbox.store.set_status(self.media.media_id, "Normal" if ok else "TranscodeFail",
                                      self.sandbox.clock.now())
        _notify(self.sandbox, self.media,
                self._event("TranscodeComplete", Status="success" if ok else "fail",
                            StreamInfos=[dict(stream) for stream in self.streams]),
                final=True)


# --- deletion --------------------------------------------------------------------------


def media_deleted(sandbox: Sandbox, removed: list[Media]) -> None:
    """Media a Delete* action removed: DeleteMediaComplete for each video. VOD generates the
    event for DeleteVideo only, so images and attached media go silently."""
    for media in removed:
        if media.kind != "video":
            continue
        _notify(sandbox, media, {"EventTime": iso(sandbox.clock.now()),
                                 "EventType": "DeleteMediaComplete", "Status": "success",
                                 "MediaType": "video", "DeleteType": "all",
                                 "MediaId": media.media_id},
                final=True, extend=False)  # Extend is not among the event's fields
