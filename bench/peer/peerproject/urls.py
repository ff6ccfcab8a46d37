"""The peer's routes: the one endpoint, and /healthz (gunicorn.conf.py resolves it when a
worker starts, and the bench waits for it)."""

from django.http import HttpResponse
from django.urls import path

from videos.views import CreateVideo

urlpatterns = [
    path("api/v1/videos/", CreateVideo.as_view()),
    path("healthz", lambda request: HttpResponse("ok")),
]
