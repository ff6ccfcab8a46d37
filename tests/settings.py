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

from vodportal.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
