"""VOD's parameter rules, each raising the VodError VOD answers with.

Lengths are UTF-8 bytes: VOD's docs say "characters" in places, but LengthExceededMax is
reported on the encoded length.
"""

from __future__ import annotations

import json
import re
import unicodedata

from .errors import VodError, invalid, missing

TITLE_MAX_BYTES = 128
DESCRIPTION_MAX_BYTES = 1024
TAGS_MAX_COUNT = 16
TAG_MAX_BYTES = 32
USER_DATA_MAX_BYTES = 1024
EXTEND_MAX_BYTES = 512
CATE_IDS_MAX_COUNT = 5
IDS_PER_CALL_MAX = 20

VIDEO_EXTENSIONS = frozenset({
    "mp4", "ts", "3gp", "mpg", "mpeg", "mpe", "dat", "vob", "asf", "avi", "wmv", "flv", "f4v",
    "rm", "rmvb", "mov", "mkv", "m3u8", "dv", "gif", "m2t", "m4v", "mj2", "mjpeg", "mts", "ogg",
    "qt", "swf", "webm"})
AUDIO_EXTENSIONS = frozenset({
    "mp3", "wma", "wav", "aac", "ra", "m4a", "flac", "ape", "ac3", "amr", "caf", "acm"})
IMAGE_TYPES = frozenset({"default", "cover"})
# VOD's ImageExt (SDK 3.12.1's CreateUploadImageRequest docs: png, jpg, jpeg, gif, heic,
# webp; the upload overview lists HEIC too).
IMAGE_EXTENSIONS = frozenset({"png", "jpg", "jpeg", "gif", "heic", "webp"})
ATTACHED_MEDIA_EXTENSIONS = {
    "watermark": frozenset({"png", "gif", "apng", "mov"}),
    "subtitle": frozenset({"srt", "ass", "stl", "ttml", "vtt"}),
    "material": frozenset({"jpg", "gif", "png", "mp4", "mat", "zip", "apk"}),
}
REFERENCE_ID = re.compile(r"[A-Za-z0-9_-]{6,64}")


def required(params: dict, name: str) -> str:
    """A parameter that must be present and not empty."""
    value = params.get(name, "")
    if value == "":
        raise missing(name)
    return value


def check_characters(name: str, value: str, *, multiline: bool = False) -> None:
    """Emoji (beyond U+FFFF), surrogates and control characters are IllegalCharacters.

    Tabs and line breaks pass only in multi-line text (Description).
    """
    for char in value:
        if ord(char) > 0xFFFF or unicodedata.category(char) in ("Cc", "Cs"):
            if multiline and char in "\t\r\n":
                continue
            raise VodError("IllegalCharacters", f'The parameter "{name}" contains illegal '
                                                "characters (emoji or control characters).")


def check_text(params: dict, name: str, max_bytes: int, *, multiline: bool = False) -> str:
    """An optional text parameter within VOD's character set and byte limit."""
    value = params.get(name, "")
    check_characters(name, value, multiline=multiline)
    size = len(value.encode("utf-8"))
    if size > max_bytes:
        raise VodError("LengthExceededMax", f'The parameter "{name}" is {size} bytes long; '
                                            f"the maximum is {max_bytes} bytes.")
    return value


def check_tags(params: dict) -> list[str]:
    """Tags: comma-separated, at most 16, each at most 32 bytes."""
    raw = params.get("Tags", "")
    check_characters("Tags", raw)
    tags = [tag.strip() for tag in raw.split(",") if tag.strip()]
    if len(tags) > TAGS_MAX_COUNT:
        raise VodError("TagsExceededMax", f"{len(tags)} tags were given; the maximum is "
                                          f"{TAGS_MAX_COUNT}.")
    for tag in tags:
        size = len(tag.encode("utf-8"))
        if size > TAG_MAX_BYTES:
            raise VodError("LengthExceededMax", f'The tag "{tag}" is {size} bytes long; the '
                                                f"maximum is {TAG_MAX_BYTES} bytes.")
    return tags


def extension_of(file_name: str) -> str:
    """The lower-case extension of a file name (which may be a path), or ''."""
    base = re.split(r"[\\/]", file_name)[-1]
    stem, dot, ext = base.rpartition(".")
    return ext.lower() if dot and stem.strip(".") and ext else ""


