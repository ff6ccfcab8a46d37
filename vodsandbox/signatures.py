"""Checking Alibaba Cloud OpenAPI request signatures: V3 (ACS3-HMAC-SHA256) and V1 (HMAC-SHA1).

Both are recomputed from the request exactly as received and compared in constant time.
The order of checks follows the gateway: required parts, then the date, then the AccessKey,
then the signature, and only a correctly signed request spends its nonce (so a forged request
cannot burn a nonce a real one will use).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

from .config import SandboxConfig
from .errors import VodError, invalid, missing
from .state import Clock, Store
from .wire import Request

V3_ALGORITHM = "ACS3-HMAC-SHA256"
# Headers every V3 request carries and must sign ("all common request headers except
# Authorization, when present, must be signed").
V3_REQUIRED_HEADERS = ("host", "x-acs-action", "x-acs-version", "x-acs-date",
                       "x-acs-signature-nonce", "x-acs-content-sha256")
V1_REQUIRED_PARAMS = ("Action", "Version", "AccessKeyId", "Signature", "SignatureMethod",
                      "SignatureVersion", "SignatureNonce", "Timestamp")
# Parameters of the V1 protocol itself, as opposed to the operation's own.
V1_COMMON_PARAMS = frozenset(V1_REQUIRED_PARAMS) | {"Format", "SecurityToken", "RegionId",
                                                    "SignatureType", "BearerToken"}
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Authenticated:
    """Who signed a request, and how."""

    version: str  # "v3" or "v1"
    access_key_id: str
    nonce: str


def percent_encode(value: str) -> str:
    """Alibaba's percent-encoding: RFC 3986, UTF-8, only A-Z a-z 0-9 - _ . ~ left as is."""
    return quote(value, safe="~", encoding="utf-8")


def signature_version(request: Request) -> str | None:
    """Which signature a request claims to carry: "v3", "v1", or None when it has none."""
    if request.header("authorization"):
        return "v3"
    if "Signature" in request.params:
        return "v1"
    return None


def authenticate(request: Request, config: SandboxConfig, store: Store,
                 clock: Clock) -> Authenticated:
    """Verify a request's signature; raise VodError as the gateway would when it fails."""
    version = signature_version(request)
    if version == "v3":
        return _verify_v3(request, config, store, clock)
    if version == "v1":
        return _verify_v1(request, config, store, clock)
    # The RPC protocol names the missing parameter; a V3 client would have sent a header.
    raise missing("Signature" if "AccessKeyId" in request.params else "Authorization")


# --- V3 --------------------------------------------------------------------------------


