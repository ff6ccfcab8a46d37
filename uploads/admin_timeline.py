"""One upload, one page: its timeline and its buttons (refresh, sync, cancel or delete).

The timeline merges the upload's audit events and the VOD event notifications about its
media, in time order, each linking to its own admin page. The buttons call the same
services as the changelist's bulk actions, one row at a time, behind a confirmation page
(GET shows it, POST with CSRF acts), each checking the permission the API asks for the same
thing; a refused POST is shown and audited as `upload.action.refused`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.timesince import timesince, timeuntil

from . import audit, services
from .audit import RequestContext
from .models import AuditEvent, AuditOutcome, VideoUpload, VodEvent

# Newest events of each source shown on the page; older ones are in the audit/VOD lists.
TIMELINE_SHOWN = 50
_KIND_LABEL = {"video": "Video", "image": "Image", "attached_media": "Attached media"}


def label(upload) -> str:
    """How a message names a row. It starts with a word, not the id: the admin capitalises
    a message's first letter, which would alter a lower-case hex id."""
    return f"{_KIND_LABEL[upload.kind]} {upload.vod_id or f'{upload.pk} (no VOD id yet)'}"


def utc(moment: datetime | None) -> str:
    """A moment as `YYYY-MM-DD HH:MM:SS UTC` ("-" for none): staff compare it with logs."""
    if moment is None:
        return "-"
    return moment.astimezone(dt_timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty(value) -> str:
    """JSON indented for reading; a body that is not JSON is shown as received."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@dataclass(frozen=True)
class Entry:
    """One line of an upload's timeline."""

    at: datetime
    source: str  # "audit" or "vod"
    what: str
    outcome: str
    vod_request_id: str
    actor: str
    body: str
    url: str

    @property
    def when(self) -> str:
        """The entry's time in UTC."""
        return utc(self.at)


def _audit_entry(event: AuditEvent) -> Entry:
    what = event.action
    if event.action.startswith("vod.event.") and isinstance(event.data, dict):
        # One action for every kind of callback: say which event it was.
        what = f"{what}: {event.data.get('event_type') or 'unknown event type'}"
    return Entry(at=event.created_at, source="audit", what=what, outcome=event.outcome,
                 vod_request_id=event.vod_request_id, actor=event.actor_label or "-",
                 body=pretty(event.data),
                 url=reverse("admin:uploads_auditevent_change", args=[event.pk]))


def _vod_entry(event: VodEvent) -> Entry:
    outcome = f"{event.status}: {event.reason}" if event.reason else event.status
    return Entry(at=event.received_at, source="vod",
                 what=f"VOD {event.event_type or 'event'}", outcome=outcome,
                 vod_request_id="", actor=f"VOD callback ({event.client_ip or 'unknown'})",
                 body=pretty(event.body),
                 url=reverse("admin:uploads_vodevent_change", args=[event.pk]))


def upload_timeline(upload, limit: int = TIMELINE_SHOWN) -> tuple[list[Entry], bool]:
    """The upload's newest `limit` audit events and VOD events, merged oldest first, and
    whether older ones were left out. Two indexed queries, whatever the table sizes."""
    match = Q(target_pk=str(upload.pk))
    if upload.vod_id:  # callbacks know the media id only
        match |= Q(target_vod_id=upload.vod_id)
    events = list(AuditEvent.objects.filter(match).order_by("-created_at", "-id")[:limit + 1])
    notes = list(VodEvent.objects.filter(media_id=upload.vod_id)
                 .order_by("-received_at", "-id")[:limit + 1]) if upload.vod_id else []
    truncated = len(events) > limit or len(notes) > limit
    entries = [*map(_audit_entry, events[:limit]), *map(_vod_entry, notes[:limit])]
    entries.sort(key=lambda entry: (entry.at, entry.source))
    return entries, truncated


def credential_state(upload) -> str:
    """The current upload credential's expiry, in words a staff member acts on."""
    expires = upload.credential_expires_at
    if expires is None:
        return "No upload credential issued."
    if expires > timezone.now():
        return f"Expires {utc(expires)} (in {timeuntil(expires)})."
    return f"Expired {utc(expires)} ({timesince(expires)} ago)."


# -- The per-row work, shared by the buttons and the changelist's bulk actions ------------

def refresh_one(request, video: VideoUpload) -> tuple[int, str]:
    """RefreshUploadVideo on the owner's behalf; the answer names the expiry, never the key."""
    try:
        issued = services.video_refresh(video=video, context=RequestContext.from_request(request),
                                        audit_action="admin.refresh")
    except services.InvalidState as exc:
        return messages.WARNING, f"{label(video)}: not refreshed: {exc}"
    except services.VodError as exc:
        return messages.ERROR, f"{label(video)}: refresh failed ({exc.code}: {exc.message})"
    expiry = issued.credential.expires_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    return messages.SUCCESS, f"{label(video)}: new upload credential issued, valid until {expiry}"


def sync_rows(request, rows) -> list[tuple[int, str]]:
    """Ask VOD for each row's status (batched by 20); one message per row."""
    # Rows still `requesting` are settled once no request can still be working on them.
    settle_before = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_LEASE_SECONDS)
    results = services.uploads_sync(uploads=rows, context=RequestContext.from_request(request),
                                    audit_unchanged=True, end_unknown_before=settle_before)
    said = []
    for result in results:
        name = label(result.upload)
        if not result.ok:
            said.append((messages.ERROR, f"{name}: sync failed ({result.error})"))
        elif result.changed:
            said.append((messages.SUCCESS, f"{name}: {result.old_status} → {result.new_status}"
                                           f" (VOD: {result.vod_status or 'not found'})"))
        else:
            said.append((messages.INFO, f"{name}: unchanged ({result.new_status}, VOD: "
                                        f"{result.vod_status or '-'})"))
    return said


