"""Is an uploaded file a media container of the kind its extension declares?

VOD learns what a file is by probing it (its VideoAnalysisComplete event, failing with
InvalidParameter.ResourceContentBad for a bad source). The sandbox does not decode media; it
reads the file's signature and, where that is cheap, its framing (ISO BMFF boxes that tile the
file, MPEG-TS sync bytes every packet), so a file of random bytes or of another kind is told
from a real one while a real sample file always passes.

One registry (`_CHECKS`) maps an extension to its check. An extension without one is accepted
unexamined (README: CHOSEN), so the sandbox never refuses a format it cannot read.
Standard library only.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

Check = Callable[[bytes], bool]

# --- ISO base media file format (MP4, MOV, 3GP, M4A, F4V, HEIF) --------------------------

# HEIF brands that mean "an image" (HEIC proper, its sequences, and the generic MIAF ones).
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"mif1", b"msf1"})


def _boxes(data: bytes) -> list[tuple[bytes, int, int]] | None:
    """The top-level boxes as (type, start, end), or None unless they tile the whole file.

    Tiling is the structural test: random bytes almost never chain box sizes exactly to the
    end of the file, and a truncated upload leaves the last box short.
    """
    boxes, offset, end = [], 0, len(data)
    while offset < end:
        if end - offset < 8:
            return None
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:  # 64-bit "largesize" follows the type
            if end - offset < 16:
                return None
            size = struct.unpack_from(">Q", data, offset + 8)[0]
            header = 16
        elif size == 0:  # "extends to the end of the file": only legal for the last box
            size = end - offset
        # A four-character code is printable ASCII; anything else is not a box header.
        if size < header or offset + size > end or not all(32 <= c < 127 for c in kind):
            return None
        boxes.append((kind, offset, offset + size))
        offset += size
    return boxes


def _brands(data: bytes, box: tuple[bytes, int, int]) -> set[bytes]:
    """The major and compatible brands of an ftyp box."""
    _, start, end = box
    body = data[start + 8:end]
    if len(body) < 8:
        return set()
    return {body[:4]} | {body[i:i + 4] for i in range(8, len(body) - 3, 4)}


def _iso_bmff(data: bytes, *, ftyp_optional: bool = False) -> bool:
    """A movie: boxes tile the file, with ftyp and moov (QuickTime may have mdat instead of
    ftyp: files from before ftyp existed start with it)."""
    boxes = _boxes(data)
    if not boxes:
        return False
    kinds = {kind for kind, _, _ in boxes}
    if b"moov" not in kinds:
        return False
    return b"ftyp" in kinds or (ftyp_optional and b"mdat" in kinds)


def _mov(data: bytes) -> bool:
    return _iso_bmff(data, ftyp_optional=True)


def _heic(data: bytes) -> bool:
    """HEIF image: boxes tile the file and the leading ftyp names a HEIF image brand."""
    boxes = _boxes(data)
    return bool(boxes) and boxes[0][0] == b"ftyp" and bool(_brands(data, boxes[0])
                                                           & _HEIF_BRANDS)


# --- other containers ----------------------------------------------------------------------

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_ASF_HEADER_GUID = bytes.fromhex("3026b2758e66cf11a6d900aa0062ce6c")
_TS_SYNC = 0x47


def _matroska(data: bytes) -> bool:
    """Matroska / WebM: the EBML magic, and a DocType of matroska or webm in the header (the
    DocType element, 0x4282, sits in the first few dozen bytes)."""
    head = data[:64]
    return head.startswith(_EBML_MAGIC) and (b"\x42\x82" in head) \
        and (b"webm" in head or b"matroska" in head)


def _mpeg_ts(data: bytes) -> bool:
    """MPEG-TS: the sync byte 0x47 at the start of every 188-byte packet, or every 192-byte
    packet after its 4-byte timestamp (M2TS/MTS from cameras). Whole packets only."""
    for size, first in ((188, 0), (192, 4)):
        if data and len(data) % size == 0:
            syncs = data[first::size]
            if syncs.count(_TS_SYNC) == len(syncs):
                return True
    return False


def _riff(form: bytes) -> Check:
    """RIFF with a form type (AVI, WAVE, WEBP); the declared size must fit in the file, so a
    truncated upload fails."""
    def check(data: bytes) -> bool:
        if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != form:
            return False
        return struct.unpack_from("<I", data, 4)[0] + 8 <= len(data)
    return check


def _id3(data: bytes) -> bool:
    return data.startswith(b"ID3") and len(data) >= 10


def _mp3(data: bytes) -> bool:
    """An ID3 tag, or an MPEG audio frame header: 11 sync bits, a layer (not the reserved
    00, which ADTS uses), a bitrate index other than 1111 and a sample rate other than 11."""
    if _id3(data):
        return True
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        return False
    return data[1] & 0x06 != 0 and data[2] >> 4 != 0x0F and (data[2] >> 2) & 0x03 != 0x03


def _adts(data: bytes) -> bool:
    """AAC in ADTS: 12 sync bits and layer 00 (or the rare ADIF header)."""
    if data.startswith(b"ADIF"):
        return True
    return len(data) >= 7 and data[0] == 0xFF and data[1] & 0xF6 == 0xF0


def _prefix(*magics: bytes) -> Check:
    """A check that the file starts with one of `magics`."""
    return lambda data: any(data.startswith(magic) for magic in magics)


# --- text ------------------------------------------------------------------------------------

# C0 controls that text files carry: tab, line feed, form feed, carriage return.
_TEXT_CONTROLS = frozenset(b"\t\n\x0c\r")


def _utf8_text(data: bytes) -> bool:
    """UTF-8 (a BOM allowed) without NUL or other binary control bytes: subtitle files
    (SRT, VTT, ASS, STL, TTML) are text, and a player rejects anything else."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(byte < 32 and byte not in _TEXT_CONTROLS for byte in data)


