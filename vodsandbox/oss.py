"""The sandbox's OSS side: the bucket's objects on the sandbox's own port.

Two ways of naming an object reach it, one per client: path-style `/<bucket>/<key>` (oss2,
given an IP endpoint), and `/<key>` alone (ali-oss given an IP endpoint: it means the
bucket to ride in the Host header, as in virtual-hosted style, but a browser may not set
Host, so the bucket is left only in the signature). See `address()`.

What a VOD upload needs, as OSS answers it: PutObject, InitiateMultipartUpload, UploadPart,
CompleteMultipartUpload, AbortMultipartUpload, ListParts (oss2's resumable upload asks), and
GetObject/HeadObject to read an upload back. Every request must be signed (oss_auth: V1 or
V4) with an STS credential the sandbox issued, its x-oss-security-token, before the
credential expires (sandbox clock), and only for the one object key the credential was
issued for; the sandbox's own AccessKey pair may touch any key (the account owner). Errors
are OSS's XML (oss_errors). Browsers are served as a bucket with a CORS rule serves them
(oss_cors): preflights answered, the rule's headers on every answer to an allowed origin.

A finished PutObject or CompleteMultipartUpload moves the media along (lifecycle.py).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from email.utils import format_datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from . import lifecycle, oss_cors
from .objects import ObjectStore, StoredObject, quoted
from .oss_auth import Principal, SignedRequest, authenticate
from .oss_errors import OssError, error_response, new_request_id
from .wire import Request, Response

if TYPE_CHECKING:
    from .sandbox import Sandbox

logger = logging.getLogger("vodsandbox")

_AUTH_SCHEMES = ("OSS ", "OSS4-HMAC-SHA256")
# VOD names every bucket it stores media in `outin-<32 hex>`; the keys it issues (sv/...,
# image/..., attached/...) never start so. That tells a path naming another bucket from a
# key sent without its bucket.
_VOD_BUCKET_PREFIX = "outin-"
# OSS's wording when an STS token's policy does not cover the object (a VOD upload
# credential covers exactly one object key).
_FOREIGN_KEY = "Access denied by authorizer's policy."
# OSS's EC for "denied by the policy configured for the STS token".
_FOREIGN_KEY_EC = "0003-00000301"


def is_oss_request(request: Request, bucket: str) -> bool:
    """Whether a request is for the OSS side: no VOD Action, and the sandbox's bucket in the
    path, an OSS Authorization header (another bucket then gets NoSuchBucket) or a CORS
    preflight (VOD's OpenAPI serves no browser, its bucket does)."""
    if request.header("x-acs-action") or any(k == "Action" for k, _ in request.query_pairs):
        return False
    path = request.path
    if path == f"/{bucket}" or path.startswith(f"/{bucket}/"):
        return True
    return path != "/" and ((request.header("authorization") or "").startswith(_AUTH_SCHEMES)
                            or oss_cors.is_preflight(request))


def address(path: str, bucket: str) -> tuple[str, str]:
    """(bucket, key) a request path names.

    `/<bucket>/<key>` path-style when the first segment is the sandbox's bucket or another
    VOD bucket (`outin-...`: NoSuchBucket later); anything else is a key of the sandbox's
    bucket sent without it. ali-oss sends that to an IP endpoint: it puts the bucket in a
    `Host: <bucket>.oss-<region>.aliyuncs.com` header, which browsers refuse to set, and in
    the signed resource `/<bucket>/<key>`, which the signature check then covers.
    """
    first, _, rest = path.lstrip("/").partition("/")
    if first == bucket or first.startswith(_VOD_BUCKET_PREFIX):
        return unquote(first), unquote(rest)
    return bucket, unquote(path.lstrip("/"))


def _xml(root: str, fields: dict[str, str], raw: str = "") -> bytes:
    """A small OSS result document: text fields, then `raw` (already escaped) elements."""
    inner = "".join(f"  <{name}>{escape(value)}</{name}>\n" for name, value in fields.items())
    inner += raw
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>\n{inner}</{root}>\n'
            ).encode()


