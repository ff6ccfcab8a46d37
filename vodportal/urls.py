"""vodportal's URLs: the API under /api/v1/, its schema and docs, probes, the staff admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from uploads import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/v1/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include("uploads.api.urls")),
]

handler404 = "uploads.api.errors.json_not_found"
handler500 = "uploads.api.errors.json_server_error"
