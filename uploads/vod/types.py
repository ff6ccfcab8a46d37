"""Typed results and the exception family of the VOD gateway. No SDK imports here."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# --- Results ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadAddress:
    """Where the client puts the bytes: the decoded, non-secret UploadAddress."""

    endpoint: str
    bucket: str
    object_key: str


@dataclass(frozen=True)
class UploadCredential:
    """The decoded STS credential from UploadAuth. Secret fields stay out of repr()."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str = field(repr=False)
    expires_at: datetime


@dataclass(frozen=True)
class IssuedUpload:
    """What VOD answered to a Create/Refresh call, for any kind of media."""

    media_id: str
    request_id: str
    # Both exactly as VOD returned them (base64 JSON), for the official upload SDKs.
    upload_address: str = field(repr=False)
    upload_auth: str = field(repr=False)
    address: UploadAddress
    credential: UploadCredential

    @property
    def expires_at(self) -> datetime:
        """When the credential stops working."""
        return self.credential.expires_at


@dataclass(frozen=True)
class VideoCredential(IssuedUpload):
    """CreateUploadVideo / RefreshUploadVideo."""

    @property
    def video_id(self) -> str:
        """VOD's VideoId."""
        return self.media_id


@dataclass(frozen=True)
class ImageCredential(IssuedUpload):
    """CreateUploadImage."""

    image_url: str = ""
    file_url: str = ""


@dataclass(frozen=True)
class AttachedMediaCredential(IssuedUpload):
    """CreateUploadAttachedMedia."""

    media_url: str = ""
    file_url: str = ""


@dataclass(frozen=True)
class MediaInfo:
    """A media's state as Get*Info reports it."""

    media_id: str
    status: str
    size: int | None = None
    duration: float | None = None
    title: str = ""
    reference_id: str = ""
    tags: tuple[str, ...] = ()
    # The template group VOD processes a video with ('' for images and attached media).
    template_group_id: str = ""


@dataclass(frozen=True)
class MediaInfoBatch:
    """Get*Info for several ids: what VOD knows and which ids it does not."""

    found: dict[str, MediaInfo]
    missing: tuple[str, ...]
    request_id: str
    # GetVideoInfos by ReferenceId: what was found, keyed by ReferenceId, and what was not.
    found_by_reference: dict[str, MediaInfo] = field(default_factory=dict)
    missing_references: tuple[str, ...] = ()


# --- Errors ----------------------------------------------------------------------------


class VodError(Exception):
    """A VOD call failed. `code` is VOD's (or ours for network failures)."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        code: str,
        http_status: int | None = None,
        request_id: str = "",
        retry_after: int | None = None,
        operation: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.retry_after = retry_after
        self.operation = operation


class VodInvalidInput(VodError):
    """VOD refused the parameters (our validation should have caught it first)."""


class VodNotFound(VodError):
    """The media id is unknown to VOD."""


class VodDuplicateReference(VodError):
    """A video with this ReferenceId exists already: an earlier answer was lost."""


class VodThrottled(VodError):
    """The account's QPS limit was passed."""

    retryable = True


class VodUnavailable(VodError):
    """VOD failed on its side or could not be reached."""

    retryable = True

    def __init__(self, message: str, *, connect_failed: bool = False, **kwargs):
        super().__init__(message, **kwargs)
        # True when the request never reached VOD, so even a non-idempotent call may repeat.
        self.connect_failed = connect_failed


class VodTimeout(VodError):
    """VOD did not answer within the read timeout."""

    retryable = True


class VodBadResponse(VodError):
    """VOD answered something we cannot read."""

    retryable = True


class VodNotConfigured(VodError):
    """Our side is wrong: credentials, permissions, template or storage settings."""