def canonical_query_string(pairs: list[tuple[str, str]]) -> str:
    """V3's CanonicalQueryString: encoded pairs sorted by name (then value), '&'-joined."""
    encoded = sorted((percent_encode(k), percent_encode(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def v3_canonical_request(request: Request, signed_headers: list[str]) -> str:
    """The V3 CanonicalRequest the client must have signed, rebuilt from what arrived."""
    canonical_headers = "".join(
        f"{name}:{','.join(sorted(v.strip() for v in request.headers.get(name, [])))}\n"
        for name in signed_headers)
    return "\n".join([
        request.method.upper(),
        request.path or "/",
        canonical_query_string(request.query_pairs),
        canonical_headers,
        ";".join(signed_headers),
        hashlib.sha256(request.body).hexdigest(),
    ])


def _parse_authorization(value: str) -> dict[str, str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != V3_ALGORITHM:
        raise VodError("IncompleteSignature", f"The request signature does not conform to "
                       f"Aliyun standards: the sandbox checks {V3_ALGORITHM}, not {algorithm!r}.")
    fields = {}
    for part in rest.split(","):
        name, sep, content = part.strip().partition("=")
        if sep:
            fields[name] = content
    for name in ("Credential", "SignedHeaders", "Signature"):
        if not fields.get(name):
            raise VodError("IncompleteSignature", "The request signature does not conform to "
                           f"Aliyun standards: Authorization lacks {name}.")
    return fields


def _verify_v3(request: Request, config: SandboxConfig, store: Store,
               clock: Clock) -> Authenticated:
    fields = _parse_authorization(request.header("authorization") or "")
    for name in V3_REQUIRED_HEADERS:
        if not request.header(name):
            raise missing(name)
    signed = sorted({name.strip().lower() for name in fields["SignedHeaders"].split(";")
                     if name.strip()})
    must_sign = list(V3_REQUIRED_HEADERS)
    if request.header("x-acs-security-token"):
        must_sign.append("x-acs-security-token")
    for name in must_sign:
        if name not in signed:
            raise VodError("IncompleteSignature", "The request signature does not conform to "
                           f'Aliyun standards: header "{name}" must be in SignedHeaders.')
    for name in signed:
        if name not in request.headers:
            raise VodError("IncompleteSignature", "The request signature does not conform to "
                           f'Aliyun standards: signed header "{name}" is not in the request.')
    _check_fresh(request.header("x-acs-date") or "", config, clock)
    _check_access_key(fields["Credential"], config)

    canonical = v3_canonical_request(request, signed)
    string_to_sign = f"{V3_ALGORITHM}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
    expected = hmac.new(config.access_key_secret.encode("utf-8"),
                        string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, fields["Signature"].strip().lower()):
        raise _mismatch(string_to_sign)
    nonce = request.header("x-acs-signature-nonce") or ""
    _spend_nonce(fields["Credential"], nonce, config, store, clock)
    return Authenticated("v3", fields["Credential"], nonce)


# --- V1 --------------------------------------------------------------------------------


def v1_string_to_sign(method: str, pairs: list[tuple[str, str]]) -> str:
    """V1's StringToSign: METHOD&%2F&encode(sorted, encoded, '&'-joined parameters)."""
    canonical = "&".join(f"{k}={v}" for k, v in sorted(
        (percent_encode(k), percent_encode(v)) for k, v in pairs if k != "Signature"))
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def _verify_v1(request: Request, config: SandboxConfig, store: Store,
               clock: Clock) -> Authenticated:
    params = request.params
    for name in V1_REQUIRED_PARAMS:
        if not params.get(name):
            raise missing(name)
    if params["SignatureMethod"] != "HMAC-SHA1":
        raise invalid("SignatureMethod", "The sandbox checks HMAC-SHA1.")
    if params["SignatureVersion"] != "1.0":
        raise invalid("SignatureVersion")
    _check_fresh(params["Timestamp"], config, clock)
    _check_access_key(params["AccessKeyId"], config)

    string_to_sign = v1_string_to_sign(request.method, request.query_pairs + request.form_pairs)
    digest = hmac.new(f"{config.access_key_secret}&".encode(),
                      string_to_sign.encode("utf-8"), hashlib.sha1).digest()
    if not hmac.compare_digest(base64.b64encode(digest).decode("ascii"), params["Signature"]):
        raise _mismatch(string_to_sign)
    _spend_nonce(params["AccessKeyId"], params["SignatureNonce"], config, store, clock)
    return Authenticated("v1", params["AccessKeyId"], params["SignatureNonce"])


# --- shared checks ---------------------------------------------------------------------


def _check_access_key(access_key_id: str, config: SandboxConfig) -> None:
    if not hmac.compare_digest(access_key_id.encode("utf-8"),
                               config.access_key_id.encode("utf-8")):
        raise VodError("InvalidAccessKeyId.NotFound")


def _check_fresh(stamp: str, config: SandboxConfig, clock: Clock) -> None:
    for pattern in _TIME_FORMATS:
        try:
            signed_at = datetime.strptime(stamp, pattern).replace(tzinfo=UTC)
            break
        except ValueError:
            continue
    else:
        raise VodError("InvalidTimeStamp.Format")
    skew = abs((clock.wall() - signed_at).total_seconds())
    if skew > config.max_clock_skew:
        raise VodError("InvalidTimeStamp.Expired")


def _spend_nonce(access_key_id: str, nonce: str, config: SandboxConfig, store: Store,
                 clock: Clock) -> None:
    # A nonce must stay remembered for as long as its request could still pass the date
    # check: the skew window on either side.
    now = clock.wall().timestamp()
    if not store.use_nonce(access_key_id, nonce, now, 2 * config.max_clock_skew):
        raise VodError("SignatureNonceUsed")


def _mismatch(string_to_sign: str) -> VodError:
    # Like the gateway, say what was expected: the string to sign is no secret and is what
    # someone debugging their own signer needs.
    return VodError("SignatureDoesNotMatch", "Specified signature is not matched with our "
                    f"calculation. server string to sign is:{string_to_sign}")
