"""The browser pages: upload a file straight to VOD's storage, and follow one's uploads.

Thin on purpose: these views only render templates. The pages' JavaScript asks the JSON API
(/api/v1/) for a credential with the session cookie and the CSRF token, sends the bytes
straight to OSS with ali-oss (never through vodportal), and follows the record's status
through the API. Nothing here calls VOD, sees a credential or moves an upload.
"""

from itertools import chain

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import reverse

from . import validation
from .models import AttachedMediaUpload, ImageUpload, UploadStatus, VideoUpload

# Statuses something may still move on its own (VOD's callbacks, the upload itself): the
# pages poll the API while a record is in one, and stop once it has settled.
IN_FLIGHT = (UploadStatus.REQUESTING, UploadStatus.UPLOADING, UploadStatus.UPLOADED,
             UploadStatus.PROCESSING)
# How often the pages ask the API for a status: quick enough to feel live, one request a
# second per kind at most.
POLL_MS = 1000
# The uploads page shows this many of the newest records.
LIST_SIZE = 50

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


def _page_config() -> dict:
    """What the pages' JavaScript needs to know, handed over with json_script (no secrets)."""
    return {
        "kinds": {kind: {"label": label, "api": reverse(f"{route}-list"), "idField": id_field,
                         "refreshable": kind == "video", "extensions": _extensions(kind)}
                  for kind, (label, _, route, id_field) in KINDS.items()},
        "statuses": dict(UploadStatus.choices),
        "inFlight": list(IN_FLIGHT),
        "pollMs": POLL_MS,
        "uploadsUrl": reverse("uploads"),
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
        "config": _page_config(),
    })


@login_required
def uploads_page(request):
    """The user's own newest uploads of every kind, their status kept live by the page."""
    rows = []
    for kind, (label, model, _, _) in KINDS.items():
        # Only the user's own, staff included: everyone else's are the admin's business.
        for upload in model.objects.filter(owner=request.user).order_by("-created_at",
                                                                        "-id")[:LIST_SIZE]:
            rows.append({"kind": kind, "kind_label": label, "upload": upload,
                         "in_flight": upload.status in IN_FLIGHT})
    rows.sort(key=lambda row: row["upload"].created_at, reverse=True)
    return render(request, "uploads/uploads.html", {
        "nav": "uploads", "rows": rows[:LIST_SIZE], "list_size": LIST_SIZE,
        "config": _page_config(),
    })
