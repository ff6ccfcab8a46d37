"""Staff views of every upload and of the audit trail. Calls services, never the SDK.

Built for tables of millions of rows: searches and filters served by indexes, no full
COUNT(*) (EstimatedCountPaginator, no facet counts), no date_hierarchy, owners fetched with
a join. bench/admin_scale.py measures the pages at 1M uploads and 5M audit events. Each
upload's page (its timeline and buttons) is in admin_timeline; search, filters, CSV export
and the user page in admin_search.
"""

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from . import admin_policies, token_admin  # noqa: F401  (their registrations)
from .admin_search import (
    CsvExportMixin,
    DateRangeFilter,
    TargetFilter,
    TargetKindFilter,
    UserActivityMixin,
    UserFilter,
    upload_search,
)
from .admin_timeline import UploadPageMixin, refresh_one, remove_one, sync_rows, utc
from .audit import ACTIONS
from .callbacks import EVENT_TYPES
from .models import UPLOAD_MODELS, AttachedMediaUpload, AuditEvent, ImageUpload, VideoUpload, VodEvent
from .pagination import EstimatedCountPaginator

# An admin action touches at most this many rows per run (VOD's QPS limit is per account).
MAX_ROWS_PER_ACTION = 200
_UPLOAD_COLUMNS = ("id", "vod_id", "owner__username", "status", "vod_status", "title",
                   "file_name", "file_size", "tags", "created_at", "updated_at",
                   "credential_expires_at", "credentials_issued", "last_vod_request_id",
                   "error_code", "error_message")


class ReadOnlyAtScaleAdmin(CsvExportMixin, admin.ModelAdmin):
    """Staff look, never add, edit or delete; built for tables of millions of rows.

    No full COUNT(*) (estimated-count paginator), no facet counts, search by exact value
    on indexed columns only (never LIKE over the table). Every changelist exports as CSV.
    """

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    exact_search_fields: tuple[str, ...] = ()

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        match = Q()
        for field in self.exact_search_fields:
            match |= Q(**{field: term})
        return queryset.filter(match), False

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MediaUploadAdmin(UploadPageMixin, ReadOnlyAtScaleAdmin):
    """What the three kinds of upload share in the admin."""

    kind_fields: tuple = ()
    list_display_links = ("vod_id",)
    list_filter = ("status", "created_at")
    list_select_related = ("owner",)
    ordering = ("-created_at",)
    # Only orders an index serves: sorting 800k rows by title or expiry took 0.4 s a page.
    sortable_by = ("created",)
    search_help_text = ("A username, a VOD id (VideoId / ImageId / MediaId) or record id "
                        "exactly, or 3 or more characters of a title or file name.")
    search_fields = ("vod_id",)  # turns the search box on; the lookup is get_search_results
    actions = ("sync_from_vod", "cancel_uploads")

    @property
    def csv_columns(self):
        return (*_UPLOAD_COLUMNS, *self.kind_fields)

    def get_list_display(self, request):
        # Few, short columns: the key ones fit at 1280 px (details are on the row's page).
        return ("vod_id", "owner", "title_or_file", *self.kind_fields, "state", "created",
                "expires")

    @admin.display(description="title / file")
    def title_or_file(self, obj):
        """The title, else the file name, cut short (the page shows it whole)."""
        text = obj.title or obj.file_name or "-"
        return text if len(text) <= 40 else text[:39] + "…"

    @admin.display(description="status")
    def state(self, obj):
        """Our status, with VOD's when it has reported one."""
        status = obj.get_status_display()
        return f"{status} ({obj.vod_status})" if obj.vod_status else status

    @admin.display(description="created (UTC)", ordering="created_at")
    def created(self, obj):
        """Creation time to the minute."""
        return utc(obj.created_at)[:16]

    @admin.display(description="credential expires")
    def expires(self, obj):
        """The upload credential's expiry to the minute."""
        return utc(obj.credential_expires_at)[:16]

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ("vod_id", "owner", "status", "vod_status", "title", "description",
                               "file_name", "file_size", "tags", *self.kind_fields)}),
            ("Upload", {"fields": ("upload_endpoint", "upload_bucket", "upload_object_key",
                                   "credential_expires_at", "credentials_issued",
                                   "last_vod_request_id", "error_code", "error_message")}),
            ("Record", {"fields": ("id", "app_id", "storage_location", "extend", "created_at",
                                   "updated_at")}),
        ]

    def get_search_results(self, request, queryset, search_term):
        """Each term resolved to one indexed lookup (admin_search.upload_search)."""
        term = search_term.strip()
        return (upload_search(queryset, term) if term else queryset), False

    def has_sync_permission(self, request):
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.sync_{opts.model_name}")

    def has_cancel_permission(self, request):
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.cancel_{opts.model_name}")

    def _rows_for_action(self, request, queryset):
        rows = list(queryset.select_related("owner")[:MAX_ROWS_PER_ACTION + 1])
        if len(rows) > MAX_ROWS_PER_ACTION:
            self.message_user(request, f"Only the first {MAX_ROWS_PER_ACTION} selected rows "
                                       "were processed; run the action again for the rest.",
                              messages.WARNING)
        return rows[:MAX_ROWS_PER_ACTION]

    @admin.action(description="Sync status from VOD", permissions=["sync"])
    def sync_from_vod(self, request, queryset):
        """Ask VOD for each selected upload's status (batched by 20) and report per row."""
        for level, text in sync_rows(request, self._rows_for_action(request, queryset)):
            self.message_user(request, text, level)

    @admin.action(description="Cancel or delete (delete in VOD, keep the record)",
                  permissions=["cancel"])
    def cancel_uploads(self, request, queryset):
        """Delete each selected media in VOD and end its row (`deleted` or `cancelled`)."""
        for upload in self._rows_for_action(request, queryset):
            level, text = remove_one(request, upload)
            self.message_user(request, text, level)


