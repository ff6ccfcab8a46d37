"""API viewsets: authenticate, validate, call a service, shape the answer. Nothing more."""

from django.conf import settings
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import callbacks, services
from ..audit import RequestContext
from ..middleware import client_ip
from ..models import AttachedMediaUpload, ImageUpload, UploadStatus, VideoUpload
from . import serializers
from .errors import payload_too_large
from .idempotency import idempotent
from .throttles import CredentialIssueThrottle, CredentialRefreshThrottle

# VOD ids are 32 hex characters; accept VOD's alphabet and nothing else in the URL.
VOD_ID_PATTERN = r"[0-9A-Za-z_-]{1,64}"
# Credentials must never be stored by a browser or a proxy.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def request_context(request) -> RequestContext:
    """Who is asking and from where, for the audit trail."""
    return RequestContext.from_request(request)


class NewestFirst(CursorPagination):
    """Stable paging over a growing table: no COUNT(*), no skipped or repeated rows."""

    ordering = ("-created_at", "-id")
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class UploadViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.DestroyModelMixin,
                    viewsets.GenericViewSet):
    """Shared read side: users see their own uploads; staff see and act on others' only
    with the admin's permissions for the same (services.access)."""

    model = None
    record_serializer_class = None
    issued_serializer_class = None
    create_serializer_class = None
    lookup_field = "vod_id"
    lookup_value_regex = VOD_ID_PATTERN
    pagination_class = NewestFirst

    def get_queryset(self):
        uploads = self.model.objects.select_related("owner")
        if not services.staff_permitted(self.request.user, self.model, "retrieve"):
            # Another user's id answers 404, exactly like an unknown one: no id probing.
            uploads = uploads.filter(owner=self.request.user)
        wanted_status = self.request.query_params.get("status")
        if wanted_status is not None:
            if wanted_status not in UploadStatus.values:
                raise ValidationError({"status": [
                    f"Not a status; one of: {', '.join(UploadStatus.values)}."]})
            uploads = uploads.filter(status=wanted_status)
        return uploads

    @property
    def error_statuses(self):
        """The statuses this action can answer with the error shape (for the schema)."""
        if self.action == "create":
            return (400, 401, 403, 404, 409, 413, 422, 429, 500, 502, 503, 504)
        if self.action == "list":
            return (400, 401, 403, 404, 500)  # 400: ?status=; 404: an invalid cursor
        if self.action == "retrieve":
            return (401, 403, 404, 500)
        if self.action == "destroy":
            return (401, 403, 404, 429, 500, 502, 503, 504)
        return (400, 401, 403, 404, 409, 429, 500, 502, 503, 504)

    def get_throttles(self):
        if self.action == "create":
            return [CredentialIssueThrottle()]
        if self.action == "refresh":
            return [CredentialRefreshThrottle()]
        return []

    def get_serializer_class(self):
        if self.action == "create":
            return self.create_serializer_class
        return self.record_serializer_class

    def get_object(self):
        """The upload, if the caller may do this action to it (403, audited, if they may
        only see it)."""
        upload = super().get_object()
        if self.action != "retrieve":
            services.upload_action_check(upload=upload, user=self.request.user,
                                         action=self.action,
                                         context=request_context(self.request))
        return upload

    def issued_response(self, issued: services.Issued, status_code: int) -> Response:
        """The record with its credential; never cached by a browser or proxy."""
        body = self.issued_serializer_class(issued.upload,
                                            context={"credential": issued.credential}).data
        return Response(body, status=status_code, headers=NO_STORE)

    def issue(self, **validated) -> services.Issued:
        """Call the kind's issuing service."""
        raise NotImplementedError

    def create(self, request, *args, **kwargs):
        """Issue a credential; with an Idempotency-Key, at most once per key."""
        return idempotent(request, f"{self.basename}.create", self.model,
                          lambda upload_id: self._create(request, upload_id))

    def _create(self, request, upload_id):
        incoming = self.get_serializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        issued = self.issue(owner=request.user, context=request_context(request),
                            upload_id=upload_id, **incoming.validated_data)
        return self.issued_response(issued, status.HTTP_201_CREATED)

    def destroy(self, request, *args, **kwargs):
        """Delete the media in VOD and keep the record: `deleted` once its file had reached
        VOD, `cancelled` before."""
        ended = services.upload_remove(upload=self.get_object(),
                                       context=request_context(request))
        return Response(self.record_serializer_class(ended).data)


_DESTROY_DESCRIPTION = ("Delete the media in VOD; the record stays: `deleted` when its file had "
                        "reached VOD, `cancelled` while the upload was still to come.")


