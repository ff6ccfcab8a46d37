"""Per-user rates for asking VOD on a user's behalf, kept in the shared cache (Redis)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle


class _SettingsRateThrottle(UserRateThrottle):
    """Reads its rate when used (DRF's default binds the rates once, at import)."""

    def get_rate(self):
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class CredentialIssueThrottle(_SettingsRateThrottle):
    """POST /videos/, /images/, /attached-media/: API_CREDENTIAL_RATE per user."""

    scope = "credentials"


class CredentialRefreshThrottle(_SettingsRateThrottle):
    """POST /videos/{id}/refresh/: API_REFRESH_RATE per user."""

    scope = "refresh"
