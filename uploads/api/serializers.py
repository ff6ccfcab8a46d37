"""Request validation (VOD's limits, before VOD is called) and response shapes."""

from operator import attrgetter

from django.db import models
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .. import validation
from ..models import AttachedMediaUpload, ImageUpload, VideoUpload


def _checked(check, *args, **kwargs):
    """Run a validation function, turning its InvalidValue into a field error."""
    try:
        return check(*args, **kwargs)
    except validation.InvalidValue as exc:
        raise serializers.ValidationError(str(exc)) from exc


class VodTextField(serializers.CharField):
    """A text VOD limits in UTF-8 bytes and refuses emoji in."""

    def __init__(self, *, max_bytes: int, single_line: bool = True, **kwargs):
        kwargs.setdefault("trim_whitespace", True)
        super().__init__(**kwargs)
        self.max_bytes = max_bytes
        self.single_line = single_line

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        return _checked(validation.check_text, value, max_bytes=self.max_bytes,
                        single_line=self.single_line)


def _any_case(extension: str) -> str:
    """'mp4' -> '[Mm][Pp]4': a case-insensitive pattern (OpenAPI patterns take no flags)."""
    return "".join(f"[{char.upper()}{char}]" if char.isalpha() else char for char in extension)


# What check_video_file_name accepts, as the OpenAPI schema can say it: no path, no control
# characters, an audio or video extension VOD lists. (Emoji are refused too; a pattern without
# the `u` flag cannot express that portably, so the description says it.)
VIDEO_FILE_NAME_PATTERN = (
    r"^[^/\\\u0000-\u001f\u007f-\u009f]*\.(?:"
    + "|".join(_any_case(ext) for ext in sorted(validation.VIDEO_EXTENSIONS
                                                | validation.AUDIO_EXTENSIONS))
    + ")$")


@extend_schema_field({"type": "string", "maxLength": 255, "pattern": VIDEO_FILE_NAME_PATTERN,
                      "description": "The local file's name with an audio or video extension "
                                     "VOD accepts (movie.mp4); no path, emoji or control "
                                     "characters."})
