"""The request and response as the sandbox's handlers see them, free of http.server details."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import parse_qsl

from .state import iso


@dataclass
class Request:
    """One HTTP request: method, raw path and query, lower-cased headers, body bytes."""

    method: str
    path: str
    query_string: str
    headers: dict[str, list[str]]
    body: bytes = b""
    client: str = ""

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        values = self.headers.get(name.lower())
        return values[0] if values else None

    @property
    def query_pairs(self) -> list[tuple[str, str]]:
        """The query string decoded as a form (the SDK encodes spaces as '+')."""
        return parse_qsl(self.query_string, keep_blank_values=True)

    @property
    def form_pairs(self) -> list[tuple[str, str]]:
        """The body's parameters when it is a URL-encoded form, else none."""
        content_type = (self.header("content-type") or "").lower()
        if not self.body or not content_type.startswith("application/x-www-form-urlencoded"):
            return []
        return parse_qsl(self.body.decode("utf-8", errors="replace"), keep_blank_values=True)

    @property
    def params(self) -> dict[str, str]:
        """Query and form parameters together (the form wins on a clash), as RPC reads them."""
        merged = dict(self.query_pairs)
        merged.update(self.form_pairs)
        return merged

    def json(self) -> dict:
        """The body as a JSON object ({} when empty); ValueError/TypeError when it is not."""
        if not self.body.strip():
            return {}
        value = json.loads(self.body)
        if not isinstance(value, dict):
            raise TypeError("the body must be a JSON object")
        return value


@dataclass
class Response:
    """One HTTP answer. `drop` means: send nothing and close the connection; with `reset`,
    close it with a TCP RST instead of a FIN. `cut_after`: send the head (announcing the
    whole body) and only that many bytes of the body, then close the connection.

    `code` is the VOD error code answered and `fault` the kind of injected fault that shaped
    the answer (both for the call log; never sent as such).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop: bool = False
    reset: bool = False
    cut_after: int | None = None
    code: str | None = None
    fault: str | None = None

    @classmethod
    def json(cls, status: int, payload, headers: dict[str, str] | None = None) -> Response:
        """A JSON answer with VOD's content type."""
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"),
                          default=_jsonable).encode("utf-8")
        merged = {"Content-Type": "application/json;charset=utf-8"}
        merged.update(headers or {})
        return cls(status=status, headers=merged, body=body)


def _jsonable(value):
    """JSON for what inspection answers hold besides plain data: times and id sets."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
