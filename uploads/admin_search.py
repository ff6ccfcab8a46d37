"""Finding things in the staff admin: upload search, audit filters, CSV export, user pages.

Every lookup here is served by an index at millions of rows (bench/admin_scale.py):
usernames, VOD ids and record ids exactly (btree); titles and file names by substring
(PostgreSQL: trigram GIN indexes on UPPER(column), migration 0010, which `icontains`
uses; SQLite: a scan); audit events by actor, action, outcome, target and date range.
"""

from __future__ import annotations

import csv
import json
import uuid
from contextlib import nullcontext
from datetime import datetime, time
from datetime import timezone as dt_timezone

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db import connections, transaction
from django.db.models import Q
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from . import audit
from .audit import RequestContext
from .models import UPLOAD_MODELS, AuditEvent, AuditOutcome

# Shorter terms have no trigram to look up: the index would be read whole.
MIN_SUBSTRING = 3
EXPORT_CHUNK = 2000
USER_PAGE_ROWS = 15


def upload_search(queryset, term: str):
    """Uploads matching `term`, resolved to one indexed condition where possible: an
    owner's exact username, a record id, an exact VOD id, an exact file name, else a
    substring of the title or file name (at least MIN_SUBSTRING characters)."""
    # Never `vod_id = x OR owner_id IN (subquery)`: PostgreSQL cannot serve an OR in the
    # changelist's date order from one index, and walks the whole date index for it.
    owner = get_user_model().objects.filter(username=term).values_list("pk", flat=True).first()
    same_vod_id = list(queryset.filter(vod_id=term).values_list("pk", flat=True))
    if owner is not None:
        return queryset.filter(Q(owner_id=owner) | Q(pk__in=same_vod_id))
    if same_vod_id:
        return queryset.filter(pk__in=same_vod_id)
    try:
        return queryset.filter(pk=uuid.UUID(term))
    except ValueError:
        pass
    if len(term) < MIN_SUBSTRING:
        # No match (the exact lookup found none), as a query the paginator can EXPLAIN.
        return queryset.filter(vod_id=term)
    # A whole file name, as a user reports it, is one index probe (migration 0013); as a
    # substring its common trigrams ("mp4") would be read from most of the index.
    same_name = queryset.filter(file_name=term)
    if same_name.exists():
        return same_name
    return queryset.filter(Q(title__icontains=term) | Q(file_name__icontains=term))


class InputFilter(admin.SimpleListFilter):
    """A list filter that is a text box, not a list of choices (no DISTINCT over millions
    of rows to build one). Its template keeps the other filters in hidden fields."""

    template = "admin/uploads/input_filter.html"
    placeholder = ""

    def match(self, term: str) -> Q:
        """The rows a non-empty `term` (stripped) selects."""
        raise NotImplementedError

    def lookups(self, request, model_admin):
        return ()

    def queryset(self, request, queryset):
        term = (self.value() or "").strip()
        return queryset.filter(self.match(term)) if term else queryset

    def has_output(self):
        return True

    def choices(self, changelist):
        """The other filters of the page, kept when this one is applied or cleared."""
        keep = [(key, value) for key, values in changelist.filter_params.items()
                if key != self.parameter_name for value in values]
        yield {"keep": keep, "value": self.value() or "", "name": self.parameter_name,
               "placeholder": self.placeholder,
               "clear": changelist.get_query_string(remove=[self.parameter_name])}


class UserFilter(InputFilter):
    """The actor: a username, or the label of an actor with no account ("vod callback")."""

    title = "user"
    parameter_name = "user"
    placeholder = "username or actor label"

    def match(self, term: str) -> Q:
        return actor_match(term)


def actor_match(term: str) -> Q:
    """The events of the account named `term` now (under any name it had: the key stays),
    or, when no account has that name, of the actor recorded with that label (a deleted
    account, "vod callback"). One indexed column either way: an OR of the two could not be
    read in the trail's order from an index, and would fetch and sort every match."""
    user = get_user_model().objects.filter(username=term).values_list("pk", flat=True).first()
    return Q(actor_id=user) if user is not None else Q(actor_label=term)