class VideoFileNameField(serializers.CharField):
    """CreateUploadVideo's FileName (uploads.validation.check_video_file_name)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=255, trim_whitespace=True, **kwargs)

    def to_internal_value(self, data):
        return _checked(validation.check_video_file_name, super().to_internal_value(data))


class TagsField(serializers.ListField):
    """Tags as a JSON list of strings (a comma-separated string is accepted too)."""

    child = serializers.CharField(trim_whitespace=True, allow_blank=False)

    def __init__(self, *, max_count: int = validation.TAGS_MAX_COUNT, **kwargs):
        super().__init__(**kwargs)
        self.max_count = max_count

    def to_internal_value(self, data):
        if isinstance(data, str):
            data = [tag for tag in data.split(",")] if data.strip() else []
        tags = super().to_internal_value(data)
        return _checked(validation.normalize_tags, tags, max_count=self.max_count)

    def to_representation(self, value):
        return _tags(value)


class ExtendField(serializers.JSONField):
    """UserData.Extend: a small JSON object VOD echoes back in its event notifications."""

    def to_internal_value(self, data):
        return _checked(validation.check_extend, super().to_internal_value(data))


class _CommonCreateSerializer(serializers.Serializer):
    description = VodTextField(max_bytes=validation.DESCRIPTION_MAX_BYTES, single_line=False,
                               required=False, allow_blank=True, default="")
    # The default is VOD's form (a comma-separated string): defaults skip validation.
    tags = TagsField(required=False, default="")
    extend = ExtendField(required=False, allow_null=True, default=None,
                         help_text="Up to 512 bytes of JSON, echoed in VOD's callbacks.")


class VideoCreateSerializer(_CommonCreateSerializer):
    """POST /videos/: what CreateUploadVideo needs."""

    title = VodTextField(max_bytes=validation.TITLE_MAX_BYTES)
    file_name = VideoFileNameField()
    file_size = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                         max_value=validation.BIGINT_MAX, default=None)
    cate_id = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                       max_value=validation.BIGINT_MAX, default=None)
    cover_url = serializers.URLField(required=False, allow_blank=True, default="",
                                     max_length=1024)


class ImageCreateSerializer(_CommonCreateSerializer):
    """POST /images/: what CreateUploadImage needs."""

    image_type = serializers.ChoiceField(choices=validation.IMAGE_TYPES)
    tags = TagsField(required=False, default="", max_count=validation.MARKED_TAGS_MAX_COUNT)
    image_ext = serializers.ChoiceField(choices=validation.IMAGE_EXTENSIONS, required=False,
                                        help_text="Defaults to the extension of "
                                                  "original_file_name, else png.")
    title = VodTextField(max_bytes=validation.TITLE_MAX_BYTES, required=False,
                         allow_blank=True, default="")
    original_file_name = serializers.CharField(max_length=255, required=False,
                                               allow_blank=True, default="")
    cate_id = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                       max_value=validation.BIGINT_MAX, default=None)

    def to_internal_value(self, data):
        if isinstance(data, dict) and isinstance(data.get("image_ext"), str):
            data = {**data, "image_ext": data["image_ext"].lower().lstrip(".")}
        return super().to_internal_value(data)

    def validate_original_file_name(self, value):
        if value:
            # VOD's docs: OriginalFileName's extension is optional (the format is ImageExt).
            _checked(validation.check_file_name, value, allowed=validation.IMAGE_EXTENSIONS,
                     what="image", extension_required=False)
        return value

    def validate(self, attrs):
        from_name = validation.extension_of(attrs.get("original_file_name", ""))
        image_ext = attrs.get("image_ext") or from_name or "png"
        if from_name and {image_ext, from_name} != {"jpg", "jpeg"} and image_ext != from_name:
            raise serializers.ValidationError(
                {"original_file_name": f"The extension '.{from_name}' does not match "
                                       f"image_ext '{image_ext}'."})
        attrs["image_ext"] = image_ext
        return attrs


class AttachedMediaCreateSerializer(_CommonCreateSerializer):
    """POST /attached-media/: what CreateUploadAttachedMedia needs."""

    business_type = serializers.ChoiceField(choices=tuple(validation.ATTACHED_MEDIA_EXTENSIONS))
    tags = TagsField(required=False, default="", max_count=validation.MARKED_TAGS_MAX_COUNT)
    media_ext = serializers.CharField(required=False, max_length=8,
                                      help_text="Defaults to the extension of file_name.")
    title = VodTextField(max_bytes=validation.TITLE_MAX_BYTES, required=False,
                         allow_blank=True, default="")
    file_name = serializers.CharField(max_length=255, required=False, allow_blank=True,
                                      default="")
    file_size = serializers.IntegerField(required=False, allow_null=True, min_value=1,
                                         max_value=validation.BIGINT_MAX, default=None)
    cate_ids = serializers.ListField(child=serializers.IntegerField(
                                         min_value=1, max_value=validation.BIGINT_MAX),
                                     required=False, default=list,
                                     max_length=validation.CATE_IDS_MAX_COUNT)

    def validate_file_name(self, value):
        if value:
            _checked(validation.check_file_name, value, what="attached media")
        return value

    def validate(self, attrs):
        media_ext = attrs.get("media_ext") or validation.extension_of(attrs["file_name"])
        if not media_ext:
            raise serializers.ValidationError(
                {"media_ext": "Give media_ext, or a file_name with an extension."})
        field = "media_ext" if attrs.get("media_ext") else "file_name"
        try:
            attrs["media_ext"] = validation.check_attached_media_ext(attrs["business_type"],
                                                                     media_ext)
        except validation.InvalidValue as exc:
            raise serializers.ValidationError({field: str(exc)}) from exc
        attrs["cate_ids"] = ",".join(str(cate_id) for cate_id in attrs["cate_ids"])
        return attrs


# --- Responses -------------------------------------------------------------------------
#
# The response serializers declare every field (the OpenAPI schema is built from them) but
# render by hand: DRF's generic rendering builds and deep-copies each of a record's ~30
# field objects per response, which cost more CPU than everything else in issuing a
# credential except the VOD call (bench/README.md). tests/test_api_representation.py holds
# the hand-written rendering equal to DRF's generic one for every serializer.

# DRF's rendering of a datetime (ISO 8601 in the current time zone, UTC as "Z"): stateless.
_DATETIME = serializers.DateTimeField()
# Fields a create or refresh adds to the record; the credential comes in the context.
_ISSUED = ("upload_address", "upload_auth", "upload")


def _datetime(value):
    return None if value is None else _DATETIME.to_representation(value)


def _tags(value: str) -> list[str]:
    return [tag for tag in (value or "").split(",") if tag]


def _error(upload) -> dict | None:
    if not upload.error_code:
        return None
    return {"code": upload.error_code, "message": upload.error_message}


def _credential(issued) -> dict:
    """An IssuedUpload as UploadCredentialSerializer renders it."""
    address, credential = issued.address, issued.credential
    return {"endpoint": address.endpoint, "bucket": address.bucket,
            "object_key": address.object_key, "access_key_id": credential.access_key_id,
            "access_key_secret": credential.access_key_secret,
            "security_token": credential.security_token,
            "expires_at": _datetime(credential.expires_at)}


# Each field of an upload record, read off the row as DRF renders its declared field.
_RECORD_FIELDS = {
    "video_id": attrgetter("vod_id"),
    "image_id": attrgetter("vod_id"),
    "media_id": attrgetter("vod_id"),
    "owner": lambda upload: upload.owner.get_username(),
    "status": lambda upload: str(upload.status),
    "tags": lambda upload: _tags(upload.tags),
    "upload_location": lambda upload: {"endpoint": upload.upload_endpoint,
                                       "bucket": upload.upload_bucket,
                                       "object_key": upload.upload_object_key},
    "credential_expires_at": lambda upload: _datetime(upload.credential_expires_at),
    "created_at": lambda upload: _datetime(upload.created_at),
    "updated_at": lambda upload: _datetime(upload.updated_at),
    "error": _error,
    **{name: attrgetter(name) for name in (
        "vod_status", "title", "description", "file_name", "file_size", "extend",
        "credentials_issued", "cate_id", "cover_url", "image_type", "image_ext", "image_url",
        "file_url", "business_type", "media_ext", "cate_ids", "media_url")},
}


class UploadAddressSerializer(serializers.Serializer):
    """The non-secret parts of VOD's UploadAddress."""

    endpoint = serializers.CharField(source="upload_endpoint")
    bucket = serializers.CharField(source="upload_bucket")
    object_key = serializers.CharField(source="upload_object_key")