@admin.register(VideoUpload)
class VideoUploadAdmin(MediaUploadAdmin):
    """Videos and audio."""

    kind_fields = ("template_group_id", "workflow_id")
    actions = ("refresh_credential", "sync_from_vod", "cancel_uploads")

    def get_list_display(self, request):
        return [name for name in super().get_list_display(request)
                if name not in self.kind_fields]

    def has_refresh_permission(self, request):
        return request.user.has_perm("uploads.refresh_videoupload_credential")

    @admin.action(description="Refresh upload credential", permissions=["refresh"])
    def refresh_credential(self, request, queryset):
        """RefreshUploadVideo for each selected video; shows the new expiry, never the key."""
        for video in self._rows_for_action(request, queryset):
            level, text = refresh_one(request, video)
            self.message_user(request, text, level)


@admin.register(ImageUpload)
class ImageUploadAdmin(MediaUploadAdmin):
    """Images."""

    kind_fields = ("image_type", "image_ext")


@admin.register(AttachedMediaUpload)
class AttachedMediaUploadAdmin(MediaUploadAdmin):
    """Watermarks, subtitles and materials."""

    kind_fields = ("business_type", "media_ext")


class ActionFilter(admin.SimpleListFilter):
    """The known action names: no DISTINCT over millions of rows to build the list."""

    title = "action"
    parameter_name = "action"

    def lookups(self, request, model_admin):
        return [(name, name) for name in ACTIONS]

    def queryset(self, request, queryset):
        return queryset.filter(action=self.value()) if self.value() else queryset


