"""VOD's own input limits, checked before VOD is ever called (see VOD_REFERENCE.md).

Pure functions: each returns the cleaned value or raises `InvalidValue` with a message a
client can act on. VOD counts lengths in UTF-8 bytes, so these do too.
"""

from __future__ import annotations

import json
import unicodedata

TITLE_MAX_BYTES = 128
DESCRIPTION_MAX_BYTES = 1024
TAGS_MAX_COUNT = 16
TAG_MAX_BYTES = 32
# Images and attached media carry one tag of ours (a marker that finds them again in VOD):
# their users have one tag fewer, and no user tag may look like a marker.
MARKER_TAG_PREFIX = "vodp-"
MARKED_TAGS_MAX_COUNT = TAGS_MAX_COUNT - 1
USER_DATA_MAX_BYTES = 1024
EXTEND_MAX_BYTES = 512
CATE_IDS_MAX_COUNT = 5
FILE_NAME_MAX_BYTES = 255
# VOD's sizes and category ids are longs; so are the columns that keep them.
BIGINT_MAX = 2**63 - 1

VIDEO_EXTENSIONS = frozenset(
    "mp4 ts 3gp mpg mpeg mpe dat vob asf avi wmv flv f4v rm rmvb mov mkv m3u8 dv gif m2t m4v "
    "mj2 mjpeg mts ogg qt swf webm".split()
)
AUDIO_EXTENSIONS = frozenset("mp3 wma wav aac ra m4a flac ape ac3 amr caf acm".split())
IMAGE_TYPES = ("default", "cover")
# VOD's ImageExt: SDK 3.12.1's CreateUploadImageRequest docs (VOD_REFERENCE.md).
IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "gif", "heic", "webp")
ATTACHED_MEDIA_EXTENSIONS = {
    "watermark": ("png", "gif", "apng", "mov"),
    "subtitle": ("srt", "ass", "stl", "ttml", "vtt"),
    "material": ("jpg", "gif", "png", "mp4", "mat", "zip", "apk"),
}


class InvalidValue(ValueError):
    """A value VOD would refuse; the message says why."""


def utf8_len(value: str) -> int:
    """Length as VOD counts it: UTF-8 bytes."""
    return len(value.encode("utf-8"))


# Bidirectional embeddings, overrides and isolates: they make a title read differently from
# what it is (in the admin, in logs), as in "Trojan Source" (CVE-2021-42574).
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_characters(value: str) -> str:
    """Refuse what VOD answers with IllegalCharacters (emoji, control characters), and
    bidirectional controls, which spoof how a text reads."""
    for char in value:
        if ord(char) > 0xFFFF:
            raise InvalidValue("Emoji and other characters outside the Basic Multilingual Plane "
                               "are not allowed.")
        if unicodedata.category(char) in ("Cc", "Cs") and char not in "\t\n\r":
            raise InvalidValue("Control characters are not allowed.")
        if char in BIDI_CONTROLS:
            raise InvalidValue("Bidirectional control characters (U+202A-U+202E, "
                               "U+2066-U+2069) are not allowed.")
    return value


def check_text(value: str, *, max_bytes: int, single_line: bool = True) -> str:
    """A title-like or description-like text within VOD's byte limit and character set."""
    check_characters(value)
    if single_line and any(char in value for char in "\r\n\t"):
        raise InvalidValue("Line breaks and tabs are not allowed here.")
    size = utf8_len(value)
    if size > max_bytes:
        raise InvalidValue(f"Must be at most {max_bytes} bytes in UTF-8 (this is {size}).")
    return value


def extension_of(file_name: str) -> str:
    """The lower-case extension of a file name, or '' when it has none."""
    base = file_name.rsplit("/", 1)[-1]
    if "." not in base.strip("."):
        return ""
    return base.rsplit(".", 1)[-1].lower()


def check_file_name(file_name: str, *, allowed: frozenset[str] | tuple[str, ...] | None = None,
                    what: str = "file", extension_required: bool = True) -> str:
    """A file name with an extension VOD accepts for this kind of media (or none, where
    VOD makes it optional)."""
    check_text(file_name, max_bytes=FILE_NAME_MAX_BYTES)
    if "/" in file_name or "\\" in file_name:
        raise InvalidValue("A file name, not a path.")
    ext = extension_of(file_name)
    if not ext and not extension_required:
        return file_name
    if not ext:
        raise InvalidValue("The file name must carry an extension, such as movie.mp4.")
    if allowed is not None and ext not in allowed:
        raise InvalidValue(f"'.{ext}' is not a {what} format VOD accepts.")
    return file_name


def check_video_file_name(file_name: str) -> str:
    """CreateUploadVideo's FileName: an audio or video extension VOD lists."""
    return check_file_name(file_name, allowed=VIDEO_EXTENSIONS | AUDIO_EXTENSIONS,
                           what="video or audio")


def normalize_tags(tags: list[str], *, max_count: int = TAGS_MAX_COUNT) -> str:
    """VOD's Tags parameter: at most `max_count` (16) tags of at most 32 bytes,
    comma-separated; none may begin with vodportal's marker prefix."""
    cleaned = []
    for tag in tags:
        tag = tag.strip()
        if not tag:
            raise InvalidValue("Tags may not be empty.")
        if "," in tag:
            raise InvalidValue("A tag may not contain a comma.")
        check_text(tag, max_bytes=TAG_MAX_BYTES)
        if tag.lower().startswith(MARKER_TAG_PREFIX):
            raise InvalidValue(f"Tags beginning with '{MARKER_TAG_PREFIX}' are reserved for "
                               "vodportal's own marker.")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > max_count:
        reserved = " (VOD allows 16; one carries vodportal's marker)" \
            if max_count < TAGS_MAX_COUNT else ""
        raise InvalidValue(f"At most {max_count} tags{reserved}.")
    return ",".join(cleaned)


def check_attached_media_ext(business_type: str, media_ext: str) -> str:
    """MediaExt must be one VOD allows for the BusinessType."""
    allowed = ATTACHED_MEDIA_EXTENSIONS.get(business_type, ())
    media_ext = media_ext.lower().lstrip(".")
    if media_ext not in allowed:
        raise InvalidValue(f"For {business_type}, use one of: {', '.join(allowed)}.")
    return media_ext


def _strings(value):
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def check_extend(extend: dict) -> dict:
    """UserData.Extend: a JSON object of at most 512 bytes, echoed back in callbacks."""
    if not isinstance(extend, dict):
        raise InvalidValue("Must be a JSON object.")
    encoded = json.dumps(extend, separators=(",", ":"), ensure_ascii=False)
    for text in _strings(extend):  # JSON escapes control characters: check the text itself
        check_characters(text)
    if utf8_len(encoded) > EXTEND_MAX_BYTES:
        raise InvalidValue(f"Must be at most {EXTEND_MAX_BYTES} bytes as JSON.")
    return extend


def build_user_data(*, callback_url: str = "", extend: dict | None = None) -> str:
    """VOD's UserData JSON string (at most 1,024 bytes), or '' when there is nothing to say."""
    user_data: dict = {}
    if callback_url:
        user_data["MessageCallback"] = {"CallbackType": "http", "CallbackURL": callback_url}
    if extend:
        user_data["Extend"] = extend
    if not user_data:
        return ""
    encoded = json.dumps(user_data, separators=(",", ":"), ensure_ascii=False)
    if utf8_len(encoded) > USER_DATA_MAX_BYTES:
        raise InvalidValue(f"UserData would exceed {USER_DATA_MAX_BYTES} bytes.")
    return encoded
