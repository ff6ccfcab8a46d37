"""The one configuration file: Django's settings and gunicorn.conf.py both call `load()`.

The deployment's `.env` (beside manage.py; VODPORTAL_ENV_FILE names another, which the tests
use so they never write the real one) fills in what the process environment does not set:
the environment always wins, so a service manager's EnvironmentFile, or a variable given on
the command line, overrides the file for Django and gunicorn alike.

`make run` (scripts/run-local.sh, VODPORTAL_LOCAL_RUN=true) reads no `.env` at all: on a
host that is also a deployment, that file holds the production database, Redis, audit key
and checkpoint directory, none of which a local run may touch. Everything the local run
needs comes from run-local.sh, and settings refuse a local run whose database or cache
points anywhere but its own SQLite file and local memory (`check_local_run`).
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_RUN_VARIABLE = "VODPORTAL_LOCAL_RUN"


def local_run() -> bool:
    """True in a `make run` process (scripts/run-local.sh sets the flag)."""
    return os.environ.get(LOCAL_RUN_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def env_file() -> Path:
    """The deployment's `.env`: BASE_DIR/.env unless VODPORTAL_ENV_FILE names another."""
    return Path(os.environ.get("VODPORTAL_ENV_FILE") or BASE_DIR / ".env")


def load() -> Path | None:
    """Copy the `.env` file's variables into os.environ where they are not set already.

    Returns the file read, or None (a local run, or no file). django-environ's read_env
    with overwrite=False uses os.environ.setdefault: a variable already in the environment,
    even an empty one (run-local.sh's REDIS_URL=), keeps its value.
    """
    import environ

    path = env_file()
    if local_run() or not path.is_file():
        return None
    environ.Env.read_env(path, overwrite=False)
    return path


def check_local_run(database_url: str, redis_url: str) -> None:
    """A local run uses a SQLite file and local memory, whatever else the host configures:
    refuse to start (naming the variable) rather than migrate or write demo accounts into a
    real database or cache."""
    from django.core.exceptions import ImproperlyConfigured

    if not database_url.startswith("sqlite:///"):
        raise ImproperlyConfigured(
            f"{LOCAL_RUN_VARIABLE} is set (make run) but DATABASE_URL is not a SQLite file "
            f"({database_url.split('://', 1)[0]}://…): a local run never uses another database. "
            "Start it with `make run`, which sets DATABASE_URL=sqlite:///var/local.sqlite3.")
    if redis_url:
        raise ImproperlyConfigured(
            f"{LOCAL_RUN_VARIABLE} is set (make run) but REDIS_URL is set: a local run keeps "
            "its cache in local memory and never uses Redis. Start it with `make run`.")