class OssService:
    """The OSS request handler of one sandbox, with its objects and request log."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.objects = ObjectStore()
        self._lock = threading.Lock()
        self._log: list[dict] = []

    def clear(self) -> None:
        """Forget objects, uploads in progress and the request log."""
        self.objects.clear()
        with self._lock:
            self._log.clear()

    def requests(self) -> list[dict]:
        """The OSS request log, oldest first (copies)."""
        with self._lock:
            return [dict(entry) for entry in self._log]

    @property
    def host_id(self) -> str:
        """The HostId of error answers, as OSS names a bucket's host."""
        return f"{self._sandbox.bucket}.oss-{self._sandbox.config.region_id}.aliyuncs.com"

    # --- the pipeline --------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        """Answer one OSS request (never raises for a client's mistake: it answers)."""
        request_id = new_request_id()
        bucket, key = address(request.path, self._sandbox.bucket)
        params = request.query_pairs
        origins = self._sandbox.config.cors_origins
        entry = {"operation": None, "method": request.method, "key": key, "status": None,
                 "code": None, "access_key_id": None, "signature_version": None,
                 "request_id": request_id, "time": self._sandbox.clock.now()}
        try:
            if bucket != self._sandbox.bucket:
                raise OssError("NoSuchBucket", details={"BucketName": bucket})
            if oss_cors.is_preflight(request):
                # Unsigned: a browser asks before it sends (and signs) anything.
                entry["operation"] = "Options"
                response = oss_cors.preflight(request, origins)
            else:
                response = self._serve(request, bucket, key, params, entry)
            response.headers.setdefault("x-oss-request-id", request_id)
        except OssError as error:
            response = error_response(error, request_id, self.host_id,
                                      head=request.method == "HEAD")
        # Errors too: a page must be able to read why OSS refused. (A preflight is OPTIONS,
        # which gets nothing here: a refused one carries no CORS header at all.)
        oss_cors.add_headers(response, request, origins)
        entry["status"], entry["code"] = response.status, response.code
        with self._lock:
            self._log.append(entry)
        logger.debug("oss %s %s -> %s %s", entry["operation"] or request.method, key,
                     response.status, response.code or "")
        return response

    def _serve(self, request: Request, bucket: str, key: str, params: list[tuple[str, str]],
               entry: dict) -> Response:
        """Authenticate, pick the operation, check the key, run it (noting who and what in
        the log entry)."""
        principal = self._authenticate(request, bucket, key, params)
        entry["access_key_id"] = principal.access_key_id
        entry["signature_version"] = principal.signature_version
        entry["operation"], operation = self._operation(request.method, key, dict(params),
                                                        request)
        if principal.object_key is not None and key != principal.object_key:
            raise OssError("AccessDenied", _FOREIGN_KEY, details={"Key": key},
                           ec=_FOREIGN_KEY_EC)
        return operation(request, key, dict(params), principal)

    def _authenticate(self, request: Request, bucket: str, key: str,
                      params: list[tuple[str, str]]) -> Principal:
        # http.server decodes header bytes as Latin-1; clients sign UTF-8 (x-oss-meta-*).
        headers = {name: values[0].encode("latin-1", "replace").decode("utf-8", "replace")
                   for name, values in request.headers.items()}
        signed = SignedRequest(method=request.method, bucket=bucket, key=key, params=params,
                               headers=headers)
        sandbox = self._sandbox
        return authenticate(signed, config=sandbox.config, store=sandbox.store,
                            clock=sandbox.clock)

    def _operation(self, method: str, key: str, params: dict, request: Request):
        """(OSS operation name, handler) for a method and sub-resource; NotImplemented for
        the rest of OSS."""
        if not key:
            raise OssError("NotImplemented", "Bucket operations are not served by the "
                                             "sandbox.")
        if method == "PUT" and "uploadId" in params:
            return "UploadPart", self._upload_part
        if method == "PUT" and not request.header("x-oss-copy-source") \
                and not params.keys() & {"acl", "tagging", "symlink"}:
            return "PutObject", self._put_object
        if method == "POST" and "uploads" in params:
            return "InitiateMultipartUpload", self._initiate_multipart_upload
        if method == "POST" and "uploadId" in params:
            return "CompleteMultipartUpload", self._complete_multipart_upload
        if method == "DELETE" and "uploadId" in params:
            return "AbortMultipartUpload", self._abort_multipart_upload
        if method == "GET" and "uploadId" in params:
            return "ListParts", self._list_parts
        if method in ("GET", "HEAD") and not params.keys() & {"uploadId", "acl", "tagging",
                                                              "objectMeta", "symlink"}:
            return ("GetObject" if method == "GET" else "HeadObject"), self._get_object
        if method not in ("GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"):
            raise OssError("MethodNotAllowed")
        raise OssError("NotImplemented", f"{method} with these parameters is not served by "
                                         "the sandbox.")

    # --- operations ----------------------------------------------------------------------

    @staticmethod
    def _check_md5(request: Request) -> str:
        """The body's base64 MD5; InvalidDigest when a sent Content-MD5 disagrees."""
        digest = base64.b64encode(hashlib.md5(request.body).digest()).decode()
        sent = request.header("content-md5")
        if sent is not None and sent.strip() != digest:
            raise OssError("InvalidDigest")
        return digest

    def _put_object(self, request: Request, key: str, params: dict,
                    principal: Principal) -> Response:
        digest = self._check_md5(request)
        stored = self.objects.put(key, request.body, self._content_type(request),
                                  self._sandbox.clock.now())
        self._completed(principal, stored)
        return Response(200, {"ETag": quoted(stored.etag), "Content-MD5": digest})

    def _initiate_multipart_upload(self, request: Request, key: str, params: dict,
                                   principal: Principal) -> Response:
        upload = self.objects.initiate(key, self._content_type(request),
                                       self._sandbox.clock.now())
        return Response(200, {"Content-Type": "application/xml"}, _xml(
            "InitiateMultipartUploadResult",
            {"Bucket": self._sandbox.bucket, "Key": key, "UploadId": upload.upload_id}))

    def _upload_part(self, request: Request, key: str, params: dict,
                     principal: Principal) -> Response:
        number = params.get("partNumber", "")
        if not number.isdigit() or not 1 <= int(number) <= 10000:
            raise OssError("InvalidArgument", "Part number must be an integer between 1 and "
                                              "10000, inclusive.",
                           details={"ArgumentName": "partNumber", "ArgumentValue": number})
        digest = self._check_md5(request)
        part = self.objects.upload_part(key, params["uploadId"], int(number), request.body,
                                        self._sandbox.clock.now())
        return Response(200, {"ETag": quoted(part.etag), "Content-MD5": digest})

    def _complete_multipart_upload(self, request: Request, key: str, params: dict,
                                   principal: Principal) -> Response:
        complete_all = (request.header("x-oss-complete-all") or "").lower() == "yes"
        if complete_all and request.body.strip():
            raise OssError("InvalidArgument", "With x-oss-complete-all: yes the body must be "
                                              "empty.")
        listed = None if complete_all else self._listed_parts(request.body)
        stored = self.objects.complete(key, params["uploadId"], listed,
                                       self._sandbox.clock.now())
        self._completed(principal, stored)
        sandbox = self._sandbox
        return Response(200, {"Content-Type": "application/xml", "ETag": quoted(stored.etag)},
                        _xml("CompleteMultipartUploadResult", {
                            "Location": f"{sandbox.base_url}/{sandbox.bucket}/{key}",
                            "Bucket": sandbox.bucket, "Key": key,
                            "ETag": quoted(stored.etag)}))

    @staticmethod
    def _listed_parts(body: bytes) -> list[tuple[int, str]]:
        """(PartNumber, ETag) pairs of a <CompleteMultipartUpload> body."""
        try:
            root = ElementTree.fromstring(body)
            if root.tag != "CompleteMultipartUpload":
                raise ValueError(root.tag)
            return [(int(part.findtext("PartNumber", "")), part.findtext("ETag", ""))
                    for part in root.findall("Part")]
        except (ElementTree.ParseError, ValueError):
            raise OssError("MalformedXML") from None

    def _abort_multipart_upload(self, request: Request, key: str, params: dict,
                                principal: Principal) -> Response:
        self.objects.abort(key, params["uploadId"])
        return Response(204)

    def _list_parts(self, request: Request, key: str, params: dict,
                    principal: Principal) -> Response:
        marker, max_parts = params.get("part-number-marker") or "0", \
            params.get("max-parts") or "1000"
        if not marker.isdigit() or not max_parts.isdigit() or not 1 <= int(max_parts) <= 1000:
            raise OssError("InvalidArgument", "part-number-marker and max-parts must be whole "
                                              "numbers, max-parts at most 1000.")
        listed, truncated = self.objects.list_parts(key, params["uploadId"], int(marker),
                                                    int(max_parts))
        fields = {"Bucket": self._sandbox.bucket, "Key": key, "UploadId": params["uploadId"],
                  "PartNumberMarker": marker,
                  "NextPartNumberMarker": str(listed[-1][0] if listed else marker),
                  "MaxParts": max_parts, "IsTruncated": "true" if truncated else "false"}
        parts = "".join(
            f"  <Part>\n    <PartNumber>{number}</PartNumber>\n"
            f"    <LastModified>{part.last_modified.strftime('%Y-%m-%dT%H:%M:%S.000Z')}"
            f"</LastModified>\n    <ETag>{quoted(part.etag)}</ETag>\n"
            f"    <Size>{len(part.data)}</Size>\n  </Part>\n" for number, part in listed)
        return Response(200, {"Content-Type": "application/xml"},
                        _xml("ListPartsResult", fields, raw=parts))

    def _get_object(self, request: Request, key: str, params: dict,
                    principal: Principal) -> Response:
        stored = self.objects.get(key)
        # For HEAD the server sends the headers only; Content-Length is the object's.
        return Response(200, {
            "Content-Type": stored.content_type, "ETag": quoted(stored.etag),
            "Last-Modified": format_datetime(stored.last_modified, usegmt=True),
            "x-oss-object-type": "Multipart" if stored.multipart else "Normal",
            "x-oss-storage-class": "Standard"}, stored.data)

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _content_type(request: Request) -> str:
        return request.header("content-type") or "application/octet-stream"

    def _completed(self, principal: Principal, stored: StoredObject) -> None:
        """An object is whole: move the media its credential was issued for."""
        if principal.media is not None:
            lifecycle.upload_completed(self._sandbox, principal.media, stored.size)
