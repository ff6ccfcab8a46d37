"""The bucket's CORS rule, applied as OSS applies one: so a web page can upload to it.

A browser uploading straight to OSS from a page on another origin (the portal) first sends a
preflight `OPTIONS` naming the method and the headers it means to send, then the request
itself, and lets the page read an answer only when it carries `Access-Control-Allow-Origin`.
VOD's buckets answer that from a bucket CORS rule (PutBucketCors); the sandbox behaves as if
its bucket had this one:

    AllowedOrigin   SandboxConfig.cors_origins (default: any loopback origin, any port)
    AllowedMethod   GET PUT POST DELETE HEAD
    AllowedHeader   authorization, content-type, content-md5, ..., x-oss-*
    ExposeHeader    ETag, x-oss-request-id
    MaxAgeSeconds   600

ETag must be exposed: ali-oss reads each part's ETag for CompleteMultipartUpload and refuses
to go on without it. The rule's headers go on every answer to an allowed origin, errors
included, so a page can read why OSS refused (SecurityTokenExpired, ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from .oss_errors import OssError
from .wire import Request, Response

ALLOWED_METHODS = ("GET", "PUT", "POST", "DELETE", "HEAD")
# What ali-oss and oss2 send besides the CORS-safelisted headers; `*` as in an OSS rule.
ALLOWED_HEADERS = ("authorization", "content-type", "content-md5", "content-disposition",
                   "content-encoding", "cache-control", "expires", "x-oss-*")
EXPOSE_HEADERS = ("ETag", "x-oss-request-id")
MAX_AGE_SECONDS = 600

# OSS documents a 403 for a preflight no rule allows; the wording is the one S3-style stores
# (OSS among them) answer with, typos included.
NOT_ALLOWED = ("CORSResponse: This CORS request is not allowed. This is usually because the "
               "evalution of Origin, request method / Access-Control-Request-Method or "
               "Access-Control-Requet-Headers are not whitelisted by the resource's CORS spec.")


@lru_cache(maxsize=64)
def _pattern(rule: str) -> re.Pattern:
    """An OSS AllowedOrigin / AllowedHeader with `*` wildcards, as a case-insensitive regex."""
    return re.compile(".*".join(re.escape(part) for part in rule.split("*")), re.IGNORECASE)


def _matches(value: str, rules: Iterable[str]) -> bool:
    return any(_pattern(rule).fullmatch(value) for rule in rules)


def origin_allowed(origin: str | None, allowed_origins: Iterable[str]) -> bool:
    """Whether a request's Origin is one the rule allows (no Origin: not a CORS request)."""
    return bool(origin) and _matches(origin, allowed_origins)


def is_preflight(request: Request) -> bool:
    """A CORS preflight: OPTIONS naming the method the real request will use."""
    return request.method == "OPTIONS" and request.header("access-control-request-method") \
        is not None


def _rule_headers(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ", ".join(ALLOWED_METHODS),
            "Access-Control-Expose-Headers": ", ".join(EXPOSE_HEADERS),
            "Access-Control-Max-Age": str(MAX_AGE_SECONDS),
            "Vary": "Origin"}


def preflight(request: Request, allowed_origins: Iterable[str]) -> Response:
    """The answer to a preflight: the rule's headers, or OssError 403 AccessForbidden when the
    origin, the method or one of the headers is not allowed (then no CORS header at all)."""
    origin = request.header("origin")
    method = (request.header("access-control-request-method") or "").strip().upper()
    wanted = [name.strip().lower() for name in
              (request.header("access-control-request-headers") or "").split(",")
              if name.strip()]
    if not origin_allowed(origin, allowed_origins) or method not in ALLOWED_METHODS \
            or not all(_matches(name, ALLOWED_HEADERS) for name in wanted):
        raise OssError("AccessForbidden", NOT_ALLOWED, status=403)
    headers = _rule_headers(origin)
    if wanted:
        # As OSS does: echo the headers asked for (every one matched a rule).
        headers["Access-Control-Allow-Headers"] = ", ".join(wanted)
    return Response(200, headers)


def add_headers(response: Response, request: Request, allowed_origins: Iterable[str]) -> None:
    """Put the rule's headers on an actual answer (success or error) to an allowed origin."""
    origin = request.header("origin")
    if request.method in ALLOWED_METHODS and origin_allowed(origin, allowed_origins):
        for name, value in _rule_headers(origin).items():
            response.headers.setdefault(name, value)