def remove_one(request, upload) -> tuple[int, str]:
    """Delete the media in VOD and end the row (kept as `deleted` or `cancelled`)."""
    try:
        ended = services.upload_remove(upload=upload, context=RequestContext.from_request(request))
    except services.VodError as exc:
        return messages.ERROR, f"{label(upload)}: not deleted ({exc.code}: {exc.message})"
    return messages.SUCCESS, f"{label(upload)}: {ended.status}"


# -- The buttons ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Button:
    """One action on the upload's page."""

    name: str
    title: str
    warning: str
    permission: str  # codename template, {model} is the model's name

    def codename(self, model) -> str:
        """The permission this button needs on `model`, as `app_label.codename`."""
        return f"uploads.{self.permission.format(model=model._meta.model_name)}"


BUTTONS = {
    "refresh": Button("refresh", "Refresh upload credential",
                      "VOD issues a new upload credential for this video, on its owner's "
                      "behalf (the credential itself is never shown here).",
                      "refresh_{model}_credential"),
    "sync": Button("sync", "Sync status from VOD",
                   "Asks VOD for this media's status and updates the record.", "sync_{model}"),
    "remove": Button("remove", "Cancel or delete",
                     "Deletes the media in VOD. This cannot be undone; the record is kept, "
                     "marked cancelled or deleted.", "cancel_{model}"),
}


class UploadPageMixin:
    """For an upload's ModelAdmin: the timeline on its change page and its buttons."""

    change_form_template = "admin/uploads/upload_change_form.html"
    confirm_template = "admin/uploads/upload_action_confirm.html"

    def buttons_for(self, model) -> list[Button]:
        """The buttons this kind of upload has (refresh: videos only)."""
        return [button for name, button in BUTTONS.items()
                if name != "refresh" or model is VideoUpload]

    def button_permitted(self, request, button: Button) -> bool:
        """Whether this staff member may press `button`: the API's rule for refresh and
        cancel (services.staff_permitted), the admin's sync permission for sync."""
        user = request.user
        if button.name == "sync":
            return user.is_active and user.is_staff and user.has_perm(button.codename(self.model))
        action = {"refresh": "refresh", "remove": "destroy"}[button.name]
        return services.staff_permitted(user, self.model, action)

    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        own = [path(f"<path:object_id>/{button.name}/",
                    self.admin_site.admin_view(self.button_view),
                    {"button": button.name}, name=f"{info[0]}_{info[1]}_{button.name}")
               for button in self.buttons_for(self.model)]
        return own + super().get_urls()

    def change_view(self, request, object_id, form_url="", extra_context=None):
        upload = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if upload is not None:
            entries, truncated = upload_timeline(upload)
            names = self.opts.app_label, self.opts.model_name
            extra.update(
                timeline=entries, timeline_truncated=truncated, timeline_shown=TIMELINE_SHOWN,
                credential_state=credential_state(upload),
                audit_url=reverse("admin:uploads_auditevent_changelist") + f"?q={upload.pk}",
                vod_events_url=(reverse("admin:uploads_vodevent_changelist")
                                + f"?q={upload.vod_id}") if upload.vod_id else "",
                upload_buttons=[
                    (button, reverse(f"admin:{names[0]}_{names[1]}_{button.name}",
                                     args=[upload.pk]))
                    for button in self.buttons_for(self.model)
                    if self.button_permitted(request, button)])
        return super().change_view(request, object_id, form_url, extra)

    def button_view(self, request, object_id, button):
        """GET: the confirmation page. POST (CSRF-checked by admin_view): act, report,
        back to the upload's page. A refused POST is audited."""
        upload = self.get_object(request, unquote(object_id))
        if upload is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        if not self.has_view_permission(request, upload):
            raise PermissionDenied
        spec = BUTTONS[button]
        permitted = self.button_permitted(request, spec)
        back = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
                       args=[upload.pk])
        if request.method == "POST":
            if not permitted:
                self._refuse(request, upload, spec)
            else:
                for level, text in self._press(request, upload, spec):
                    self.message_user(request, text, level)
            return HttpResponseRedirect(back)
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": f"{spec.title}: are you sure?", "object": upload,
                   "upload_label": label(upload), "button": spec, "permitted": permitted,
                   "permission": spec.codename(self.model), "back_url": back,
                   "owner": upload.owner.get_username(),
                   "credential_state": credential_state(upload),
                   "has_view_permission": True}
        return TemplateResponse(request, self.confirm_template, context)

    def _press(self, request, upload, spec: Button) -> list[tuple[int, str]]:
        if spec.name == "refresh":
            return [refresh_one(request, upload)]
        if spec.name == "sync":
            return sync_rows(request, [upload])
        return [remove_one(request, upload)]

    def _refuse(self, request, upload, spec: Button) -> None:
        codename = spec.codename(self.model)
        # As the services audit a refused action: who, which upload, whose, and why.
        audit.record("upload.action.refused", outcome=AuditOutcome.REJECTED,
                     context=RequestContext.from_request(request), target=upload,
                     data={"action": f"admin.{spec.name}", "reason": "permission",
                           "permission": codename, "owner": upload.owner.get_username()})
        self.message_user(request, f"{label(upload)}: not done: {spec.title.lower()} needs "
                                   f"the permission {codename}.", messages.ERROR)
