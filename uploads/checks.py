"""System checks: say what is missing before a request finds out."""

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register


@register(Tags.security, deploy=False)
def check_vod_settings(app_configs=None, **kwargs):
    """The VOD and audit settings a deployment needs."""
    problems = []
    if settings.VOD_SANDBOX and not settings.DEBUG:
        problems.append(Warning(
            "VOD_SANDBOX is on while DEBUG is off: uploads go to the local sandbox, not VOD.",
            hint="Unset VOD_SANDBOX (and VOD_ENDPOINT) in production.", id="uploads.W001"))
    if not settings.VOD_SANDBOX and settings.VOD_ENDPOINT.startswith(("127.", "localhost")):
        problems.append(Warning(
            "VOD_ENDPOINT points at this machine but VOD_SANDBOX is off.",
            hint="Set VOD_SANDBOX=true to use vodsandbox, or clear VOD_ENDPOINT.",
            id="uploads.W002"))
    if not settings.VOD_REGION:
        problems.append(Error("VOD_REGION is empty.", hint="For example cn-shanghai.",
                              id="uploads.E002"))
    if settings.VOD_CALLBACK_URL and not settings.VOD_CALLBACK_AUTH_KEYS:
        problems.append(Warning(
            "VOD_CALLBACK_URL is set without VOD_CALLBACK_AUTH_KEYS: callbacks cannot be "
            "verified.", hint="Enable URL authentication in the VOD console and set its key.",
            id="uploads.W003"))
    return problems
