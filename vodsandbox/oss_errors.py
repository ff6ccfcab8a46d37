"""OSS's error answers: codes, HTTP statuses, messages, EC codes and the XML error body.

Codes, statuses and messages follow what OSS itself answers (README.md says where each was
checked). Unlike VOD's JSON errors, OSS answers XML:

    <Error><Code/><Message/><RequestId/><HostId/>[details]<EC/><RecommendDoc/></Error>

with `x-oss-request-id` and `x-oss-ec` headers. A HEAD answer has no body, so OSS sends the
same XML base64-encoded in `x-oss-err` (oss2 reads it from there).
"""

from __future__ import annotations

import base64
import secrets
from xml.sax.saxutils import escape

from .wire import Response

# code -> (HTTP status, message, EC or None). EC is OSS's finer-grained error id; only the
# ones seen in OSS's own documentation or SDK tests are given.
CATALOGUE: dict[str, tuple[int, str, str | None]] = {
    "AccessDenied": (403, "You have no right to access this object because of bucket acl.",
                     "0003-00000001"),
    "InvalidAccessKeyId": (403, ("The OSS Access Key Id you provided does not exist in our "
                                "records."), "0002-00000902"),
    "SignatureDoesNotMatch": (403, ("The request signature we calculated does not match the "
                                   "signature you provided. Check your key and signing "
                                   "method."), "0002-00000040"),
    "InvalidSecurityToken": (403, "The security token you provided is invalid.",
                             "0002-00000006"),
    "AccessKeyIdAndSecurityTokenNotMatch": (403, ("The OSS access key id and security token "
                                                 "you provided does not match."),
                                            "0002-00000004"),
    "SecurityTokenExpired": (403, "The security token you provided has expired.",
                             "0002-00000007"),
    "RequestTimeTooSkewed": (403, ("The difference between the request time and the current "
                                  "time is too large."), None),
    "NoSuchBucket": (404, "The specified bucket does not exist.", None),
    "NoSuchKey": (404, "The specified key does not exist.", None),
    "NoSuchUpload": (404, ("The specified upload does not exist. The upload ID may be invalid, "
                          "or the upload may have been aborted or completed."), None),
    "InvalidPart": (400, ("One or more of the specified parts could not be found or the "
                         "specified entity tag might not have matched the part's entity tag."),
                    None),
    "InvalidPartOrder": (400, ("The list of parts was not in ascending order. Parts list must "
                              "specified in order by part number."), "0042-00000209"),
    "EntityTooSmall": (400, "Your proposed upload smaller than the minimum allowed size.",
                       "0042-00000213"),
    "MalformedXML": (400, ("The XML you provided was not well-formed or did not validate "
                          "against our published schema."), None),
    "InvalidArgument": (400, "Invalid Argument", None),
    "InvalidDigest": (400, "The Content-MD5 you specified was invalid.", None),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed size.", None),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource.",
                         None),
    "NotImplemented": (501, "The operation is not implemented by the sandbox.", None),
}


class OssError(Exception):
    """An OSS error answer, raised anywhere below the OSS handler and rendered by it.

    `details` become extra elements of <Error> (OSSAccessKeyId, StringToSign, ...), as OSS
    adds them for signature errors.
    """

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 details: dict[str, str] | None = None, ec: str | None = None) -> None:
        known_status, known_message, known_ec = CATALOGUE.get(code, (400, code, None))
        self.code = code
        self.message = message or known_message
        self.status = status or known_status
        # A message of its own is a different case of the code: its EC only when given.
        self.ec = ec or (known_ec if message is None else None)
        self.details = dict(details or {})
        super().__init__(f"{self.status} {code}: {self.message}")


def new_request_id() -> str:
    """An OSS request id: 24 upper-case hex characters."""
    return secrets.token_hex(12).upper()


def error_xml(error: OssError, request_id: str, host_id: str) -> bytes:
    """The <Error> document OSS answers with."""
    parts = ['<?xml version="1.0" encoding="UTF-8"?>', "<Error>",
             f"  <Code>{escape(error.code)}</Code>",
             f"  <Message>{escape(error.message)}</Message>",
             f"  <RequestId>{request_id}</RequestId>",
             f"  <HostId>{escape(host_id)}</HostId>"]
    parts += [f"  <{name}>{escape(str(value))}</{name}>" for name, value in error.details.items()]
    if error.ec:
        parts += [f"  <EC>{error.ec}</EC>",
                  (f"  <RecommendDoc>https://api.aliyun.com/troubleshoot?q={error.ec}"
                  "</RecommendDoc>")]
    parts.append("</Error>")
    return ("\n".join(parts) + "\n").encode("utf-8")


def error_response(error: OssError, request_id: str, host_id: str, *,
                   head: bool = False) -> Response:
    """The HTTP answer for an OSS error (the XML body, or x-oss-err for HEAD)."""
    body = error_xml(error, request_id, host_id)
    headers = {"Content-Type": "application/xml", "x-oss-request-id": request_id}
    if error.ec:
        headers["x-oss-ec"] = error.ec
    if head:
        # A HEAD answer carries no body; OSS puts the error document in a header instead.
        headers["x-oss-err"] = base64.b64encode(body).decode("ascii")
    response = Response(status=error.status, headers=headers, body=b"" if head else body)
    response.code = error.code
    return response