# --- the registry ----------------------------------------------------------------------------

_PNG = _prefix(b"\x89PNG\r\n\x1a\n")
_JPEG = _prefix(b"\xff\xd8\xff")
_GIF = _prefix(b"GIF87a", b"GIF89a")
_WEBP = _riff(b"WEBP")

# Extension -> check. Video and audio names (CreateUploadVideo's FileName), images
# (ImageExt) and attached media (MediaExt) share it: an extension means the same format
# wherever it appears.
_CHECKS: dict[str, Check] = {
    **dict.fromkeys(("mp4", "m4v", "3gp", "m4a", "f4v"), _iso_bmff),
    **dict.fromkeys(("mov", "qt"), _mov),
    **dict.fromkeys(("mkv", "webm"), _matroska),
    "flv": _prefix(b"FLV\x01"),
    **dict.fromkeys(("ts", "m2t", "mts"), _mpeg_ts),
    "avi": _riff(b"AVI "),
    "wav": _riff(b"WAVE"),
    **dict.fromkeys(("asf", "wmv", "wma"), _prefix(_ASF_HEADER_GUID)),
    "mp3": _mp3,
    "ogg": _prefix(b"OggS"),
    "flac": _prefix(b"fLaC"),
    "aac": _adts,
    "amr": _prefix(b"#!AMR\n", b"#!AMR-WB\n"),
    **dict.fromkeys(("png", "apng"), _PNG),
    **dict.fromkeys(("jpg", "jpeg"), _JPEG),
    "gif": _GIF,
    "webp": _WEBP,
    "heic": _heic,
}

# Attached media by BusinessType: which extensions get their check. Subtitles must be text
# whatever their extension; watermark and material images are checked like images; the
# rest (a watermark .mov, material .mp4/.zip/.apk/.mat) is accepted unexamined (CHOSEN).
_IMAGE_EXTENSIONS = frozenset({"png", "apng", "jpg", "jpeg", "gif", "webp", "heic"})


def has_check(ext: str) -> bool:
    """Whether the sandbox knows how to recognise files with this extension."""
    return ext.lower() in _CHECKS


def is_container(data: bytes, ext: str) -> bool:
    """Whether `data` is a file of the format `ext` names; True for an extension the sandbox
    has no check for (it is accepted unexamined)."""
    check = _CHECKS.get(ext.lower())
    return True if check is None else check(data)


def is_attached_file(data: bytes, ext: str, business_type: str) -> bool:
    """A CreateUploadAttachedMedia upload (MediaExt, BusinessType)."""
    if business_type == "subtitle":
        return _utf8_text(data)
    if ext.lower() in _IMAGE_EXTENSIONS:
        return is_container(data, ext)
    return True


def acceptable(kind: str, data: bytes, details: dict) -> bool:
    """Whether a finished upload holds what its media declared, by media kind ("video",
    "image", "attached") and the media's details (FileExt, ImageExt, MediaExt,
    BusinessType) as the sandbox stores them."""
    if kind == "video":
        return is_container(data, details.get("FileExt") or "")
    if kind == "image":
        return is_container(data, details.get("ImageExt") or "")
    return is_attached_file(data, details.get("MediaExt") or "",
                            details.get("BusinessType") or "")