def check_file_name(params: dict, name: str, allowed: frozenset[str] | None, *,
                    extension_required: bool = True) -> str:
    """A file name with an extension (from `allowed`, when given): its lower-case extension
    ("" for a name without one, where VOD makes the extension optional)."""
    value = params.get(name, "")
    check_characters(name, value)
    ext = extension_of(value)
    if not ext and not extension_required:
        return ""
    if not ext or (allowed is not None and ext not in allowed):
        raise VodError("InvalidFileName.Extension", f'The extension of "{name}" '
                       f"({value!r}) is not supported.")
    return ext


def check_integer(params: dict, name: str) -> int | None:
    """An optional non-negative whole number (FileSize, CateId)."""
    value = params.get(name, "")
    if value == "":
        return None
    if not value.isascii() or not value.isdigit():
        raise invalid(name, "It must be a non-negative whole number.")
    return int(value)


def check_id_list(params: dict, name: str, *, max_count: int, numeric: bool = False,
                  needed: bool = True) -> list[str]:
    """A comma-separated id list (MediaIds, VideoIds, CateIds) of at most max_count ids."""
    raw = params.get(name, "")
    if raw == "" and needed:
        raise missing(name)
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    if needed and not ids:
        raise missing(name)
    if len(ids) > max_count:
        raise invalid(name, f"At most {max_count} ids may be given.")
    if numeric and not all(part.isascii() and part.isdigit() for part in ids):
        raise invalid(name, "Each id must be a whole number.")
    return list(dict.fromkeys(ids))


def check_reference_id(params: dict) -> str | None:
    """ReferenceId: 6 to 64 of A-Z a-z 0-9 _ -."""
    value = params.get("ReferenceId", "")
    if value == "":
        return None
    if not REFERENCE_ID.fullmatch(value):
        raise invalid("ReferenceId", "It must be 6 to 64 characters of A-Z, a-z, 0-9, _ and -.")
    return value


def check_user_data(params: dict) -> dict | None:
    """UserData: a JSON object of at most 1,024 bytes whose Extend is at most 512 bytes."""
    raw = params.get("UserData", "")
    if raw == "":
        return None
    if len(raw.encode("utf-8")) > USER_DATA_MAX_BYTES:
        raise invalid("UserData", f"It must be at most {USER_DATA_MAX_BYTES} bytes.")
    try:
        data = json.loads(raw)
    except ValueError:
        raise invalid("UserData", "It must be a JSON object.") from None
    if not isinstance(data, dict):
        raise invalid("UserData", "It must be a JSON object.")
    extend = data.get("Extend")
    if extend is not None:
        # VOD's own example nests Extend as a JSON string; an object is accepted too.
        text = extend if isinstance(extend, str) else json.dumps(
            extend, ensure_ascii=False, separators=(",", ":"))
        if len(text.encode("utf-8")) > EXTEND_MAX_BYTES:
            raise invalid("UserData", f"Its Extend must be at most {EXTEND_MAX_BYTES} bytes.")
    return data


def check_known(params: dict, name: str, known: frozenset[str], code: str, *,
                always: frozenset[str] = frozenset()) -> str:
    """An id the account must have: one of `known` or `always` (an empty `known` set knows
    every id, as a sandbox with nothing configured does); refused with the code's own
    message, as VOD words it."""
    value = params.get(name, "")
    if value and known and value not in known and value not in always:
        raise VodError(code)
    return value


def check_categories(cate_ids: list[int], known: frozenset[int], code: str) -> None:
    """Each category id must be one the account has (an empty `known` set knows all)."""
    for cate_id in cate_ids:
        if known and cate_id not in known:
            raise VodError(code)


def check_choice(params: dict, name: str, choices: frozenset[str], *,
                 default: str | None = None) -> str:
    """A value from a fixed set (case-insensitive), or the default when absent."""
    value = params.get(name, "")
    if value == "":
        if default is None:
            raise missing(name)
        return default
    if value.lower() not in choices:
        raise invalid(name, f"Valid values: {', '.join(sorted(choices))}.")
    return value.lower()
