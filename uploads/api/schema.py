"""OpenAPI: every operation documents the one error shape under each status it can answer."""

from drf_spectacular import openapi
from drf_spectacular.utils import OpenApiParameter
from rest_framework import serializers

from ..models import UploadStatus
from .errors import ERROR_STATUSES


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer."""

    code = serializers.CharField(help_text="Stable, machine-readable: invalid_input, "
                                           "not_found, vod_throttled, ...")
    detail = serializers.CharField(help_text="What went wrong, for people.")
    request_id = serializers.CharField(help_text="Also in the X-Request-ID header.")
    errors = serializers.DictField(
        child=serializers.JSONField(), required=False,
        help_text="Per-field messages (invalid_input only): a list of strings per field, or "
                  "for list and nested fields an object keyed by index or sub-field.")
    vod_code = serializers.CharField(required=False, help_text="VOD's error code.")
    vod_request_id = serializers.CharField(required=False, help_text="VOD's RequestId.")
    status = serializers.CharField(required=False, help_text="The upload's status "
                                                             "(invalid_state only).")
    limit = serializers.IntegerField(required=False, help_text="The upload policy's limit "
                                                               "that refused the request.")
    resets_at = serializers.DateTimeField(required=False, help_text="When that quota "
                                                                    "resets.")


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema, plus our error responses and the X-Request-ID header."""

    def _error_statuses(self) -> list[int]:
        view = self.view
        statuses = list(getattr(view, "error_statuses", ()))
        if not statuses:
            statuses = [400, 401, 403, 404, 429, 500] if self.method == "POST" else [401, 403,
                                                                                     404, 500]
        return sorted(set(statuses))

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status_code in self._error_statuses():
            key = str(status_code)
            if key not in responses:
                responses[key] = self._get_response_for_code(ErrorSerializer, key,
                                                             direction=direction)
                responses[key]["description"] = ERROR_STATUSES.get(status_code, "Error")
        return responses

    def get_override_parameters(self):
        parameters = [*super().get_override_parameters(),
                      OpenApiParameter("X-Request-ID", str, OpenApiParameter.HEADER,
                                       required=False,
                                       description="Your id for this request (1-64 of "
                                                   "A-Z a-z 0-9 . _ : -); echoed back.")]
        if getattr(self.view, "action", None) == "list":
            parameters.append(OpenApiParameter(
                "status", str, OpenApiParameter.QUERY, required=False,
                enum=UploadStatus.values, description="Only uploads in this status."))
        if getattr(self.view, "action", None) == "create":
            parameters.append(OpenApiParameter(
                "Idempotency-Key", str, OpenApiParameter.HEADER, required=False,
                description="Up to 255 printable ASCII characters. The same key with the "
                            "same body returns the first answer without asking VOD again "
                            "(for 24 h); with another body: 422."))
        return parameters


def link_issued_ids(result, generator, request, public):
    """drf-spectacular postprocessing hook: OpenAPI links from each create's 201 answer to
    the operations on the upload it made (read, refresh, cancel), with the issued id as the
    path parameter. Clients and generators can then follow an id without guessing, and
    schemathesis's stateful phase (scripts/fuzz_api.py) reaches those operations with ids
    that exist."""
    paths = result.get("paths", {})
    for collection, operations in paths.items():
        created = operations.get("post", {}).get("responses", {}).get("201")
        if created is None:
            continue
        links = {}
        for path, path_operations in paths.items():
            rest = path[len(collection):] if path.startswith(collection) else ""
            if not rest.startswith("{"):
                continue
            parameter = rest[1:rest.index("}")]
            for operation in path_operations.values():
                if not isinstance(operation, dict) or "operationId" not in operation:
                    continue
                links[operation["operationId"]] = {
                    "operationId": operation["operationId"],
                    "parameters": {parameter: f"$response.body#/{parameter}"},
                }
        if links:
            created["links"] = links
    return result
