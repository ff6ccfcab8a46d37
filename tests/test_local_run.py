"""`make run` never touches the deployment it may share a host with (issue 16, point 1).

A host whose `.env` or environment holds the production DATABASE_URL, REDIS_URL and keys
may also be where someone types `make run`. The local run sets its own SQLite file and
local-memory cache, settings read no `.env` under it, and refuse another database or Redis.
"""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.conftest import wait_until
from tests.stack import ROOT, free_port

MARKER_DATABASE = "vodp_deploy_marker"
MARKER_REDIS = "redis://127.0.0.1:6379/13"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the test settings pytest-django put there."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "PYTEST", "AUDIT_", "VOD_", "VODPORTAL_"))
           and key not in {"DATABASE_URL", "REDIS_URL"}}
    return {**env, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", **extra}


def settings_value(env: dict[str, str], expression: str) -> subprocess.CompletedProcess:
    code = f"from django.conf import settings; print({expression})"
    return subprocess.run([sys.executable, "manage.py", "shell", "-v", "0", "-c", code],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def marker_database_url():
    """An empty PostgreSQL database standing for production's: nothing may appear in it.
    Without PostgreSQL, a URL nothing answers at (any use of it would fail the run)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        yield "postgres://vodportal:secret@127.0.0.1:9/production"
        return
    import psycopg

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {MARKER_DATABASE} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {MARKER_DATABASE}")
    marker = url.rsplit("/", 1)[0] + f"/{MARKER_DATABASE}"
    yield marker
    with psycopg.connect(marker) as connection:
        tables = connection.execute("SELECT table_name FROM information_schema.tables "
                                    "WHERE table_schema = 'public'").fetchall()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {MARKER_DATABASE} WITH (FORCE)")
    assert tables == [], f"the local run wrote to the production database: {tables}"


@pytest.fixture
def production_env_file(tmp_path, marker_database_url):
    """A deployment's .env (the real BASE_DIR/.env is never written: VODPORTAL_ENV_FILE)."""
    path = tmp_path / "production.env"
    path.write_text(f"DATABASE_URL={marker_database_url}\nREDIS_URL={MARKER_REDIS}\n"
                    "DJANGO_SECRET_KEY=prod-marker-secret\nAUDIT_KEY=prod-marker-audit-key\n"
                    f"AUDIT_CHECKPOINT_DIR={tmp_path / 'prod-marker-checkpoints'}\n")
    return path


@pytest.mark.parametrize("variable, value", [
    ("DATABASE_URL", "postgres://vodportal:secret@db.example.com:5432/vodportal"),
    ("REDIS_URL", "redis://cache.example.com:6379/0"),
])
def test_a_local_run_refuses_a_real_database_or_redis_naming_the_variable(tmp_path, variable,
                                                                          value):
    env = clean_env(VODPORTAL_LOCAL_RUN="true", DJANGO_DEBUG="true",
                    DATABASE_URL=f"sqlite:///{tmp_path / 'local.sqlite3'}", REDIS_URL="")
    env[variable] = value
    run = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert f"but {variable} is" in run.stderr
    assert "secret" not in run.stderr  # the URL's password is never shown


def test_a_local_run_reads_no_env_file(tmp_path, production_env_file):
    env = clean_env(VODPORTAL_LOCAL_RUN="true", DJANGO_DEBUG="true",
                    DATABASE_URL=f"sqlite:///{tmp_path / 'local.sqlite3'}", REDIS_URL="",
                    VODPORTAL_ENV_FILE=str(production_env_file))
    run = settings_value(env, "settings.DATABASES['default']['ENGINE'], settings.CACHES"
                              "['default']['BACKEND'], settings.AUDIT_CHECKPOINT_DIR, "
                              "settings.SECRET_KEY")
    assert run.returncode == 0, run.stderr
    assert "sqlite3" in run.stdout and "LocMemCache" in run.stdout
    assert "prod-marker" not in run.stdout


def test_make_run_uses_its_own_sqlite_and_memory_whatever_the_host_says(
        tmp_path, production_env_file, marker_database_url):
    """scripts/run-local.sh (what `make run` runs) on a host whose .env and environment both
    name the production database and Redis: it serves from var/'s SQLite and local memory,
    says so, and leaves the production database and Redis as they were."""
    import redis

    cache = redis.Redis.from_url(MARKER_REDIS)
    try:
        cache.flushdb()
    except redis.exceptions.ConnectionError:
        cache = None  # no Redis here: the local run must not need one either
    port, sandbox_port = free_port(), free_port()
    env = clean_env(BIN=str(Path(sys.executable).parent), PORT=str(port),
                    SANDBOX_PORT=str(sandbox_port), LOCAL_RUN_DIR=str(tmp_path / "var"),
                    VODPORTAL_ENV_FILE=str(production_env_file),
                    DATABASE_URL=marker_database_url, REDIS_URL=MARKER_REDIS)
    output = tmp_path / "run.out"
    with output.open("w") as out:
        run = subprocess.Popen(["scripts/run-local.sh"], cwd=ROOT, env=env, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def answered():
            assert run.poll() is None, output.read_text()
            try:
                # In a list: a Response is falsy for a 4xx/5xx, and any answer will do here.
                return [requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10)]
            except requests.ConnectionError:
                return None

        [ready] = wait_until(answered, timeout=120, what="the local run's /readyz")
        assert ready.status_code == 200, ready.text
        created = requests.post(f"http://127.0.0.1:{port}/api/v1/auth/token/", timeout=10,
                                json={"username": "nobody", "password": "wrong"})
        assert created.status_code in (400, 401)  # a write path ran (the audit trail)
    finally:
        os.killpg(run.pid, signal.SIGTERM)  # the script, its sandbox and its runserver
        run.wait(timeout=30)
    banner = output.read_text()
    assert f"SQLite {tmp_path / 'var' / 'local.sqlite3'}" in banner
    assert "local memory (no Redis)" in banner
    assert (tmp_path / "var" / "local.sqlite3").stat().st_size > 0
    assert not (tmp_path / "prod-marker-checkpoints").exists()
    if cache is not None:
        assert cache.dbsize() == 0, "the local run wrote to the production Redis"
