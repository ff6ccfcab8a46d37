"""System checks: say what is missing before a request finds out."""

import functools
import re
from pathlib import Path

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


# `{% static 'path' %}` in our templates: the assets the pages load. Read from the templates
# themselves, so a new page's asset is checked without anyone remembering to list it.
_STATIC_TAG = re.compile(r"""{%\s*static\s+['"]([^'"]+)['"]\s*%}""")
_TEMPLATES = Path(__file__).resolve().parent / "templates"


@functools.cache  # templates do not change under a running process; /readyz asks often
def page_static_assets() -> tuple[str, ...]:
    """Every static path our templates reference, sorted."""
    found = set()
    for template in _TEMPLATES.rglob("*.html"):
        found.update(_STATIC_TAG.findall(template.read_text(encoding="utf-8")))
    return tuple(sorted(found))


def missing_static_assets() -> list[str]:
    """The assets the pages reference that this process could not serve.

    With a manifest storage (production: collectstatic, served by WhiteNoise) an asset must
    have a manifest entry and its hashed file in STATIC_ROOT; otherwise (DEBUG, tests) the
    staticfiles finders must find it in an app. The ali-oss bundle once existed only where
    `npm ci` had run, and the upload page failed in the browser, not here (issue 16).
    """
    from django.contrib.staticfiles import finders
    from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage

    # The lazy storage proxies isinstance() to the configured class.
    manifest = isinstance(staticfiles_storage, ManifestFilesMixin)
    missing = []
    for path in page_static_assets():
        if manifest:
            try:
                stored = staticfiles_storage.stored_name(path)
            except ValueError:  # no manifest entry (or no manifest: collectstatic not run)
                missing.append(path)
                continue
            if not staticfiles_storage.exists(stored):
                missing.append(path)
        elif not finders.find(path):
            missing.append(path)
    return missing


@register(Tags.staticfiles, deploy=True)
def check_page_static_assets(app_configs=None, **kwargs):
    """Under `check --deploy` (run after collectstatic): every asset a page loads is there.
    Not on every command: `migrate` runs before `collectstatic` in a deployment."""
    return [Error(f"Static file {path!r}, which the pages load, is missing from the static "
                  "files storage.",
                  hint="Run `manage.py collectstatic` from a complete checkout "
                       "(uploads/static/vendor/ is part of the repository).",
                  id="uploads.E003")
            for path in missing_static_assets()]
