"""vodportal's URLs: the upload pages, the API under /api/v1/, its schema and docs, probes,
the staff admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from uploads import admin_dashboard, health, web
from uploads.metrics import view as metrics_view

urlpatterns = [
    path("", web.home, name="home"),
    path("upload/", web.upload_page, name="upload"),
    path("uploads/", web.uploads_page, name="uploads"),
    path("accounts/login/", auth_views.LoginView.as_view(
        template_name="uploads/login.html", redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Prometheus, for allowed scrapers only (404 to anyone else); not part of the API schema.
    path("metrics", metrics_view.metrics, name="metrics"),
    # Before the admin's catch-all, which would answer 404 for a path it does not know.
    path("admin/dashboard/", admin_dashboard.dashboard_view, name="admin_dashboard"),
    path("admin/", admin.site.urls),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="docs"),
    path("api/v1/", include("uploads.api.urls")),
]

handler404 = "uploads.api.errors.json_not_found"
handler500 = "uploads.api.errors.json_server_error"
