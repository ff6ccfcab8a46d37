"""The sandbox's configuration: one frozen dataclass, a few fields tunable at run time."""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field

# Well-known development keys: what `python -m vodsandbox` and `make run` use when nothing
# else is given. They protect nothing; they only make the SDK sign as it would for VOD.
DEV_ACCESS_KEY_ID = "SandboxDevKeyId0001"
DEV_ACCESS_KEY_SECRET = "sandbox-dev-secret-change-me"

# VOD's documented validity of a video upload credential, in seconds.
DEFAULT_CREDENTIAL_TTL = 3000
# The OpenAPI gateway accepts a request date up to 15 minutes away from its own clock.
DEFAULT_MAX_CLOCK_SKEW = 900
# Seconds between a video's upload and its (pretend) transcoding finishing: long enough for a
# test to see UploadSucc, short enough that waiting for Normal stays cheap.
DEFAULT_TRANSCODE_DELAY = 0.5
# Seconds from a media's creation until SearchMedia finds it. VOD says its search index trails
# creation by a short delay but gives no figure: 2 s is long enough that a client which
# searches right after creating cannot pass by luck, short enough for a local run.
DEFAULT_SEARCH_LAG = 2.0
# Origins the bucket's CORS rule allows (OSS AllowedOrigin, `*` a wildcard): any page served
# from loopback, whatever its port, as the portal's local run and its tests are.
DEFAULT_CORS_ORIGINS = ("http://127.0.0.1:*", "http://localhost:*")
# VOD's built-in "No Transcoding" template group: a video uploaded with it is never transcoded
# and VOD sends only FileUploadComplete (CreateUploadVideo's documentation; README).
NO_TRANSCODE_TEMPLATE_GROUP_ID = "VOD_NO_TRANSCODE"
# The definitions a transcoding template group produces (one StreamTranscodeComplete each).
DEFAULT_TRANSCODE_DEFINITIONS = ("LD", "SD")

# Fields a running sandbox may change (Sandbox.configure, POST /_sandbox/config). The keys,
# host and port are fixed for the life of the server.
TUNABLE_FIELDS = frozenset({
    "region_id", "credential_ttl", "max_clock_skew", "callback_url", "callback_auth_key",
    "qps_limit", "template_group_ids", "storage_locations", "timeout_hold_seconds", "latency",
    "transcode_delay", "cors_origins", "search_lag", "no_transcode_template_group_ids",
    "default_template_group_id", "app_ids", "category_ids", "qps_limits",
    "callback_duplicates", "callback_reorder", "transcode_definitions",
})


