"""The peer's one app."""

from django.apps import AppConfig


class VideosConfig(AppConfig):
    """Videos users asked an upload credential for."""

    name = "videos"
    default_auto_field = "django.db.models.BigAutoField"
