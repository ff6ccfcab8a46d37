"""Who sent an OSS request: the signature (V1 and V4) and the STS credential behind it.

V1 (`Authorization: OSS <AccessKeyId>:<Signature>`, what oss2 sends by default):

    Signature = base64(hmac-sha1(secret, VERB\\nContent-MD5\\nContent-Type\\nDate\\n
                                 CanonicalizedOSSHeaders + CanonicalizedResource))

CanonicalizedOSSHeaders are the x-oss-* headers, lower-cased, sorted, `name:value\\n` each;
CanonicalizedResource is /<bucket>/<key> plus the sub-resources (uploads, uploadId,
partNumber, ...) sorted, `?a=1&b`.

V4 (`OSS4-HMAC-SHA256 Credential=<AK>/<date>/<region>/oss/aliyun_v4_request,
[AdditionalHeaders=a;b,] Signature=<hex>`; oss2 with auth_version="v4" and region=...): a
canonical request (method, URI-encoded /bucket/key, every query parameter encoded and
sorted, x-oss-* + content-type + content-md5 + additional headers, the additional header
names, x-oss-content-sha256) hashed into a string to sign, signed with a key derived from
"aliyun_v4" + secret through the date, region, "oss" and "aliyun_v4_request".

Only credentials the sandbox issued (Create*/RefreshUploadVideo) and the sandbox's own
AccessKey pair (the account owner, no token) are known.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote

from .config import SandboxConfig
from .oss_errors import OssError
from .state import Clock, Media, Store

# OSS refuses a request whose date is more than 15 minutes away from its own clock.
MAX_SKEW_SECONDS = 900

# Query parameters that are part of V1's CanonicalizedResource (the OSS list oss2 signs by;
# the ones a VOD upload can meet, plus the common response-* overrides).
V1_SUBRESOURCES = frozenset({
    "acl", "uploads", "uploadId", "partNumber", "location", "logging", "website", "referer",
    "lifecycle", "delete", "append", "position", "security-token", "cors", "objectMeta",
    "restore", "tagging", "symlink", "stat", "versionId", "versions", "x-oss-process",
    "sequential", "callback", "callback-var", "response-content-type",
    "response-content-language", "response-expires", "response-cache-control",
    "response-content-disposition", "response-content-encoding",
})
_V4_DEFAULT_SIGNED = ("content-type", "content-md5")
_V4_HEADER = re.compile(r"^OSS4-HMAC-SHA256\s+(?P<fields>.+)$")


@dataclass(frozen=True)
class Principal:
    """Who a verified request comes from.

    media is None for the account owner (the sandbox's own AccessKey), who may touch any
    object; an STS credential may touch only `object_key`, the key it was issued for.
    """

    access_key_id: str
    media: Media | None
    object_key: str | None
    signature_version: str


@dataclass(frozen=True)
class SignedRequest:
    """The parts of a request a signature covers, decoded from the wire."""

    method: str
    bucket: str
    key: str
    params: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names, first value


def authenticate(signed: SignedRequest, *, config: SandboxConfig, store: Store,
                 clock: Clock) -> Principal:
    """Verify the request's signature and credential; OssError (403 ...) when refused."""
    authorization = signed.headers.get("authorization", "")
    if authorization.startswith("OSS4-HMAC-SHA256"):
        version, access_key_id, fields = "v4", *_parse_v4(authorization)
    elif authorization.startswith("OSS "):
        version, fields = "v1", {}
        access_key_id, _, fields["Signature"] = authorization[4:].strip().rpartition(":")
        if not access_key_id or not fields["Signature"]:
            raise OssError("InvalidArgument", "Authorization header is invalid.")
    elif authorization:
        raise OssError("InvalidArgument", "Authorization header is invalid.")
    else:
        # Anonymous: the VOD bucket is private.
        raise OssError("AccessDenied")

    principal, secret = _credential(signed, access_key_id, version, config, store, clock)
    _check_date(signed, version, clock)
    if version == "v1":
        _verify_v1(signed, access_key_id, secret, fields["Signature"])
    else:
        _verify_v4(signed, access_key_id, secret, fields, config)
    return principal


# --- the credential ----------------------------------------------------------------------


def _credential(signed: SignedRequest, access_key_id: str, version: str,
                config: SandboxConfig, store: Store,
                clock: Clock) -> tuple[Principal, str]:
    token = signed.headers.get("x-oss-security-token")
    unknown = OssError("InvalidAccessKeyId", details={"OSSAccessKeyId": access_key_id})
    if access_key_id == config.access_key_id:
        # The account's own key: no token. With a token, OSS takes the request for an STS
        # one, and the key is no STS key.
        if token is not None:
            raise unknown
        return Principal(access_key_id, None, None, version), config.access_key_secret
    found = store.by_sts_key(access_key_id)
    if found is None or token is None:
        # Without a token an STS key is looked up as a permanent key, which it is not.
        raise unknown
    media, credential = found
    if not hmac.compare_digest(token.encode(), credential.security_token.encode()):
        code = ("AccessKeyIdAndSecurityTokenNotMatch" if store.sts_token_known(token)
                else "InvalidSecurityToken")
        raise OssError(code)
    if credential.expires_at <= clock.now():
        raise OssError("SecurityTokenExpired")
    return (Principal(access_key_id, media, media.address["FileName"], version),
            credential.access_key_secret)


def _check_date(signed: SignedRequest, version: str, clock: Clock) -> None:
    """The request's own date must be within 15 minutes of the real time (clients sign with
    the real time, so advancing the sandbox clock must not make requests stale)."""
    raw = signed.headers.get("x-oss-date") or ("" if version == "v4"
                                               else signed.headers.get("date", ""))
    moment = _parse_date(raw)
    if moment is None:
        raise OssError("AccessDenied", "The request has no valid Date or x-oss-date header.")
    now = clock.wall()
    if abs((now - moment).total_seconds()) > MAX_SKEW_SECONDS:
        raise OssError("RequestTimeTooSkewed", details={
            "RequestTime": raw, "ServerTime": now.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "MaxAllowedSkewMilliseconds": str(MAX_SKEW_SECONDS * 1000)})


def _parse_date(raw: str) -> datetime | None:
    if not raw:
        return None
    try:
        if re.fullmatch(r"\d{8}T\d{6}Z", raw):
            return datetime.strptime(raw, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        moment = parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- V1 ----------------------------------------------------------------------------------


def v1_string_to_sign(signed: SignedRequest) -> str:
    """VERB, Content-MD5, Content-Type, Date, CanonicalizedOSSHeaders + CanonicalizedResource."""
    headers = signed.headers
    oss_headers = "".join(f"{name}:{headers[name]}\n" for name in sorted(headers)
                          if name.startswith("x-oss-"))
    subresources = sorted((k, v) for k, v in signed.params if k in V1_SUBRESOURCES)
    resource = f"/{signed.bucket}/{signed.key}"
    if subresources:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in subresources)
    date = headers.get("x-oss-date") or headers.get("date", "")
    return "\n".join([signed.method, headers.get("content-md5", ""),
                      headers.get("content-type", ""), date, oss_headers + resource])


def _verify_v1(signed: SignedRequest, access_key_id: str, secret: str, provided: str) -> None:
    to_sign = v1_string_to_sign(signed)
    expected = base64.b64encode(hmac.new(secret.encode(), to_sign.encode(),
                                         hashlib.sha1).digest()).decode()
    if not hmac.compare_digest(expected.encode(), provided.encode()):
        raise OssError("SignatureDoesNotMatch", details={
            "OSSAccessKeyId": access_key_id, "SignatureProvided": provided,
            "StringToSign": to_sign})


# --- V4 ----------------------------------------------------------------------------------


def _parse_v4(authorization: str) -> tuple[str, dict[str, str]]:
    match = _V4_HEADER.match(authorization)
    fields: dict[str, str] = {}
    for part in (match.group("fields") if match else "").split(","):
        name, _, value = part.strip().partition("=")
        fields[name] = value.strip()
    scope = fields.get("Credential", "").split("/")
    if len(scope) != 5 or not scope[0] or not fields.get("Signature") \
            or scope[3] != "oss" or scope[4] != "aliyun_v4_request":
        raise OssError("InvalidArgument", "Authorization header is invalid.")
    fields["date"], fields["region"] = scope[1], scope[2]
    return scope[0], fields


def _v4_encode(text: str, keep_slash: bool) -> str:
    return quote(text, safe="-_.~" + ("/" if keep_slash else ""), encoding="utf-8")


def v4_canonical_request(signed: SignedRequest, additional: list[str]) -> str:
    """The canonical request V4 hashes (headers trimmed as OSS's V4 spec says)."""
    headers = signed.headers
    query = sorted((_v4_encode(k, False), _v4_encode(v, False)) for k, v in signed.params)
    names = sorted(name for name in headers
                   if name.startswith("x-oss-") or name in _V4_DEFAULT_SIGNED
                   or name in additional)
    return "\n".join([
        signed.method,
        _v4_encode(f"/{signed.bucket}/{signed.key}", True),
        "&".join(f"{k}={v}" if v else k for k, v in query),
        "".join(f"{name}:{headers[name].strip()}\n" for name in names),
        ";".join(sorted(additional)),
        headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
    ])


def _verify_v4(signed: SignedRequest, access_key_id: str, secret: str, fields: dict,
               config: SandboxConfig) -> None:
    stamp = signed.headers.get("x-oss-date", "")
    if fields["date"] != stamp[:8]:
        raise OssError("InvalidArgument", "The date in the Credential scope does not match "
                                          "x-oss-date.")
    if fields["region"] != config.region_id:
        raise OssError("InvalidArgument", f"Invalid signing region in Authorization header; "
                                          f"expected {config.region_id}.")
    additional = [name.strip().lower() for name in fields.get("AdditionalHeaders", "").split(";")
                  if name.strip()]
    canonical = v4_canonical_request(signed, additional)
    scope = f"{fields['date']}/{fields['region']}/oss/aliyun_v4_request"
    to_sign = "\n".join(["OSS4-HMAC-SHA256", stamp, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = f"aliyun_v4{secret}".encode()
    for part in (fields["date"], fields["region"], "oss", "aliyun_v4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), fields["Signature"].encode()):
        raise OssError("SignatureDoesNotMatch", details={
            "OSSAccessKeyId": access_key_id, "SignatureProvided": fields["Signature"],
            "StringToSign": to_sign, "CanonicalRequest": canonical})
