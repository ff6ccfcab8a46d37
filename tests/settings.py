"""Settings for the test suite: the real settings, with a test environment set first.

pytest-django imports settings before any conftest runs, so what must hold for every test
(the ECS metadata service never contacted, a secret key, the sandbox) is set here.
"""

import os

os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-0123456789abcdef")
os.environ.setdefault("DJANGO_DEBUG", "false")
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("AUDIT_KEY", "test-audit-key-5b7e2d9c41a8f0e3")
os.environ["VOD_SANDBOX"] = "true"
# The sandbox answers in microseconds; a short read timeout keeps timeout tests quick.
os.environ.setdefault("VOD_READ_TIMEOUT_MS", "2000")
os.environ.setdefault("VOD_RETRY_BACKOFF_MS", "10")
# The outbound limiter has its own tests; elsewhere it must never make a test wait.
os.environ.setdefault("VOD_QPS_LIMIT", "100000")

from vodportal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Tests serve static files from the apps (no collectstatic manifest).
STORAGES = {**STORAGES, "staticfiles": {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
# Generous rates: throttling has its own tests, which set the rates they need.
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {  # noqa: F405
    "credentials": "10000/minute", "refresh": "10000/minute"}}
LOG_FORMAT = "plain"
LOGGING["handlers"]["console"]["formatter"] = "plain"  # noqa: F405
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# Each event sealed in its own transaction: every test sees a chained event right away.
# The background sealer has its own tests (tests/test_audit_sealer.py), which turn this off.
AUDIT_SEAL_INLINE = True

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory: the live server's thread and the test then use connections of
    # their own instead of sharing one (which SQLite cannot do safely).
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / "test-db.sqlite3")}  # noqa: F405
    (BASE_DIR / "var").mkdir(exist_ok=True)  # noqa: F405