class _UploadSerializer(serializers.ModelSerializer):
    # A record's URLs (cover_url, image_url, file_url, media_url) are "" until known, which
    # `format: uri` would call invalid: documented as plain strings. (The schemathesis run's
    # stateful phase caught this on real records.)
    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping,
                                models.URLField: serializers.CharField}

    owner = serializers.CharField(source="owner.get_username", read_only=True)
    tags = TagsField(read_only=True)
    upload_location = UploadAddressSerializer(source="*", read_only=True)
    error = serializers.SerializerMethodField()

    common_fields = ("owner", "status", "vod_status", "title", "description", "file_name",
                     "file_size", "tags", "extend", "upload_location", "credential_expires_at",
                     "credentials_issued", "error", "created_at", "updated_at")

    def get_error(self, upload) -> dict | None:
        return _error(upload)

    def to_representation(self, upload) -> dict:
        """The record as DRF would render it, read straight off the row (see above)."""
        return {name: _RECORD_FIELDS[name](upload) for name in self.Meta.fields
                if name not in _ISSUED}


class VideoUploadSerializer(_UploadSerializer):
    """A video record as the API shows it: never a secret."""

    video_id = serializers.CharField(source="vod_id", read_only=True)

    class Meta:
        model = VideoUpload
        fields = ("video_id", *_UploadSerializer.common_fields, "cate_id", "cover_url")
        read_only_fields = fields


