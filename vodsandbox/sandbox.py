"""The Sandbox: lifecycle, routing, the VOD request pipeline and the inspection API."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import asdict
from typing import Self

from . import control, lifecycle
from .config import SandboxConfig
from .errors import VodError, error_body, missing, new_request_id
from .faults import Fault, Faults, QpsLimiter, spoil
from .lookups import LOOKUP_ACTIONS
from .notify import Notifier
from .operations import UPLOAD_ACTIONS, Context, qps_limit_for
from .oss import OssService, is_oss_request
from .oss_errors import OssError
from .search import SEARCH_ACTIONS
from .server import HttpServer
from .signatures import V1_COMMON_PARAMS, authenticate, signature_version
from .state import Clock, Store
from .wire import Request, Response

logger = logging.getLogger("vodsandbox")

API_VERSION = "2017-03-21"
# What the gateway answers past an action's QPS limit (README, "Throttling").
THROTTLED = "Throttling.User"
# Every VOD action the sandbox serves.
ACTIONS = {**UPLOAD_ACTIONS, **LOOKUP_ACTIONS, **SEARCH_ACTIONS}


class Sandbox:
    """A local ApsaraVideo VOD OpenAPI on loopback, for the real SDK to run against, with the
    OSS bucket its upload credentials point at (`oss`) and VOD's event notifications
    (`notifier`).

    >>> server = Sandbox(SandboxConfig(access_key_id="id", access_key_secret="secret")).start()
    >>> server.endpoint  # what alibabacloud_tea_openapi's Config(endpoint=...) takes
    """

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self._initial_config = config or SandboxConfig()
        self._config = self._initial_config
        self.store = Store()
        self.clock = Clock()
        self.faults = Faults()
        self._qps = QpsLimiter()
        self._release = threading.Event()
        # One bucket per sandbox, kept across reset(): like the bucket VOD gives an account.
        self.bucket = f"outin-{uuid.uuid4().hex}"
        self._httpd: HttpServer | None = None
        self._thread: threading.Thread | None = None
        self.oss = OssService(self)
        self.notifier = Notifier()
        self.store.on_deleted = lambda removed: lifecycle.media_deleted(self, removed)
        self.notifier.allow_remote = self._initial_config.allow_remote
        self._add_configured_faults()

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> Sandbox:
        """Bind and serve in a daemon thread; returns self."""
        if self._httpd is not None:
            raise RuntimeError("this sandbox is running already")
        self._httpd = HttpServer((self._config.host, self._config.port), self.handle)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"vodsandbox-{self.port}", daemon=True)
        self.notifier.thread_name = f"vodsandbox-{self.port}-notify"
        self._thread.start()
        logger.info("vodsandbox serving on %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, end open and held connections, drop pending notifications (a try in
        flight finishes first), and release the port."""
        if self._httpd is None:
            return
        self._release_held()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
        self.notifier.stop()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget media, nonces, calls, added faults, OSS objects and pending or recorded
        notifications; back to real time and the initial config (whose own faults come back)."""
        self._release_held()
        self.notifier.clear()
        self.oss.clear()
        self.store.clear()
        self._qps.clear()
        self.clock.reset()
        self._config = self._initial_config
        self.faults.clear()
        self._add_configured_faults()

    def _add_configured_faults(self) -> None:
        for fault in self._initial_config.faults:
            self.faults.add(**fault)

    def _release_held(self) -> None:
        # Wake every request held by a timeout or latency fault; later ones wait anew.
        released, self._release = self._release, threading.Event()
        released.set()

    # --- where it listens ----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port."""
        if self._httpd is None:
            raise RuntimeError("the sandbox is not running; call start()")
        return self._httpd.server_address[1]

    @property
    def host(self) -> str:
        """The address it listens on."""
        return self._config.host

    @property
    def endpoint(self) -> str:
        """host:port, as the SDK's Config(endpoint=...) takes it."""
        return f"{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """http://host:port"""
        return f"http://{self.endpoint}"

    # --- configuration -------------------------------------------------------------------

    @property
    def config(self) -> SandboxConfig:
        """The configuration in force (initial config plus configure() changes)."""
        return self._config

    def configure(self, **changes) -> SandboxConfig:
        """Change tunable settings (qps_limit, credential_ttl, ...) until the next reset()."""
        self._config = self._config.replace(**changes)
        return self._config

    @property
    def qps_limit(self) -> int | None:
        """Calls per second for every action before Throttling.User (None: the per-action
        limits, config.qps_limits or VOD's documented ones, apply)."""
        return self._config.qps_limit

    @qps_limit.setter
    def qps_limit(self, value: int | None) -> None:
        """Same as configure(qps_limit=value)."""
        self.configure(qps_limit=value)

    def public_config(self) -> dict:
        """The configuration without the AccessKey secret or callback key, JSON-ready: id
        sets as sorted lists, tuples as lists, qps_limits as an object."""
        data = asdict(self._config)
        data.pop("access_key_secret")
        data.pop("callback_auth_key")
        for name, value in data.items():
            if isinstance(value, (set, frozenset)):
                data[name] = sorted(value)
            elif isinstance(value, tuple):
                data[name] = list(value)
        return data

    # --- inspection ----------------------------------------------------------------------

    def get_video(self, video_id: str) -> dict | None:
        """What the sandbox knows of a video (params, status, address, credential), or None."""
        return self.store.snapshot(video_id, "video")

    def get_image(self, image_id: str) -> dict | None:
        """What the sandbox knows of an image, or None."""
        return self.store.snapshot(image_id, "image")

    def get_attached_media(self, media_id: str) -> dict | None:
        """What the sandbox knows of an attached media, or None."""
        return self.store.snapshot(media_id, "attached")

    def count_videos(self) -> int:
        """How many videos exist."""
        return len(self.store.media_ids("video"))

    def count_images(self) -> int:
        """How many images exist."""
        return len(self.store.media_ids("image"))

    def count_attached_media(self) -> int:
        """How many attached media exist."""
        return len(self.store.media_ids("attached"))

    def set_status(self, media_id: str, status: str, **details) -> dict:
        """Move a media to a VOD status ("Normal", "UploadFail", ...) as if VOD had, with
        details such as Size=..., Duration=...; returns its new state. KeyError if unknown."""
        snapshot = self.store.set_status(media_id, status, self.clock.now(), details)
        if snapshot is None:
            raise KeyError(media_id)
        return snapshot

    def forget(self, media_id: str) -> bool:
        """Delete a media as if someone had deleted it in VOD; False when there is none."""
        return self.store.forget(media_id)

    @property
    def calls(self) -> list[dict]:
        """Every API call received, oldest first: {action, params, status, code, fault,
        signature_version, request_id, time}; status is None when the answer was dropped;
        fault names the injected fault that shaped the answer ("timeout", "reset",
        "truncated", "non_json"), else None."""
        return self.store.calls()

    def count_calls(self, action: str | None = None) -> int:
        """How many API calls were received, of one action when given."""
        return self.store.count_calls(action)

    @property
    def oss_requests(self) -> list[dict]:
        """Every OSS request received, oldest first: {operation, method, key, status, code,
        access_key_id, signature_version, request_id, time}."""
        return self.oss.requests()

    def get_object(self, object_key: str) -> bytes | None:
        """The bytes stored under an object key on the OSS side, or None."""
        try:
            return self.oss.objects.get(object_key).data
        except OssError:
            return None

    @property
    def notifications(self) -> list[dict]:
        """Every event notification attempt, oldest first: {url, event_type, media_id,
        attempt, status, delivered, error, time, payload, headers}."""
        return self.notifier.records()

    def wait_for_notifications(self, count: int = 1, timeout: float = 5.0, *,
                               event_type: str | None = None,
                               delivered: bool | None = None) -> list[dict]:
        """Wait until at least `count` attempts (of an event type / outcome, when given) are
        recorded and return those; TimeoutError when they do not come in time."""
        return self.notifier.wait_for(count, timeout, event_type=event_type,
                                      delivered=delivered)

    def wait_until_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no notification or transcoding is pending or in flight."""
        return self.notifier.wait_until_idle(timeout)

    def state(self) -> dict:
        """Counts, media ids, faults and clock: what GET /_sandbox/state answers."""
        return {
            "base_url": self.base_url if self._httpd else None,
            "bucket": self.bucket,
            "counts": self.store.counts(),
            "videos": self.store.media_ids("video"),
            "images": self.store.media_ids("image"),
            "attached_media": self.store.media_ids("attached"),
            "faults": self.faults.list(),
            "objects": self.oss.objects.keys(),
            "notifications": len(self.notifier.records()),
            "clock": {"now": self.clock.now(), "offset": self.clock.offset},
            "config": self.public_config(),
        }

    # --- routing -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Route one request: control endpoints, then the OSS side (path-style
        /<bucket>/<key> without a VOD Action), then VOD actions."""
        if control.is_control(request.path):
            return control.handle(self, request)
        if is_oss_request(request, self.bucket):
            return self.oss.handle(request)
        if request.header("x-acs-action") or "Action" in request.params or request.path == "/":
            return self._handle_vod(request)
        return Response.json(404, error_body("InvalidAction.NotFound", "Specified api is not "
                                             "found, please check your url and method.",
                                             new_request_id(), self._host_id()))

    def _host_id(self) -> str:
        return f"vod.{self._config.region_id}.aliyuncs.com"

    def _context(self) -> Context:
        return Context(config=self._config, store=self.store, clock=self.clock,
                       base_url=self.base_url, bucket=self.bucket)

    def _handle_vod(self, request: Request) -> Response:
        started = time.perf_counter()
        request_id = new_request_id()
        version = signature_version(request)
        params = request.params
        action = (request.header("x-acs-action") if version == "v3" else None) \
            or params.get("Action") or request.header("x-acs-action") or ""
        entry = {"action": action, "params": {k: v for k, v in params.items()
                                              if k not in V1_COMMON_PARAMS},
                 "status": None, "code": None, "fault": None, "signature_version": version,
                 "request_id": request_id, "time": self.clock.now()}
        # Logged on arrival, so a call held by a fault is already counted.
        self.store.log_call(entry)
        try:
            response = self._run(request, action, version, entry["params"], request_id)
        except VodError as error:
            response = self._error(error, request_id)
        self.store.complete_call(entry, status=None if response.drop else response.status,
                                 code=response.code, fault=response.fault)
        logger.debug("vod %s -> %s %s (%.2f ms)", action or "-", entry["status"], entry["code"]
                     or "", (time.perf_counter() - started) * 1000)
        return response

    def _run(self, request: Request, action: str, version: str | None, params: dict,
             request_id: str) -> Response:
        config = self._config
        if request.method not in ("GET", "POST"):
            raise VodError("UnsupportedHTTPMethod")
        if not action:
            raise missing("Action")
        api_version = request.header("x-acs-version") if version == "v3" \
            else request.params.get("Version")
        if api_version and api_version != API_VERSION:
            raise VodError("InvalidVersion")
        operation = ACTIONS.get(action)
        if operation is None:
            raise VodError("InvalidAction.NotFound")
        authenticate(request, config, self.store, self.clock)
        if not self._qps.admit(action, qps_limit_for(config, action)):
            raise VodError(THROTTLED)
        decision = self.faults.decide(action)
        latency = decision.latency + config.latency
        if latency:
            self._release.wait(latency)
        fault = decision.fault
        if fault is not None and not decision.apply_after:
            return self._fault_answer(fault, request_id)
        body = operation(self._context(), params)
        payload = {"RequestId": request_id}
        payload.update(body)
        answer = Response.json(200, payload, {"x-acs-request-id": request_id})
        return answer if fault is None else self._fault_answer(fault, request_id, answer)

    def _fault_answer(self, fault: Fault, request_id: str,
                      answer: Response | None = None) -> Response:
        """What the client gets instead of `answer` (the operation's, when it was carried out)."""
        if fault.timeout:
            # Hold the connection past any client's read timeout, then close it unanswered.
            self._release.wait(self._config.timeout_hold_seconds)
            return Response(drop=True, fault="timeout")
        if fault.reset:
            return Response(drop=True, reset=True, fault="reset")
        if fault.code or answer is None:
            answer = self._error(fault.error(), request_id)
        return spoil(answer, fault.body) if fault.body else answer

    def _error(self, error: VodError, request_id: str) -> Response:
        headers = {"x-acs-request-id": request_id}
        headers.update(error.headers)
        response = Response.json(error.status, error_body(error.code, error.message, request_id,
                                                          self._host_id()), headers)
        response.code = error.code
        return response
