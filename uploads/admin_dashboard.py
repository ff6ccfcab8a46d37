"""The staff service dashboard: one read-only page in the admin, at /admin/dashboard/.

Staff only (admin.site.admin_view sends anyone else to the admin's login) and only with the
view permission on all three upload models: the page reports on every kind and every user,
as their changelists would. The figures come from `services.dashboard` (aggregate queries;
nothing per row); the charts are drawn by our vendored Chart.js from data handed over with
`json_script`, because the Content-Security-Policy allows no inline script.

Importing this module (vodportal/urls.py does, for the route) points the admin index at a
template that adds a "Service dashboard" link: an `admin/index.html` of ours would never be
found, since django.contrib.admin's own templates come first in INSTALLED_APPS.
"""

from urllib.parse import urlencode

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.template.response import TemplateResponse
from django.urls import reverse

from .models import UPLOAD_MODELS
from .services import dashboard as figures

# Seeing the dashboard means seeing, in sum, what these changelists show row by row.
REQUIRED_PERMISSIONS = tuple(f"uploads.view_{model._meta.model_name}"
                             for model in UPLOAD_MODELS.values())

admin.site.index_template = "admin/dashboard/admin_index.html"


def may_view(user) -> bool:
    """Whether `user` may see the dashboard (staff is checked by admin_view)."""
    return user.is_active and user.is_staff and user.has_perms(REQUIRED_PERMISSIONS)


def _chart(series, colours: dict[str, str], labels: dict[str, str]) -> dict:
    """A Chart.js bar chart's `data`, stacked by kind."""
    return {"labels": series.labels,
            "datasets": [{"label": labels[kind], "data": counts, "backgroundColor": colours[kind]}
                         for kind, counts in series.by_kind.items()]}


_COLOURS = {"video": "#417690", "image": "#e3a21a", "attached_media": "#70a85c",
            "rejected": "#ba2121"}


def _user_link(request, user) -> str | None:
    """The user's admin page, when the viewer may open it."""
    opts = get_user_model()._meta
    if user is None or not request.user.has_perm(f"{opts.app_label}.view_{opts.model_name}"):
        return None
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[user.pk])


def _dashboard(request):
    if not may_view(request.user):
        raise PermissionDenied("The service dashboard needs the view permission on uploads.")
    data = figures.dashboard()
    stuck_query = urlencode(figures.stuck_filter(data.now))
    stuck = [{"label": figures.KIND_LABELS[kind], "count": count,
              "url": reverse(f"admin:uploads_{model._meta.model_name}_changelist")
              + "?" + stuck_query}
             for kind, model in UPLOAD_MODELS.items() for count in [data.stuck[kind]]]
    uploaders = [{**row, "name": row["user"].get_username() if row["user"] else
                  f"user #{row['owner_id']}", "url": _user_link(request, row["user"])}
                 for row in data.top_uploaders]
    charts = {
        "per_hour": _chart(data.per_hour, _COLOURS, figures.KIND_LABELS),
        "per_day": _chart(data.per_day, _COLOURS, figures.KIND_LABELS),
        "rejected": _chart(data.rejected_per_day, _COLOURS,
                           {"rejected": "Refused callbacks"}),
    }
    rejected_url = reverse("admin:uploads_vodevent_changelist") + "?status__exact=rejected"
    context = {
        **admin.site.each_context(request),
        "title": "Service dashboard",
        "data": data,
        "figures": figures,
        "kind_labels": figures.KIND_LABELS,
        "hour_rows": _rows(data.per_hour),
        "day_rows": _rows(data.per_day),
        "stuck": stuck,
        "uploaders": uploaders,
        "charts": charts,
        "rejected_total": data.rejected_per_day.total,
        "rejected_url": rejected_url,
    }
    return TemplateResponse(request, "admin/dashboard/dashboard.html", context)


def _rows(series) -> list[tuple[str, list[int], int]]:
    """The chart's numbers as table rows (label, counts per kind, total): the same figures
    for screen readers and for anyone without JavaScript."""
    kinds = list(series.by_kind)
    return [(label, counts, sum(counts)) for label, counts in
            ((label, [series.by_kind[kind][index] for kind in kinds])
             for index, label in enumerate(series.labels))]


dashboard_view = admin.site.admin_view(_dashboard)