class TargetFilter(InputFilter):
    """The target: an exact VOD id or upload record id."""

    title = "target (VOD id or record id)"
    parameter_name = "target"
    placeholder = "VOD id or record id"

    def match(self, term: str) -> Q:
        return Q(target_vod_id=term) | Q(target_pk=term)


class TargetKindFilter(admin.SimpleListFilter):
    """What the event is about; the kinds the application writes, no DISTINCT."""

    title = "target kind"
    parameter_name = "target_kind"

    def lookups(self, request, model_admin):
        return [(model.kind, model._meta.verbose_name) for model in UPLOAD_MODELS.values()]

    def queryset(self, request, queryset):
        return queryset.filter(target_kind=self.value()) if self.value() else queryset


class DateRangeFilter(admin.ListFilter):
    """From and to dates (inclusive, UTC) on `created_at`: two date boxes."""

    title = "date (UTC)"
    parameters = ("created_from", "created_to")
    template = "admin/uploads/date_range_filter.html"

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.values = {}
        for name in self.parameters:
            if name in params:
                value = params.pop(name)
                value = value[-1] if isinstance(value, list) else value
                if value and parse_date(value) is None:
                    raise IncorrectLookupParameters(f"{name}: not a date (YYYY-MM-DD)")
                self.values[name] = value
                self.used_parameters[name] = value

    def has_output(self):
        return True

    def expected_parameters(self):
        return list(self.parameters)

    def queryset(self, request, queryset):
        utc = dt_timezone.utc
        if self.values.get("created_from"):
            start = datetime.combine(parse_date(self.values["created_from"]), time.min, utc)
            queryset = queryset.filter(created_at__gte=start)
        if self.values.get("created_to"):
            end = datetime.combine(parse_date(self.values["created_to"]), time.max, utc)
            queryset = queryset.filter(created_at__lte=end)
        return queryset

    def choices(self, changelist):
        """The other filters of the page and this filter's two values."""
        keep = [(key, value) for key, values in changelist.filter_params.items()
                if key not in self.parameters for value in values]
        yield {"keep": keep, "from": self.values.get("created_from", ""),
               "to": self.values.get("created_to", ""),
               "clear": changelist.get_query_string(remove=list(self.parameters))}


# -- CSV export ------------------------------------------------------------------------------

class _Echo:
    """csv.writer's file: hands each written line back instead of keeping it."""

    def write(self, value):
        return value


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.astimezone(dt_timezone.utc).isoformat()
    text = str(value)
    # A cell starting like a formula would run in a spreadsheet (CSV injection, OWASP).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _reading_as_sent(alias: str):
    """On PostgreSQL, a read-only transaction around the export's server-side cursor:
    outside one (autocommit) Django declares it WITH HOLD, and PostgreSQL materializes every
    matching row before the first is sent (230 ms for the first rows of 560,000,
    bench/admin_scale.py). Elsewhere nothing: SQLite has no such cursor, and its transaction
    (IMMEDIATE, settings) would hold the write lock for as long as the download lasts."""
    if connections[alias].vendor == "postgresql":
        return transaction.atomic(using=alias)
    return nullcontext()


