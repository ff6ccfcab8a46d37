"""Run the real portal as deployed: migrate a database, make API tokens, start gunicorn.

Used by tests/test_production_stack.py and scripts/fuzz_api.py.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def fresh_database_url(url: str, name: str, sqlite_dir: Path) -> str:
    """A database of its own: a new PostgreSQL database when `url` is PostgreSQL, else a
    SQLite file in `sqlite_dir`."""
    if url.startswith("postgres"):
        import psycopg

        admin_url = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_url, autocommit=True) as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            connection.execute(f"CREATE DATABASE {name}")
        return url.rsplit("/", 1)[0] + f"/{name}"
    return f"sqlite:///{sqlite_dir / (name + '.sqlite3')}"


@dataclass
class Portal:
    """A running gunicorn serving vodportal."""

    url: str
    process: subprocess.Popen
    tokens: dict[str, str]
    access_log: Path
    env: dict[str, str] = field(repr=False)

    def stop(self) -> int:
        """SIGTERM (graceful) and wait; returns gunicorn's exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            return self.process.wait(timeout=30)
        return self.process.returncode


def start_portal(*, sandbox_endpoint: str, access_key_id: str, access_key_secret: str,
                 database_url: str, workdir: Path, users: list[str],
                 extra_env: dict[str, str] | None = None) -> Portal:
    """Migrate `database_url`, create `users` with API tokens, start gunicorn on a free port."""
    port = free_port()
    access_log = workdir / "access.log"
    env = {
        **{key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "VOD_", "PYTEST", "ALIBABA_CLOUD_ACCESS",
                                  "REDIS_URL", "API_"))},
        "DJANGO_SETTINGS_MODULE": "vodportal.settings",
        "DJANGO_SECRET_KEY": "stack-secret-" + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "AUDIT_KEY": "stack-audit-key-" + uuid.uuid4().hex,
        "AUDIT_CHECKPOINT_DIR": str(workdir / "audit-checkpoints"),
        # Collected as a deployment does (/readyz checks the pages' assets are there).
        "DJANGO_STATIC_ROOT": str(workdir / "static"),
        "DATABASE_URL": database_url,
        "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
        "VOD_SANDBOX": "true",
        "VOD_ENDPOINT": sandbox_endpoint,
        "VOD_PROTOCOL": "http",
        "VOD_SANDBOX_ACCESS_KEY_ID": access_key_id,
        "VOD_SANDBOX_ACCESS_KEY_SECRET": access_key_secret,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "2",
        "GUNICORN_GRACEFUL_TIMEOUT": "10",
        "GUNICORN_ACCESSLOG": str(access_log),
        "LOG_LEVEL": "WARNING",
        **(extra_env or {}),
    }
    python = sys.executable
    subprocess.run([python, "manage.py", "collectstatic", "--no-input", "-v", "0"], cwd=ROOT,
                   env=env, check=True, timeout=180)
    subprocess.run([python, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT,
                   env=env, check=True, timeout=180)
    code = ("import json; from knox.models import AuthToken; "
            "from django.contrib.auth.models import User; "
            f"print(json.dumps({{name: AuthToken.objects.create(User.objects.create("
            f"username=name))[1] for name in {users!r}}}))")
    tokens = json.loads(subprocess.run([python, "manage.py", "shell", "-v", "0", "-c", code],
                                       cwd=ROOT, env=env, check=True, capture_output=True,
                                       text=True, timeout=60).stdout)
    return _serve(env, tokens, workdir, access_log)


def start_sibling(portal: Portal, *, workdir: Path, workers: int = 1) -> Portal:
    """Another gunicorn on its own port serving the same database, Redis and sandbox: a
    second host behind the same load balancer. Requests sent to each are certain to be
    handled by different processes, which one gunicorn's workers do not promise (the kernel
    may hand every connection to the same worker)."""
    access_log = workdir / "access.log"
    env = {**portal.env, "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
           "GUNICORN_WORKERS": str(workers), "GUNICORN_ACCESSLOG": str(access_log)}
    return _serve(env, portal.tokens, workdir, access_log)


def _serve(env: dict[str, str], tokens: dict[str, str], workdir: Path,
           access_log: Path) -> Portal:
    """Start gunicorn with `env` and wait until it answers /healthz."""
    python = sys.executable
    # A file, not a pipe: an undrained pipe fills up and blocks every worker's next log line.
    error_log = workdir / "gunicorn.log"
    process = subprocess.Popen([str(Path(python).parent / "gunicorn"),
                                "vodportal.wsgi:application", "-c", "gunicorn.conf.py"],
                               cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=error_log.open("w"))
    url = f"http://{env['GUNICORN_BIND']}"
    deadline = time.time() + 30
    while True:
        try:
            if requests.get(f"{url}/healthz", timeout=5).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass  # still starting: workers import the application on their first request
        if time.time() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"gunicorn did not start: {error_log.read_text()[-2000:]}")
        time.sleep(0.2)
    return Portal(url=url, process=process, tokens=tokens, access_log=access_log, env=env)


def start_fuzz_target(*, database_url: str, workdir: Path,
                      extra_env: dict[str, str]) -> tuple[object, Portal]:
    """What the fuzzers aim at: an in-process sandbox and a portal (gunicorn) using it, with
    one user, `fuzzer`. Returns (sandbox, portal); stop both."""
    from vodsandbox import Sandbox, SandboxConfig

    key_id, secret = "FuzzKeyId0000001", "fuzz-sandbox-secret"
    sandbox = Sandbox(SandboxConfig(access_key_id=key_id, access_key_secret=secret)).start()
    try:
        portal = start_portal(sandbox_endpoint=sandbox.endpoint, access_key_id=key_id,
                              access_key_secret=secret, database_url=database_url,
                              workdir=workdir, users=["fuzzer"], extra_env=extra_env)
    except BaseException:
        sandbox.stop()
        raise
    return sandbox, portal