@extend_schema_view(
    create=extend_schema(request=serializers.VideoCreateSerializer,
                         responses={201: serializers.VideoIssuedSerializer}),
    destroy=extend_schema(responses={200: serializers.VideoUploadSerializer},
                          description=_DESTROY_DESCRIPTION),
)
class VideoViewSet(UploadViewSet):
    """Videos and audio: CreateUploadVideo, RefreshUploadVideo."""

    model = VideoUpload
    record_serializer_class = serializers.VideoUploadSerializer
    issued_serializer_class = serializers.VideoIssuedSerializer
    create_serializer_class = serializers.VideoCreateSerializer
    lookup_url_kwarg = "video_id"

    def issue(self, **validated) -> services.Issued:
        return services.video_issue(**validated)

    @extend_schema(request=None, responses={200: serializers.VideoIssuedSerializer})
    @action(detail=True, methods=["post"])
    def refresh(self, request, *args, **kwargs):
        """A fresh credential for the same upload address (the old one expired or failed)."""
        issued = services.video_refresh(video=self.get_object(), context=request_context(request))
        return self.issued_response(issued, status.HTTP_200_OK)

    def get_serializer_class(self):
        if self.action == "refresh":
            return self.record_serializer_class
        return super().get_serializer_class()


@extend_schema_view(
    create=extend_schema(request=serializers.ImageCreateSerializer,
                         responses={201: serializers.ImageIssuedSerializer}),
    destroy=extend_schema(responses={200: serializers.ImageUploadSerializer},
                          description=_DESTROY_DESCRIPTION),
)
class ImageViewSet(UploadViewSet):
    """Images: CreateUploadImage."""

    model = ImageUpload
    record_serializer_class = serializers.ImageUploadSerializer
    issued_serializer_class = serializers.ImageIssuedSerializer
    create_serializer_class = serializers.ImageCreateSerializer
    lookup_url_kwarg = "image_id"

    def issue(self, **validated) -> services.Issued:
        return services.image_issue(**validated)


@extend_schema_view(
    create=extend_schema(request=serializers.AttachedMediaCreateSerializer,
                         responses={201: serializers.AttachedMediaIssuedSerializer}),
    destroy=extend_schema(responses={200: serializers.AttachedMediaUploadSerializer},
                          description=_DESTROY_DESCRIPTION),
)
class AttachedMediaViewSet(UploadViewSet):
    """Watermarks, subtitles and materials: CreateUploadAttachedMedia."""

    model = AttachedMediaUpload
    record_serializer_class = serializers.AttachedMediaUploadSerializer
    issued_serializer_class = serializers.AttachedMediaIssuedSerializer
    create_serializer_class = serializers.AttachedMediaCreateSerializer
    lookup_url_kwarg = "media_id"

    def issue(self, **validated) -> services.Issued:
        return services.attached_media_issue(**validated)


class VodEventView(APIView):
    """VOD's event notifications. Authenticated by VOD's callback signature, not a user."""

    error_statuses = (400, 403, 413, 429, 500, 503)
    authentication_classes = []
    permission_classes = [AllowAny]
    parser_classes = []  # the raw body is what gets stored and fingerprinted

    @extend_schema(
        request={"application/json": {"type": "object", "additionalProperties": True}},
        responses={200: {"type": "object", "properties": {
            "code": {"type": "string", "enum": ["accepted", "duplicate"]},
            "request_id": {"type": "string"}}, "required": ["code", "request_id"]}},
        description="VOD's HTTP event notification, signed with X-VOD-TIMESTAMP and "
                    "X-VOD-SIGNATURE = md5hex(CallbackURL|timestamp|AuthKey).")
    def post(self, request, *args, **kwargs):
        request_id = getattr(request, "request_id", "")
        # Refused before anything is read or stored: VOD's bodies are a few KB.
        declared = request.META.get("CONTENT_LENGTH") or "0"
        if not declared.isdigit() or int(declared) > settings.VOD_CALLBACK_MAX_BYTES:
            return payload_too_large(request_id)
        if len(request.body) > settings.VOD_CALLBACK_MAX_BYTES:
            return payload_too_large(request_id)
        answer = callbacks.receive(body=request.body,
                                   timestamp=request.headers.get("X-VOD-TIMESTAMP", ""),
                                   signature=request.headers.get("X-VOD-SIGNATURE", ""),
                                   client_ip=client_ip(request), request_id=request_id)
        body = {"code": answer.code, "request_id": request_id}
        if answer.detail:
            body["detail"] = answer.detail
        headers = {"Retry-After": str(answer.retry_after)} if answer.retry_after else None
        return Response(body, status=answer.status, headers=headers)


class ApiRootView(APIView):
    """GET /api/v1/: where everything is (no authentication needed to read the map)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request, format=None):
        """Links to the collections, the login, the schema and the docs page."""
        def link(path: str) -> str:
            return request.build_absolute_uri(f"/api/v1/{path}")

        return Response({"videos": link("videos/"), "images": link("images/"),
                         "attached_media": link("attached-media/"),
                         "login": link("auth/token/"), "tokens": link("auth/tokens/"),
                         "schema": link("schema/"), "docs": link("docs/")})