class ActorFilter(admin.SimpleListFilter):
    """Staff (who act in the admin) and the system; end users are found by search."""

    title = "actor"
    parameter_name = "actor"

    def lookups(self, request, model_admin):
        staff = get_user_model().objects.filter(is_staff=True).order_by("username")
        return [("system", "no user (system, callbacks)")] + [
            (str(user.pk), user.get_username()) for user in staff[:50]]

    def queryset(self, request, queryset):
        if self.value() == "system":
            return queryset.filter(actor_ref__isnull=True)
        if self.value():
            if not self.value().isdigit():
                raise IncorrectLookupParameters("actor: a user id or 'system'")
            return queryset.filter(actor_id=self.value())  # indexed with the trail's order
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAtScaleAdmin):
    """The audit trail: read-only for everyone, superusers included."""

    # Narrow columns (the key ones fit at 1280 px); request ids are searchable and exported.
    list_display = ("place", "created", "action", "outcome", "actor_label", "target_kind",
                    "target_link")
    list_filter = (ActionFilter, "outcome", UserFilter, ActorFilter, TargetKindFilter,
                   TargetFilter, DateRangeFilter)
    csv_columns = ("sequence", "created_at", "actor_label", "action", "outcome", "target_kind",
                   "target_vod_id", "target_pk", "request_id", "vod_request_id", "client_ip",
                   "user_agent", "data")
    search_fields = ("target_vod_id",)  # turns the search box on
    exact_search_fields = ("target_vod_id", "target_pk", "request_id", "vod_request_id")
    search_help_text = "An exact VOD id, upload record id, request id or VOD request id."
    ordering = ("-sequence",)
    # The sequence index serves both directions; sorting 5M rows by time took over 1 s.
    sortable_by = ("place",)

    @admin.display(description="sequence", ordering="sequence", empty_value="pending")
    def place(self, event):
        """The event's place in the chain; "pending" until the sealer chains it (seconds)."""
        return event.sequence

    @admin.display(description="time (UTC)")
    def created(self, event):
        """When the event was written, to the second."""
        return utc(event.created_at)[:19]

    @admin.display(description="target")
    def target_link(self, event):
        label = event.target_vod_id or event.target_pk or "-"
        model = UPLOAD_MODELS.get(event.target_kind)
        if not (model and event.target_pk):
            return label
        return format_html("<a href='{}'>{}</a>",
                           reverse(f"admin:uploads_{model._meta.model_name}_change",
                                   args=[event.target_pk]),
                           label)


class EventTypeFilter(admin.SimpleListFilter):
    """VOD's event types by name: no DISTINCT over the whole table to list them."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request, model_admin):
        return [(name, name) for name in EVENT_TYPES]

    def queryset(self, request, queryset):
        return queryset.filter(event_type=self.value()) if self.value() else queryset


@admin.register(VodEvent)
class VodEventAdmin(ReadOnlyAtScaleAdmin):
    """Every event notification VOD sent, as received: read-only."""

    list_display = ("received_at", "event_type", "media_id", "upload_link", "status",
                    "reason")
    list_filter = ("status", EventTypeFilter)
    csv_columns = ("id", "received_at", "status", "reason", "event_type", "media_id",
                   "event_time", "vod_timestamp", "fingerprint", "client_ip", "request_id",
                   "body")
    search_fields = ("media_id",)  # turns the search box on
    exact_search_fields = ("media_id",)
    search_help_text = "An exact VOD id."
    ordering = ("-received_at",)
    sortable_by = ("received_at",)

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "upload_link"]

    def get_urls(self):
        return [path("upload/<str:media_id>/", self.admin_site.admin_view(self.upload_view),
                     name="uploads_vodevent_upload"), *super().get_urls()]

    @admin.display(description="upload")
    def upload_link(self, event):
        """A link to the upload the event is about, resolved when followed: no query per row."""
        if not event.media_id:
            return "-"
        return format_html("<a href='{}'>upload</a>",
                           reverse("admin:uploads_vodevent_upload", args=[event.media_id]))

    def upload_view(self, request, media_id):
        """Redirect to the upload whose VOD id is `media_id` (one unique index per kind)."""
        for model in UPLOAD_MODELS.values():
            pk = model.objects.filter(vod_id=media_id).values_list("pk", flat=True).first()
            if pk is not None:
                return HttpResponseRedirect(
                    reverse(f"admin:uploads_{model._meta.model_name}_change", args=[pk]))
        self.message_user(request, f"No upload has the VOD id {media_id}.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:uploads_vodevent_changelist")
                                    + f"?q={media_id}")


class StaffUserAdmin(UserActivityMixin, token_admin.TokenUserAdmin):
    """The user admin of token_admin, with the user's newest uploads and audit events."""


# token_admin registered its user admin (loaded above): this one adds the activity block.
admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), StaffUserAdmin)
