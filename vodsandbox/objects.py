"""The objects the sandbox's OSS side holds: whole objects and multipart uploads in progress.

In memory, behind one lock, forgotten on reset(): the sandbox is a test tool and uploads in
tests are small (each request body is bounded by the HTTP server). An object key holds only
its newest version, as an unversioned bucket does.

ETags follow OSS: a PutObject's is the upper-case hex MD5 of the body; a multipart object's
is the MD5 of the parts' binary MD5s joined, then "-<number of parts>".
"""

from __future__ import annotations

import hashlib
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime

from .oss_errors import OssError

# OSS: every part but the last must be at least 100 KB; part numbers run 1..10000.
MIN_PART_SIZE = 100 * 1024
MAX_PART_NUMBER = 10000


def quoted(etag: str) -> str:
    """An ETag as OSS sends it, in double quotes."""
    return f'"{etag}"'


def unquoted(etag: str) -> str:
    """An ETag as a client may send it back (quoted or not, any case), normalised."""
    return etag.strip().strip('"').upper()


@dataclass
class StoredObject:
    """One object: its bytes and what OSS reports about them."""

    data: bytes = field(repr=False)
    etag: str
    content_type: str
    last_modified: datetime
    multipart: bool = False

    @property
    def size(self) -> int:
        """Length in bytes."""
        return len(self.data)


@dataclass
class Part:
    """One uploaded part of a multipart upload."""

    data: bytes = field(repr=False)
    etag: str
    digest: bytes  # the binary MD5, for the multipart ETag
    last_modified: datetime


@dataclass
class MultipartUpload:
    """A multipart upload between InitiateMultipartUpload and Complete/Abort."""

    upload_id: str
    key: str
    content_type: str
    initiated: datetime
    parts: dict[int, Part] = field(default_factory=dict)


class ObjectStore:
    """Thread-safe objects and multipart uploads of the one sandbox bucket."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[str, StoredObject] = {}
        self._uploads: dict[str, MultipartUpload] = {}

    def clear(self) -> None:
        """Forget every object and upload (frees their memory)."""
        with self._lock:
            self._objects.clear()
            self._uploads.clear()

    # --- whole objects -------------------------------------------------------------------

    def put(self, key: str, data: bytes, content_type: str, now: datetime) -> StoredObject:
        """PutObject: store (or replace) an object."""
        stored = StoredObject(data=data, etag=hashlib.md5(data).hexdigest().upper(),
                              content_type=content_type, last_modified=now)
        with self._lock:
            self._objects[key] = stored
        return stored

    def get(self, key: str) -> StoredObject:
        """The object under a key; NoSuchKey when there is none."""
        with self._lock:
            stored = self._objects.get(key)
        if stored is None:
            raise OssError("NoSuchKey", details={"Key": key})
        return stored

    def keys(self) -> list[str]:
        """Every object key, oldest first."""
        with self._lock:
            return list(self._objects)

    # --- multipart -----------------------------------------------------------------------

    def initiate(self, key: str, content_type: str, now: datetime) -> MultipartUpload:
        """InitiateMultipartUpload: a new upload id for a key."""
        upload = MultipartUpload(upload_id=secrets.token_hex(16).upper(), key=key,
                                 content_type=content_type, initiated=now)
        with self._lock:
            self._uploads[upload.upload_id] = upload
        return upload

    def _upload(self, key: str, upload_id: str) -> MultipartUpload:
        # Called with the lock held. An id of another key is as unknown as a made-up one.
        upload = self._uploads.get(upload_id)
        if upload is None or upload.key != key:
            raise OssError("NoSuchUpload", details={"UploadId": upload_id})
        return upload

    def upload_part(self, key: str, upload_id: str, part_number: int, data: bytes,
                    now: datetime) -> Part:
        """UploadPart: store (or replace) one part."""
        digest = hashlib.md5(data).digest()
        part = Part(data=data, etag=digest.hex().upper(), digest=digest, last_modified=now)
        with self._lock:
            self._upload(key, upload_id).parts[part_number] = part
        return part

    def list_parts(self, key: str, upload_id: str, marker: int,
                   max_parts: int) -> tuple[list[tuple[int, Part]], bool]:
        """ListParts: (number, part) after `marker`, at most `max_parts`; and whether more
        follow (oss2's resumable upload asks before uploading)."""
        with self._lock:
            numbers = sorted(n for n in self._upload(key, upload_id).parts if n > marker)
            parts = self._uploads[upload_id].parts
            return [(n, parts[n]) for n in numbers[:max_parts]], len(numbers) > max_parts

    def complete(self, key: str, upload_id: str, listed: list[tuple[int, str]] | None,
                 now: datetime) -> StoredObject:
        """CompleteMultipartUpload from the listed (part number, ETag) pairs, or from every
        uploaded part when `listed` is None (x-oss-complete-all: yes)."""
        with self._lock:
            upload = self._upload(key, upload_id)
            if listed is None:
                listed = [(n, upload.parts[n].etag) for n in sorted(upload.parts)]
            parts = self._check_parts(upload, listed)
            digests = b"".join(part.digest for part in parts)
            stored = StoredObject(
                data=b"".join(part.data for part in parts),
                etag=f"{hashlib.md5(digests).hexdigest().upper()}-{len(parts)}",
                content_type=upload.content_type, last_modified=now, multipart=True)
            self._objects[key] = stored
            del self._uploads[upload_id]
        return stored

    @staticmethod
    def _check_parts(upload: MultipartUpload, listed: list[tuple[int, str]]) -> list[Part]:
        if not listed:
            raise OssError("MalformedXML")
        numbers = [number for number, _ in listed]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise OssError("InvalidPartOrder")
        parts = []
        for number, etag in listed:
            part = upload.parts.get(number)
            if part is None or unquoted(etag) != part.etag:
                raise OssError("InvalidPart", details={"PartNumber": str(number),
                                                      "ETag": etag})
            parts.append(part)
        for number, part in zip(numbers[:-1], parts[:-1], strict=True):
            if len(part.data) < MIN_PART_SIZE:
                raise OssError("EntityTooSmall", details={
                    "PartNumber": str(number), "ProposedSize": str(len(part.data)),
                    "MinSizeAllowed": str(MIN_PART_SIZE)})
        return parts

    def abort(self, key: str, upload_id: str) -> None:
        """AbortMultipartUpload: drop an upload and its parts."""
        with self._lock:
            self._upload(key, upload_id)
            del self._uploads[upload_id]

    def upload_ids(self, key: str | None = None) -> list[str]:
        """Ids of the uploads in progress (of one key, when given)."""
        with self._lock:
            return [u.upload_id for u in self._uploads.values() if key in (None, u.key)]
