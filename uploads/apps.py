from django.apps import AppConfig


class UploadsConfig(AppConfig):
    """Upload records, the VOD gateway and the audit trail."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "uploads"

    def ready(self):
        from . import auth_audit, checks, token_cache  # noqa: F401  (signal receivers, checks)
