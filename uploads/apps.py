from django.apps import AppConfig


class UploadsConfig(AppConfig):
    """Upload records, the VOD gateway and the audit trail."""

    default_auto_field = "django.db.models.BigAutoField"
    name = "uploads"

    def ready(self):
        # Signal receivers and system checks (the OpenID Connect settings' among them).
        from . import auth_audit, checks, oidc, token_cache  # noqa: F401
        from .services import policy_memo  # noqa: F401
