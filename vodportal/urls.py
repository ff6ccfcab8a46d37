"""vodportal's URLs: the API under /api/v1/ and the staff admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("uploads.api.urls")),
]

handler404 = "uploads.api.errors.json_not_found"
handler500 = "uploads.api.errors.json_server_error"