@dataclass(frozen=True)
class SandboxConfig:
    """How a sandbox behaves.

    access_key_id / access_key_secret: the one AccessKey pair the sandbox knows; requests
        signed with anything else are refused as VOD refuses them.
    host / port: where to listen; port 0 picks a free port. Only loopback addresses are
        accepted unless allow_remote is set, because the control endpoints carry no auth.
    region_id: reported in HostId, StorageLocation and UploadAuth.
    credential_ttl: seconds an issued STS upload credential stays valid.
    max_clock_skew: seconds a request's x-acs-date / Timestamp may differ from now.
    callback_url: where event notifications go for media whose UserData names no
        MessageCallback.CallbackURL (None: nowhere).
    callback_auth_key: the AuthKey notifications are signed with (X-VOD-TIMESTAMP,
        X-VOD-SIGNATURE); None sends them unsigned.
    qps_limit: answer Throttling.User past this many calls per second for every action
        (None: the per-action limits below apply).
    qps_limits: calls per second per action ({action: limit}); None: VOD's documented limits
        for region_id. qps_limit, when set, overrides it for every action.
    template_group_ids / storage_locations: the ids VOD "knows"; empty means any id is known.
    no_transcode_template_group_ids: template groups that never transcode (always known):
        VOD's built-in VOD_NO_TRANSCODE by default.
    default_template_group_id: the account's default template group, used when a video names
        none (None: a group that transcodes).
    app_ids: the AppIds the account has; empty means any AppId is accepted. app-1000000 (the
        default app) always exists.
    category_ids: the CateIds the account has; empty means any is accepted.
    transcode_definitions: the definitions a transcoding group produces, one
        StreamTranscodeComplete each.
    callback_duplicates: chance (0..1) that an event is delivered a second time.
    callback_reorder: deliver each media's events newest first, once its last one is due.
    timeout_hold_seconds: how long a `timeout` fault holds a connection before closing it.
    latency: seconds added before every VOD answer.
    transcode_delay: seconds after a video's upload before it turns Normal (TranscodeComplete).
    search_lag: seconds after a media's creation (on the sandbox clock) before SearchMedia
        finds it, as VOD's search index trails creation.
    cors_origins: the origins the bucket's CORS rule lets a browser upload from (OSS
        AllowedOrigin patterns, `*` a wildcard); see oss_cors.
    faults: faults in force from the start and again after every reset(), each a dict of
        Faults.add keyword arguments (what the CLI's --fault gives).
    """

    access_key_id: str = DEV_ACCESS_KEY_ID
    access_key_secret: str = field(default=DEV_ACCESS_KEY_SECRET, repr=False)
    host: str = "127.0.0.1"
    port: int = 0
    region_id: str = "cn-shanghai"
    credential_ttl: int = DEFAULT_CREDENTIAL_TTL
    max_clock_skew: int = DEFAULT_MAX_CLOCK_SKEW
    callback_url: str | None = None
    callback_auth_key: str | None = field(default=None, repr=False)
    qps_limit: int | None = None
    template_group_ids: frozenset[str] = frozenset()
    storage_locations: frozenset[str] = frozenset()
    timeout_hold_seconds: float = 30.0
    latency: float = 0.0
    transcode_delay: float = DEFAULT_TRANSCODE_DELAY
    search_lag: float = DEFAULT_SEARCH_LAG
    faults: tuple[dict, ...] = ()
    allow_remote: bool = False
    cors_origins: tuple[str, ...] = DEFAULT_CORS_ORIGINS
    qps_limits: dict[str, int] | None = None
    no_transcode_template_group_ids: frozenset[str] = frozenset({NO_TRANSCODE_TEMPLATE_GROUP_ID})
    default_template_group_id: str | None = None
    app_ids: frozenset[str] = frozenset()
    category_ids: frozenset[int] = frozenset()
    transcode_definitions: tuple[str, ...] = DEFAULT_TRANSCODE_DEFINITIONS
    callback_duplicates: float = 0.0
    callback_reorder: bool = False

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.access_key_secret:
            raise ValueError("SandboxConfig needs an access_key_id and an access_key_secret")
        if not self.allow_remote and not is_loopback_host(self.host):
            raise ValueError(f"host {self.host!r} is not a loopback address; the sandbox's "
                             "control endpoints are unauthenticated (set allow_remote=True "
                             "to bind elsewhere on purpose)")
        if self.qps_limit is not None and self.qps_limit < 1:
            raise ValueError("qps_limit must be at least 1 (or None for no limit)")
        if self.latency < 0 or self.timeout_hold_seconds < 0 or self.transcode_delay < 0:
            raise ValueError("latency, timeout_hold_seconds and transcode_delay must not be "
                             "negative")
        # Checked here rather than left to a TypeError: POST /_sandbox/config passes JSON as is.
        if isinstance(self.search_lag, bool) or not isinstance(self.search_lag, (int, float)):
            raise ValueError("search_lag must be a number of seconds")
        if self.search_lag < 0:
            raise ValueError("search_lag must not be negative")
        object.__setattr__(self, "search_lag", float(self.search_lag))
        object.__setattr__(self, "faults", tuple(dict(f) for f in self.faults))
        origins = (self.cors_origins,) if isinstance(self.cors_origins, str) \
            else tuple(self.cors_origins)
        if not all(isinstance(origin, str) and origin for origin in origins):
            raise ValueError("cors_origins must be origin patterns such as "
                             "'http://127.0.0.1:*'")
        object.__setattr__(self, "cors_origins", origins)
        # Accept any iterable for the id sets but keep them immutable and hashable.
        object.__setattr__(self, "template_group_ids", frozenset(self.template_group_ids))
        object.__setattr__(self, "storage_locations", frozenset(self.storage_locations))
        object.__setattr__(self, "no_transcode_template_group_ids",
                           frozenset(self.no_transcode_template_group_ids))
        object.__setattr__(self, "app_ids", frozenset(self.app_ids))
        object.__setattr__(self, "category_ids",
                           frozenset(int(cate) for cate in self.category_ids))
        object.__setattr__(self, "transcode_definitions", tuple(self.transcode_definitions))
        if self.qps_limits is not None:
            limits = {str(action): int(limit) for action, limit in dict(self.qps_limits).items()}
            if any(limit < 1 for limit in limits.values()):
                raise ValueError("qps_limits must be at least 1 per action")
            object.__setattr__(self, "qps_limits", limits)
        if not 0.0 <= float(self.callback_duplicates) <= 1.0:
            raise ValueError("callback_duplicates must be a chance between 0 and 1")

    def replace(self, **changes) -> SandboxConfig:
        """A copy with some tunable fields changed; refuses the fixed ones."""
        fixed = set(changes) - TUNABLE_FIELDS
        if fixed:
            raise ValueError(f"cannot change {', '.join(sorted(fixed))} on a running sandbox")
        return dataclasses.replace(self, **changes)


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address is this machine (the sandbox reaches nothing further)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
