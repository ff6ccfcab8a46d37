"""The browser pages: upload a file straight to VOD's storage, and follow one's uploads.

Thin on purpose: these views only render templates. The pages' JavaScript asks the JSON API
(/api/v1/) for a credential with the session cookie and the CSRF token, sends the bytes
straight to OSS with ali-oss (never through vodportal), and follows the record's status
through the API. Nothing here calls VOD, sees a credential or moves an upload.
"""

from datetime import datetime
from itertools import chain
from urllib.parse import urlencode
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.shortcuts import redirect, render
from django.urls import reverse

from . import validation
from .models import IN_FLIGHT_STATUSES, AttachedMediaUpload, ImageUpload, UploadStatus, VideoUpload

# Statuses something may still move on its own (VOD's callbacks, the upload itself): the
# pages poll the API while a record is in one, and stop once it has settled.
# How often the pages ask the API for a status: quick enough to feel live, one request a
# second per kind at most.
POLL_MS = 1000
# My uploads shows this many rows a page: one screen, and the live polling stays cheap.
LIST_SIZE = 25
# Automatic retries of a dropped connection: this many, the first after about RETRY_BASE_MS,
# doubling each time (with jitter, so many browsers cut off together do not come back in
# step). A module constant so the browser tests can make the waits short.
RETRY_ATTEMPTS = 4
RETRY_BASE_MS = 1000
# Files sent at the same time from the upload page (each in parallel parts); the rest wait.
FILES_AT_ONCE = 2
SEARCH_MAX = 100

# kind -> (label, model, API route name prefix, id field in the API's answers)
KINDS = {
    "video": ("Video or audio", VideoUpload, "video", "video_id"),
    "image": ("Image", ImageUpload, "image", "image_id"),
    "attached-media": ("Attached media", AttachedMediaUpload, "attached-media", "media_id"),
}


def _extensions(kind: str) -> list[str]:
    """What VOD accepts for a kind, for the file picker's `accept` and the hint beside it."""
    if kind == "video":
        return sorted(validation.VIDEO_EXTENSIONS | validation.AUDIO_EXTENSIONS)
    if kind == "image":
        return list(validation.IMAGE_EXTENSIONS)
    return sorted(set(chain.from_iterable(validation.ATTACHED_MEDIA_EXTENSIONS.values())))


def _detect_extensions() -> dict:
    """Extension -> kind (and business type), for choosing each dropped file's kind. Images
    win over watermarks and materials (png, gif, jpg): those are attached media only when
    the user says so with the kind selector."""
    detect = {}
    for business_type, extensions in validation.ATTACHED_MEDIA_EXTENSIONS.items():
        for ext in extensions:
            detect.setdefault(ext, ["attached-media", business_type])
    for ext in validation.IMAGE_EXTENSIONS:
        detect[ext] = ["image", None]
    for ext in validation.VIDEO_EXTENSIONS | validation.AUDIO_EXTENSIONS:
        detect[ext] = ["video", None]
    return detect


def _page_config(request) -> dict:
    """What the pages' JavaScript needs to know, handed over with json_script (no secrets)."""
    return {
        "kinds": {kind: {"label": label, "api": reverse(f"{route}-list"), "idField": id_field,
                         "refreshable": kind == "video", "extensions": _extensions(kind)}
                  for kind, (label, _, route, id_field) in KINDS.items()},
        "statuses": dict(UploadStatus.choices),
        "inFlight": list(IN_FLIGHT_STATUSES),
        "pollMs": POLL_MS,
        "uploadsUrl": reverse("uploads"),
        "uploadUrl": reverse("upload"),
        "detect": _detect_extensions(),
        "retry": {"attempts": RETRY_ATTEMPTS, "baseMs": RETRY_BASE_MS},
        "filesAtOnce": FILES_AT_ONCE,
        # Scopes the resume checkpoints kept in localStorage to who saved them.
        "user": request.user.pk,
    }


def home(request):
    """The site's root: the upload page (which asks for a login when needed)."""
    return redirect("upload")


