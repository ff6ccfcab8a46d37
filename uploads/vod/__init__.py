"""The VOD gateway: the only package that imports the Alibaba Cloud SDK.

It hands out typed, frozen results (never SDK models) and turns every SDK or network failure
into one exception family, `VodError`, carrying VOD's code, HTTP status, RequestId and whether
a retry can help. It never logs AccessKeys, UploadAuth or STS secrets.
"""

from .client import backoff, credentials_resolvable, get_client
from .limiter import Booking, book_call
from .operations import (
    CREDENTIAL_TTL_SECONDS,
    create_upload_attached_media,
    create_upload_image,
    create_upload_video,
    delete_attached_media,
    delete_images,
    delete_videos,
    get_attached_media_info,
    get_image_infos,
    get_video_infos,
    get_image_info,
    get_video_info,
    refresh_upload_video,
    search_media_by_tags,
)
from .types import (
    AttachedMediaCredential,
    ImageCredential,
    IssuedUpload,
    MediaInfo,
    MediaInfoBatch,
    UploadAddress,
    UploadCredential,
    VideoCredential,
    VodBadResponse,
    VodDuplicateReference,
    VodError,
    VodInvalidInput,
    VodNotConfigured,
    VodNotFound,
    VodThrottled,
    VodTimeout,
    VodUnavailable,
)

__all__ = [
    "CREDENTIAL_TTL_SECONDS",
    "AttachedMediaCredential",
    "Booking",
    "ImageCredential",
    "IssuedUpload",
    "MediaInfo",
    "MediaInfoBatch",
    "UploadAddress",
    "UploadCredential",
    "VideoCredential",
    "VodBadResponse",
    "VodDuplicateReference",
    "VodError",
    "VodInvalidInput",
    "VodNotConfigured",
    "VodNotFound",
    "VodThrottled",
    "VodTimeout",
    "VodUnavailable",
    "backoff",
    "book_call",
    "create_upload_attached_media",
    "create_upload_image",
    "create_upload_video",
    "delete_attached_media",
    "delete_images",
    "delete_videos",
    "get_image_infos",
    "get_video_infos",
    "credentials_resolvable",
    "get_attached_media_info",
    "get_client",
    "get_image_info",
    "get_video_info",
    "refresh_upload_video",
    "search_media_by_tags",
]
