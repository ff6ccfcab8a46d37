"""Per-user rates for asking VOD on a user's behalf, shared by every process.

DRF's own rate throttles read the request history from the cache, append, and write it
back: concurrent requests all read the same history and all pass. These count with
`uploads.ratelimit` (the `limits` library's moving window, atomic in Redis), so the rate
holds across threads, workers and hosts.
"""

from rest_framework.settings import api_settings
from rest_framework.throttling import BaseThrottle

from .. import metrics, ratelimit


class _UserMovingWindowThrottle(BaseThrottle):
    """A per-user rate from DEFAULT_THROTTLE_RATES[scope], e.g. "60/minute"."""

    scope = ""

    def __init__(self):
        self._wait = None

    def allow_request(self, request, view) -> bool:
        rate = api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)
        if not rate or not request.user.is_authenticated:
            return True
        self._wait = ratelimit.hit(rate, "vodportal-throttle", self.scope, str(request.user.pk))
        if self._wait:
            metrics.throttled(self.scope)
        return not self._wait

    def wait(self):
        return self._wait


class CredentialIssueThrottle(_UserMovingWindowThrottle):
    """POST /videos/, /images/, /attached-media/: API_CREDENTIAL_RATE per user."""

    scope = "credentials"


class CredentialRefreshThrottle(_UserMovingWindowThrottle):
    """POST /videos/{id}/refresh/: API_REFRESH_RATE per user."""

    scope = "refresh"