@login_required
def upload_page(request):
    """Pick a kind and a file, describe it, upload it; watch it become ready."""
    return render(request, "uploads/upload.html", {
        "nav": "upload",
        "image_types": validation.IMAGE_TYPES,
        "business_types": validation.ATTACHED_MEDIA_EXTENSIONS,
        "title_max_bytes": validation.TITLE_MAX_BYTES,
        "tags_max": validation.TAGS_MAX_COUNT,
        "config": _page_config(request),
    })


def _cursor(row) -> str:
    upload = row["upload"]
    return f"{upload.created_at.isoformat()}~{KIND_RANK[row['kind']]}~{upload.pk}"


def _parse_cursor(raw: str):
    """(created_at, kind rank, pk) from a page link, or None for the first page."""
    try:
        created, rank, pk = raw.split("~")
        return datetime.fromisoformat(created), int(rank), UUID(pk)
    except ValueError:
        return None


KIND_RANK = {kind: rank for rank, kind in enumerate(KINDS)}


def _keyset(rank: int, cursor, newer: bool) -> Q:
    """Rows after `cursor` in the merged order (created_at, kind rank, pk), newest first;
    before it when `newer`. Per model the rank is constant, so this is a plain keyset on
    (created_at, id), served by the (owner, -created_at, -id) index: no OFFSET, no COUNT."""
    created, cursor_rank, pk = cursor
    before, after = ("created_at__gt", "pk__gt") if newer else ("created_at__lt", "pk__lt")
    if rank == cursor_rank:
        return Q(**{before: created}) | Q(created_at=created, **{after: pk})
    if (rank < cursor_rank) != newer:
        return Q(**{before: created}) | Q(created_at=created)
    return Q(**{before: created})


def _list_rows(user, *, search: str, status: str, cursor, newer: bool) -> tuple[list, bool]:
    """One page of the user's own uploads of every kind, newest first, and whether more
    lie beyond it in the direction asked. Each kind gives at most a page (+1) from its
    index; merged and cut in Python."""
    rows = []
    for kind, (label, model, _, _) in KINDS.items():
        # Only the user's own, staff included: everyone else's are the admin's business.
        uploads = model.objects.filter(owner=user)
        if search:
            uploads = uploads.filter(Q(title__icontains=search) | Q(file_name__icontains=search))
        if status:
            uploads = uploads.filter(status=status)
        if cursor:
            uploads = uploads.filter(_keyset(KIND_RANK[kind], cursor, newer))
        order = ("created_at", "pk") if newer else ("-created_at", "-pk")
        for upload in uploads.order_by(*order)[:LIST_SIZE + 1]:
            rows.append({"kind": kind, "kind_label": label, "upload": upload,
                         "in_flight": upload.status in IN_FLIGHT_STATUSES})
    rows.sort(key=lambda row: (row["upload"].created_at, KIND_RANK[row["kind"]],
                               row["upload"].pk), reverse=not newer)
    more = len(rows) > LIST_SIZE
    rows = rows[:LIST_SIZE]
    if newer:
        rows.reverse()
    return rows, more


@login_required
def uploads_page(request):
    """The user's own uploads of every kind, newest first, a page at a time; searchable by
    title or file name and filterable by status. Statuses are kept live by the page."""
    search = request.GET.get("q", "").strip()[:SEARCH_MAX]
    status = request.GET.get("status", "")
    if status not in UploadStatus.values:
        status = ""
    after = _parse_cursor(request.GET.get("after", ""))
    before = None if after else _parse_cursor(request.GET.get("before", ""))
    rows, more = _list_rows(request.user, search=search, status=status,
                            cursor=after or before, newer=before is not None)
    kept = {key: value for key, value in (("q", search), ("status", status)) if value}

    def link(**cursor) -> str:
        return f"{reverse('uploads')}?{urlencode({**kept, **cursor})}"

    # Older rows exist past the last one when more came (or when we came from there).
    older = rows and (more if not before else True)
    newer = rows and (more if before else after is not None)
    return render(request, "uploads/uploads.html", {
        "nav": "uploads", "rows": rows, "list_size": LIST_SIZE, "search": search,
        "status": status, "statuses": UploadStatus.choices, "filtered": bool(kept),
        "older_url": link(after=_cursor(rows[-1])) if older else "",
        "newer_url": link(before=_cursor(rows[0])) if newer else "",
        "config": _page_config(request),
    })
