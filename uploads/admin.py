"""Staff views of every upload and of the audit trail. Calls services, never the SDK.

Built for tables of millions of rows: exact-match search on indexed columns, no full
COUNT(*) (EstimatedCountPaginator, no facet counts), no date_hierarchy, owners fetched with
a join. bench/admin_scale.py measures the changelists at 1M uploads and 5M audit events.
"""

from datetime import timedelta

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from . import services, token_admin  # noqa: F401 (token_admin registers the token and user admins)
from .audit import ACTIONS, RequestContext
from .callbacks import EVENT_TYPES
from .models import AttachedMediaUpload, AuditEvent, ImageUpload, VideoUpload, VodEvent
from .pagination import EstimatedCountPaginator

# An admin action touches at most this many rows per run (VOD's QPS limit is per account).
MAX_ROWS_PER_ACTION = 200
HISTORY_SHOWN = 20
_ADMIN_MODEL_BY_KIND = {"video": "videoupload", "image": "imageupload",
                        "attached_media": "attachedmediaupload"}
_KIND_LABEL = {"video": "Video", "image": "Image", "attached_media": "Attached media"}


def _label(upload) -> str:
    """How an action message names a row. It starts with a word, not the id: the admin
    capitalises a message's first letter, which would alter a lower-case hex id."""
    return f"{_KIND_LABEL[upload.kind]} {upload.vod_id or f'{upload.pk} (no VOD id yet)'}"


def _audit_changelist_url(**query) -> str:
    base = reverse("admin:uploads_auditevent_changelist")
    return base + "?" + "&".join(f"{key}={value}" for key, value in query.items())


