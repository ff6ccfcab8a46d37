"""VOD's error codes, their HTTP statuses and messages, and the error body VOD sends.

Codes, statuses and messages follow Alibaba Cloud's OpenAPI gateway and VOD's API docs (see
README.md for where each was checked). Codes not in the catalogue (a fault injected with any
VOD code) default to 400, or 5xx when the code names a server-side failure.
"""

from __future__ import annotations

import uuid

# code -> (HTTP status, default message)
CATALOGUE: dict[str, tuple[int, str]] = {
    # Gateway: request syntax and signatures.
    "MissingParameter": (400, "A required parameter is not supplied."),
    "InvalidParameter": (400, "The specified parameter is not valid."),
    "InvalidVersion": (400, "Specified parameter Version is not valid."),
    "InvalidAction.NotFound": (404, ("Specified api is not found, please check your url and "
                                     "method.")),
    "InvalidAccessKeyId.NotFound": (404, "Specified access key is not found."),
    "SignatureDoesNotMatch": (400, "Specified signature is not matched with our calculation."),
    "IncompleteSignature": (400, "The request signature does not conform to Aliyun standards."),
    "InvalidTimeStamp.Expired": (400, "Specified time stamp or date value is expired."),
    "InvalidTimeStamp.Format": (400, "Specified time stamp or date value is not well formatted."),
    "SignatureNonceUsed": (400, "Specified signature nonce was used already."),
    "UnsupportedHTTPMethod": (400, "This http method is not supported."),
    # Flow control and server side.
    "Throttling": (400, "Request was denied due to request throttling."),
    "Throttling.User": (400, "Request was denied due to user flow control."),
    "Throttling.Api": (400, "Request was denied due to api flow control."),
    "InternalError": (500, ("The request processing has failed due to some unknown error, "
                           "exception or failure.")),
    "ServiceUnAvailable": (503, ("The request has failed due to a temporary failure of the "
                                "server.")),
    "ServiceUnavailable": (503, ("The request has failed due to a temporary failure of the "
                                "server.")),
    "AddVideoFailed": (503, "Add video failed."),
    # Account state and permissions.
    "OperationDenied": (403, "Your account does not open the service of VOD."),
    "OperationDenied.Suspended": (403, ("Your account has been suspended because of overdue "
                                       "payment.")),
    "Forbidden": (403, "User not authorized to operate on the specified resource."),
    "Forbidden.InitFailed": (403, "Init user failed."),
    "NoPermission": (403, "You are not authorized to perform this operation."),
    # VOD parameter validation.
    "LengthExceededMax": (400, "The length of a parameter exceeds the maximum."),
    "IllegalCharacters": (400, "A parameter contains illegal characters."),
    "TagsExceededMax": (400, "The number of tags exceeds the maximum of 16."),
    "InvalidFileName.Extension": (400, "The file name extension is not supported."),
    "InvalidParameter.ReferenceId": (400, "The specified ReferenceId already exists."),
    "InvalidTemplateGroupId.NotFound": (404, "The TemplateGroupId does not exist."),
    "InvalidStorage.NotFound": (404, "The StorageLocation does not exist."),
    "InvalidCateId.NotFound": (404, "The CateId not exist."),
    "InvalidTranscodeTemplateGroup.NotFound": (404, ("The TranscodeTemplateGroup does not "
                                                     "exist.")),
    "Forbidden.OperateApp": (403, "User not authorized to operate app."),
    # Unknown media.
    "InvalidVideo.NotFound": (404, "The video does not exist."),
    "InvalidVideo.Damaged": (400, "The video is damaged."),
    "InvalidImage.NotFound": (404, "The image does not exist."),
}

_SERVER_SIDE_HINTS = ("InternalError", "ServiceUnavailable", "ServiceUnAvailable", "Failed")


def status_for(code: str) -> int:
    """The HTTP status VOD answers a code with."""
    if code in CATALOGUE:
        return CATALOGUE[code][0]
    if code.endswith(".NotFound"):
        return 404
    if code.startswith(("Forbidden", "NoPermission", "OperationDenied")):
        return 403
    if any(hint in code for hint in _SERVER_SIDE_HINTS):
        return 503 if "Unavailable" in code or "UnAvailable" in code else 500
    return 400


def message_for(code: str) -> str:
    """VOD's default message for a code."""
    return CATALOGUE.get(code, (0, f"The request failed: {code}."))[1]


def new_request_id() -> str:
    """A RequestId in VOD's style: an upper-case UUID."""
    return str(uuid.uuid4()).upper()


class VodError(Exception):
    """An error answer: raised anywhere below the HTTP layer, rendered by it."""

    def __init__(self, code: str, message: str | None = None, *, status: int | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.code = code
        self.message = message or message_for(code)
        self.status = status or status_for(code)
        self.headers = dict(headers or {})
        super().__init__(f"{self.status} {code}: {self.message}")


def missing(name: str) -> VodError:
    """MissingParameter naming the parameter, in the gateway's wording."""
    return VodError("MissingParameter", f'The input parameter "{name}" that is mandatory for '
                                        "processing this request is not supplied.")


def invalid(name: str, why: str = "") -> VodError:
    """InvalidParameter naming the parameter."""
    text = f'The specified parameter "{name}" is not valid.'
    return VodError("InvalidParameter", f"{text} {why}".strip())


def error_body(code: str, message: str, request_id: str, host_id: str) -> dict:
    """The JSON body of an error answer, with the fields VOD sends."""
    return {
        "RequestId": request_id,
        "HostId": host_id,
        "Code": code,
        "Message": message,
        "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&product=vod"
                     f"&requestId={request_id}",
    }
