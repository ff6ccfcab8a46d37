"""Business logic: the only code that writes upload rows (HackSoft-style services).

`issuing` creates and refreshes credentials; `lifecycle` moves uploads along from what VOD
reports. Callers (api, admin, commands) import this package and never the gateway: its
failures are re-exported here.
"""

from ..dependencies import DependencyUnavailable
from ..vod import (
    VodBadResponse,
    credentials_resolvable,
    VodError,
    VodInvalidInput,
    VodNotConfigured,
    VodNotFound,
    VodThrottled,
    VodTimeout,
    VodUnavailable,
)
from .access import NotPermitted, staff_permitted, upload_action_check
from .events import refused_events_prune
from .issuing import (
    REFRESHABLE_STATUSES,
    InvalidState,
    Issued,
    nothing_created,
    attached_media_issue,
    image_issue,
    video_issue,
    video_refresh,
)
from .lifecycle import SyncResult, upload_remove
from .policies import PolicyRefused, policy_for, usage
from .vod_check import Finding, vod_check, vod_check_verdict
from .reconcile import NEVER_DELIVERED, upload_discard, upload_id_for_retry, uploads_sync

__all__ = [
    "NEVER_DELIVERED",
    "NotPermitted",
    "PolicyRefused",
    "REFRESHABLE_STATUSES",
    "DependencyUnavailable",
    "Finding",
    "InvalidState",
    "Issued",
    "SyncResult",
    "VodBadResponse",
    "VodError",
    "VodInvalidInput",
    "VodNotConfigured",
    "VodNotFound",
    "VodThrottled",
    "VodTimeout",
    "VodUnavailable",
    "attached_media_issue",
    "credentials_resolvable",
    "image_issue",
    "nothing_created",
    "policy_for",
    "refused_events_prune",
    "staff_permitted",
    "upload_action_check",
    "upload_discard",
    "upload_id_for_retry",
    "upload_remove",
    "usage",
    "uploads_sync",
    "video_issue",
    "video_refresh",
    "vod_check",
    "vod_check_verdict",
]