class ReadOnlyAtScaleAdmin(admin.ModelAdmin):
    """Staff look, never add, edit or delete; built for tables of millions of rows.

    No full COUNT(*) (estimated-count paginator), no facet counts, search by exact value
    on indexed columns only (never LIKE over the table).
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


class MediaUploadAdmin(ReadOnlyAtScaleAdmin):
    """What the three kinds of upload share in the admin."""

    kind_fields: tuple = ()
    list_display_links = ("vod_id",)
    list_filter = ("status", "created_at")
    list_select_related = ("owner",)
    ordering = ("-created_at",)
    # Only orders an index serves: sorting 800k rows by title or expiry took 0.4 s a page.
    sortable_by = ("created_at",)
    search_help_text = "An exact VOD id (VideoId / ImageId / MediaId) or owner username."
    search_fields = ("vod_id",)  # turns the search box on; the lookup is get_search_results
    actions = ("sync_from_vod", "cancel_uploads")

    def get_list_display(self, request):
        return ("vod_id", "owner", "title", *self.kind_fields, "status", "vod_status",
                "created_at", "credential_expires_at", "credentials_issued")

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ("vod_id", "owner", "status", "vod_status", "title", "description",
                               "file_name", "file_size", "tags", *self.kind_fields)}),
            ("Upload", {"fields": ("upload_endpoint", "upload_bucket", "upload_object_key",
                                   "credential_expires_at", "credentials_issued",
                                   "last_vod_request_id", "error_code", "error_message")}),
            ("Record", {"fields": ("id", "app_id", "storage_location", "extend", "created_at",
                                   "updated_at")}),
            ("Audit history", {"fields": ("audit_history",)}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "audit_history"]

    def get_search_results(self, request, queryset, search_term):
        """Exact matches only, each served by an index: never a LIKE over the table."""
        term = search_term.strip()
        if not term:
            return queryset, False
        # Resolved to one plain condition where possible, never `vod_id = x OR owner_id IN
        # (subquery)`: PostgreSQL walks the whole table's date index filtering every row for
        # that, and cannot serve any OR in the changelist's date order from an index
        # (bench/admin_scale.py). `owner_id = n` reads its first page straight from the
        # (owner, -created_at, -id) index.
        owner = get_user_model().objects.filter(username=term).values_list("pk", flat=True)
        owner = owner.first()
        if owner is None:
            return queryset.filter(vod_id=term), False
        same_vod_id = list(queryset.filter(vod_id=term).values_list("pk", flat=True))
        if same_vod_id:  # a username that is also some upload's VOD id: both, as before
            return queryset.filter(Q(owner_id=owner) | Q(pk__in=same_vod_id)), False
        return queryset.filter(owner_id=owner), False

    @admin.display(description="Audit history")
    def audit_history(self, obj):
        events = AuditEvent.objects.filter(target_pk=str(obj.pk)).order_by("-sequence")
        rows = format_html_join(
            "", "<tr><td><a href='{}'>#{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                "<td>{}</td></tr>",
            ((reverse("admin:uploads_auditevent_change", args=[event.pk]),
              event.sequence if event.sequence is not None else "pending",
              event.created_at.strftime("%Y-%m-%d %H:%M:%S"), event.action, event.outcome,
              event.actor_label or "-", event.vod_request_id or "-")
             for event in events[:HISTORY_SHOWN]))
        return format_html(
            "<table class='audit-history'><thead><tr><th>#</th><th>time (UTC)</th>"
            "<th>action</th><th>outcome</th><th>actor</th><th>VOD request</th></tr></thead>"
            "<tbody>{}</tbody></table><p><a href='{}'>All audit events of this upload</a></p>",
            rows, _audit_changelist_url(q=obj.pk))

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
        # Rows still `requesting` are settled once no request can still be working on them.
        settle_before = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)
        results = services.uploads_sync(uploads=self._rows_for_action(request, queryset),
                                        context=RequestContext.from_request(request),
                                        audit_unchanged=True, end_unknown_before=settle_before)
        for result in results:
            label = _label(result.upload)
            if not result.ok:
                self.message_user(request, f"{label}: sync failed ({result.error})",
                                  messages.ERROR)
            elif result.changed:
                self.message_user(request, f"{label}: {result.old_status} → {result.new_status}"
                                           f" (VOD: {result.vod_status or 'not found'})",
                                  messages.SUCCESS)
            else:
                self.message_user(request, f"{label}: unchanged ({result.new_status}, VOD: "
                                           f"{result.vod_status or '-'})", messages.INFO)


    @admin.action(description="Cancel or delete (delete in VOD, keep the record)",
                  permissions=["cancel"])
    def cancel_uploads(self, request, queryset):
        """Delete each selected media in VOD and end its row (`deleted` or `cancelled`)."""
        context = RequestContext.from_request(request)
        for upload in self._rows_for_action(request, queryset):
            label = _label(upload)
            try:
                ended = services.upload_remove(upload=upload, context=context)
            except services.VodError as exc:
                self.message_user(request, f"{label}: not deleted ({exc.code}: "
                                           f"{exc.message})", messages.ERROR)
            else:
                self.message_user(request, f"{label}: {ended.status}", messages.SUCCESS)


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
        context = RequestContext.from_request(request)
        for video in self._rows_for_action(request, queryset):
            label = _label(video)
            try:
                issued = services.video_refresh(video=video, context=context,
                                                audit_action="admin.refresh")
            except services.InvalidState as exc:
                self.message_user(request, f"{label}: not refreshed: {exc}",
                                  messages.WARNING)
            except services.VodError as exc:
                self.message_user(request, f"{label}: refresh failed ({exc.code}: "
                                           f"{exc.message})", messages.ERROR)
            else:
                expiry = issued.credential.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
                self.message_user(request, f"{label}: new upload credential issued, "
                                           f"valid until {expiry}", messages.SUCCESS)


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
            return queryset.filter(actor_ref=self.value())
        return queryset


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAtScaleAdmin):
    """The audit trail: read-only for everyone, superusers included."""

    list_display = ("place", "created_at", "action", "outcome", "actor_label",
                    "target_kind", "target_link", "request_id")
    list_filter = (ActionFilter, "outcome", ActorFilter)
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

    @admin.display(description="target")
    def target_link(self, event):
        label = event.target_vod_id or event.target_pk or "-"
        model = _ADMIN_MODEL_BY_KIND.get(event.target_kind)
        if not (model and event.target_pk):
            return label
        return format_html("<a href='{}'>{}</a>",
                           reverse(f"admin:uploads_{model}_change", args=[event.target_pk]),
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

    list_display = ("received_at", "event_type", "media_id", "status", "reason", "client_ip")
    list_filter = ("status", EventTypeFilter)
    search_fields = ("media_id",)  # turns the search box on
    exact_search_fields = ("media_id",)
    search_help_text = "An exact VOD id."
    ordering = ("-received_at",)
    sortable_by = ("received_at",)