class CsvExportMixin:
    """For a ModelAdmin: `export/` streams exactly the changelist's filtered rows as CSV,
    in its order, through a server-side cursor, and audits `admin.export` with the filter
    and the number of rows sent. `csv_columns` lists the columns: never a secret."""

    csv_columns: tuple[str, ...] = ()
    change_list_template = "admin/uploads/change_list.html"

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [path("export/", self.admin_site.admin_view(self.export_view),
                     name="%s_%s_export" % info), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        export = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_export")
        query = request.GET.urlencode()
        extra = {"export_url": f"{export}?{query}" if query else export, **(extra_context or {})}
        return super().changelist_view(request, extra)

    def export_view(self, request):
        """Stream the filtered changelist as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponseBadRequest("Unknown filter.")
        rows = changelist.queryset.values_list(*self.csv_columns)
        context = RequestContext.from_request(request)
        name = f"{self.opts.model_name}-{timezone.now():%Y%m%d-%H%M%S}.csv"
        response = StreamingHttpResponse(self._lines(rows, request, context),
                                         content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        response["Cache-Control"] = "no-store"
        return response

    def _lines(self, rows, request, context):
        writer = csv.writer(_Echo())
        sent, complete, outcome = 0, False, AuditOutcome.FAILURE
        try:
            yield writer.writerow(self.csv_columns)
            with _reading_as_sent(rows.db):
                for row in rows.iterator(chunk_size=EXPORT_CHUNK):
                    yield writer.writerow([_cell(value) for value in row])
                    sent += 1
            complete, outcome = True, AuditOutcome.SUCCESS
        finally:
            # After the last row (or when the client went away): the count is known then.
            audit.record("admin.export", outcome=outcome, context=context,
                         data={"model": self.opts.label_lower, "filter": request.GET.dict(),
                               "rows": sent, "complete": complete})


# -- A user's page -------------------------------------------------------------------------

def _minute(moment: datetime) -> str:
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M")


class UserActivityMixin:
    """For the user admin: the user's newest uploads of every kind and recent audit events,
    each linked to its page, on their change page. Six indexed queries, whatever the sizes."""

    activity_fields = ("recent_uploads", "recent_activity")

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [*fieldsets, ("Uploads and activity", {"fields": self.activity_fields})]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), *self.activity_fields]

    @admin.display(description="newest uploads")
    def recent_uploads(self, user):
        """The user's newest uploads, every kind together, newest first."""
        rows = []
        for model in UPLOAD_MODELS.values():
            rows += model.objects.filter(owner=user).order_by("-created_at", "-id")[
                :USER_PAGE_ROWS]
        rows.sort(key=lambda row: row.created_at, reverse=True)
        lines = format_html_join("", "<tr><td>{}</td><td><a href='{}'>{}</a></td><td>{}</td>"
                                     "<td>{}</td><td>{}</td></tr>",
                                 ((row._meta.verbose_name, reverse(
                                     f"admin:uploads_{row._meta.model_name}_change",
                                     args=[row.pk]), row.vod_id or "(no VOD id yet)",
                                   row.title or row.file_name or "-", row.get_status_display(),
                                   _minute(row.created_at)) for row in rows[:USER_PAGE_ROWS]))
        everything = format_html_join(" · ", "<a href='{}?q={}'>all {}</a>", (
            (reverse(f"admin:uploads_{model._meta.model_name}_changelist"), user.get_username(),
             model._meta.verbose_name_plural) for model in UPLOAD_MODELS.values()))
        return format_html("<table class='vodp-user-uploads'><thead><tr><th>kind</th>"
                           "<th>VOD id</th><th>title</th><th>status</th><th>created (UTC)</th>"
                           "</tr></thead><tbody>{}</tbody></table><p>{}</p>",
                           lines or mark_safe("<tr><td colspan='5'>No uploads.</td></tr>"),
                           everything)

    @admin.display(description="recent audit events")
    def recent_activity(self, user):
        """The newest audit events with this user as actor."""
        events = AuditEvent.objects.filter(actor_id=user.pk).order_by("-sequence")[
            :USER_PAGE_ROWS]
        lines = format_html_join("", "<tr><td><a href='{}'>{}</a></td>"
                                     "<td>{}</td><td>{}</td><td>{}</td></tr>",
                                 ((reverse("admin:uploads_auditevent_change", args=[event.pk]),
                                   _minute(event.created_at), event.action, event.outcome,
                                   event.target_vod_id or event.target_kind or "-")
                                  for event in events))
        return format_html("<table class='vodp-user-activity'><thead><tr><th>time (UTC)</th>"
                           "<th>action</th><th>outcome</th><th>target</th></tr></thead>"
                           "<tbody>{}</tbody></table><p><a href='{}?user={}'>All audit events"
                           " of this user</a></p>",
                           lines or mark_safe("<tr><td colspan='4'>None.</td></tr>"),
                           reverse("admin:uploads_auditevent_changelist"), user.get_username())
