"""Staff views of every upload and of the audit trail. Calls services, never the SDK."""

from django.contrib import admin

from .models import AttachedMediaUpload, AuditEvent, ImageUpload, VideoUpload


class MediaUploadAdmin(admin.ModelAdmin):
    """What the three kinds of upload share in the admin."""

    list_display = ("vod_id", "owner", "title", "status", "vod_status", "created_at",
                    "credential_expires_at", "credentials_issued")
    list_filter = ("status",)
    list_select_related = ("owner",)
    # "=" is an exact match: a VOD id is looked up by its index, not by LIKE over the table.
    search_fields = ("=vod_id", "=owner__username", "=owner__email")
    ordering = ("-created_at",)
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(VideoUpload)
class VideoUploadAdmin(MediaUploadAdmin):
    """Videos and audio."""


@admin.register(ImageUpload)
class ImageUploadAdmin(MediaUploadAdmin):
    """Images."""

    list_display = (*MediaUploadAdmin.list_display[:3], "image_type", "image_ext",
                    *MediaUploadAdmin.list_display[3:])


@admin.register(AttachedMediaUpload)
class AttachedMediaUploadAdmin(MediaUploadAdmin):
    """Watermarks, subtitles and materials."""

    list_display = (*MediaUploadAdmin.list_display[:3], "business_type", "media_ext",
                    *MediaUploadAdmin.list_display[3:])


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit trail: read-only for everyone, superusers included."""

    list_display = ("sequence", "created_at", "action", "outcome", "actor_label",
                    "target_kind", "target_vod_id", "request_id")
    list_filter = ("outcome", "action")
    search_fields = ("=target_vod_id", "=target_pk", "=request_id", "=vod_request_id")
    ordering = ("-sequence",)
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
