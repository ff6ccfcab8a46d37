"""The /_sandbox/... control endpoints: inspect and steer a sandbox from another process.

They carry no signature and no auth: the sandbox is a loopback test tool (SandboxConfig
refuses non-loopback hosts unless allow_remote is set). They are routed before, and apart
from, the VOD actions, so no Action can reach them and they can reach no Action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import TUNABLE_FIELDS
from .wire import Request, Response

if TYPE_CHECKING:
    from .sandbox import Sandbox

PREFIX = "/_sandbox"
# Config fields POST /_sandbox/config takes as JSON lists (a bare string would otherwise turn
# into a set of its letters) and the one it takes as an object ({action: limit}, or null).
_LIST_FIELDS = frozenset({"template_group_ids", "storage_locations", "app_ids", "category_ids",
                          "no_transcode_template_group_ids", "transcode_definitions"})
_OBJECT_FIELDS = frozenset({"qps_limits"})
_FAULT_FIELDS = {"action", "code", "rate", "times", "latency", "timeout", "retry_after",
                 "apply_after", "status", "message", "body", "reset"}


def is_control(path: str) -> bool:
    """Whether a path belongs to the control endpoints."""
    return path == PREFIX or path.startswith(PREFIX + "/")


def handle(sandbox: Sandbox, request: Request) -> Response:
    """Answer one control request."""
    route = request.path[len(PREFIX):].rstrip("/") or "/"
    method = request.method
    try:
        payload = request.json() if method in ("POST", "PUT") else {}
    except (ValueError, TypeError) as exc:
        return _error(400, f"the body must be a JSON object: {exc}")

    if route == "/state" and method == "GET":
        return Response.json(200, sandbox.state())
    if route == "/calls" and method == "GET":
        return Response.json(200, {"calls": sandbox.calls})
    if route == "/arrivals" and method == "GET":
        return Response.json(200, {"arrivals": sandbox.store.arrivals()})
    if route == "/notifications" and method == "GET":
        return Response.json(200, {"notifications": sandbox.notifications})
    if route == "/oss" and method == "GET":
        return Response.json(200, {"requests": sandbox.oss_requests})
    if route.startswith("/media/") and method == "GET":
        media = sandbox.store.snapshot(route[len("/media/"):])
        return Response.json(200, media) if media else _error(404, "no such media")
    if route == "/faults":
        if method == "GET":
            return Response.json(200, {"faults": sandbox.faults.list()})
        if method == "POST":
            return _add_fault(sandbox, payload)
        if method == "DELETE":
            sandbox.faults.clear()
            return Response.json(200, {"faults": []})
    if route == "/reset" and method == "POST":
        sandbox.reset()
        return Response.json(200, {"reset": True})
    if route == "/clock/advance" and method == "POST":
        seconds = payload.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            return _error(400, 'give {"seconds": N}')
        now = sandbox.clock.advance(seconds)
        return Response.json(200, {"now": now, "offset": sandbox.clock.offset})
    if route == "/config":
        if method == "POST":
            return _configure(sandbox, payload)
        if method == "GET":
            return Response.json(200, {"config": sandbox.public_config()})
    known = {"/state", "/calls", "/arrivals", "/notifications", "/oss", "/faults", "/reset",
             "/clock/advance", "/config"}
    if route in known or route.startswith("/media/"):
        return _error(405, f"{method} is not allowed on {PREFIX}{route}")
    return _error(404, f"no control endpoint {PREFIX}{route}")


def _add_fault(sandbox: Sandbox, payload: dict) -> Response:
    unknown = set(payload) - _FAULT_FIELDS
    if unknown:
        return _error(400, f"unknown fault fields: {', '.join(sorted(unknown))}")
    try:
        fault = sandbox.faults.add(**payload)
    except (TypeError, ValueError) as exc:
        return _error(400, str(exc))
    return Response.json(201, {"fault": fault.as_dict()})


def _configure(sandbox: Sandbox, payload: dict) -> Response:
    unknown = set(payload) - TUNABLE_FIELDS
    if unknown:
        return _error(400, f"not tunable: {', '.join(sorted(unknown))}")
    for name in sorted(set(payload) & _LIST_FIELDS):
        if not isinstance(payload[name], list):
            return _error(400, f"{name} must be a JSON list")
    for name in sorted(set(payload) & _OBJECT_FIELDS):
        if payload[name] is not None and not isinstance(payload[name], dict):
            return _error(400, f"{name} must be a JSON object of action: limit (or null)")
    try:
        sandbox.configure(**payload)
    except (TypeError, ValueError) as exc:
        return _error(400, str(exc))
    return Response.json(200, {"config": sandbox.public_config()})


def _error(status: int, message: str) -> Response:
    return Response.json(status, {"error": message})