class ImageUploadSerializer(_UploadSerializer):
    """An image record."""

    image_id = serializers.CharField(source="vod_id", read_only=True)

    class Meta:
        model = ImageUpload
        fields = ("image_id", *_UploadSerializer.common_fields, "cate_id", "image_type",
                  "image_ext", "image_url", "file_url")
        read_only_fields = fields


class AttachedMediaUploadSerializer(_UploadSerializer):
    """An attached media record."""

    media_id = serializers.CharField(source="vod_id", read_only=True)

    class Meta:
        model = AttachedMediaUpload
        fields = ("media_id", *_UploadSerializer.common_fields, "business_type", "media_ext",
                  "cate_ids", "media_url", "file_url")
        read_only_fields = fields


class UploadCredentialSerializer(serializers.Serializer):
    """The decoded UploadAddress + UploadAuth, for clients that sign OSS requests themselves."""

    endpoint = serializers.CharField(source="address.endpoint")
    bucket = serializers.CharField(source="address.bucket")
    object_key = serializers.CharField(source="address.object_key")
    access_key_id = serializers.CharField(source="credential.access_key_id")
    access_key_secret = serializers.CharField(source="credential.access_key_secret")
    security_token = serializers.CharField(source="credential.security_token")
    expires_at = serializers.DateTimeField(source="credential.expires_at")

    def to_representation(self, issued) -> dict:
        return _credential(issued)


class _IssuedFields(serializers.Serializer):
    """What a create or refresh adds to the record; the credential comes in the context."""

    upload_address = serializers.SerializerMethodField(
        help_text="VOD's UploadAddress exactly as returned (base64 JSON), for the official "
                  "upload SDKs.")
    upload_auth = serializers.SerializerMethodField(
        help_text="VOD's UploadAuth exactly as returned (base64 JSON). Secret: never log it.")
    upload = serializers.SerializerMethodField(
        help_text="The same, decoded, for any OSS client (STS credentials).")

    @extend_schema_field(OpenApiTypes.STR)
    def get_upload_address(self, upload) -> str:
        return self.context["credential"].upload_address

    @extend_schema_field(OpenApiTypes.STR)
    def get_upload_auth(self, upload) -> str:
        return self.context["credential"].upload_auth

    @extend_schema_field(UploadCredentialSerializer)
    def get_upload(self, upload) -> dict:
        return _credential(self.context["credential"])

    def to_representation(self, upload) -> dict:
        data = super().to_representation(upload)
        credential = self.context["credential"]
        data.update(upload_address=credential.upload_address,
                    upload_auth=credential.upload_auth, upload=_credential(credential))
        return data


class VideoIssuedSerializer(_IssuedFields, VideoUploadSerializer):
    """A video record with its new upload credential."""

    class Meta(VideoUploadSerializer.Meta):
        fields = (*VideoUploadSerializer.Meta.fields, *_ISSUED)


class ImageIssuedSerializer(_IssuedFields, ImageUploadSerializer):
    """An image record with its upload credential."""

    class Meta(ImageUploadSerializer.Meta):
        fields = (*ImageUploadSerializer.Meta.fields, *_ISSUED)


class AttachedMediaIssuedSerializer(_IssuedFields, AttachedMediaUploadSerializer):
    """An attached media record with its upload credential."""

    class Meta(AttachedMediaUploadSerializer.Meta):
        fields = (*AttachedMediaUploadSerializer.Meta.fields, *_ISSUED)
