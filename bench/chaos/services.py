"""The processes the fault suite starts, each its own and on loopback: Redis, the sandbox,
the portal (gunicorn) with its database, and `manage.py` commands run with the portal's env."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
import requests

from tests.stack import Portal, free_port, fresh_database_url, start_portal

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
ACCESS_KEY_ID = "ChaosKeyId0001"
ACCESS_KEY_SECRET = "chaos-secret-" + uuid.uuid4().hex
DATABASE_NAME = "vodportal_chaos"
WORKERS = 2
# How far the sandbox's SearchMedia index trails creation (when it has the setting), and
# what the portal is told it may trail by (VOD_SEARCH_LAG_SECONDS, newer portals): more
# than the sandbox's, so the portal never takes a lagging "not found" for proof.
SANDBOX_SEARCH_LAG = 2.0
PORTAL_SEARCH_LAG = 4


def wait_until(condition, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Poll `condition` until it returns something truthy (returned) or `timeout` passes
    (TimeoutError naming `what`)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """A redis-server of our own, so it can be stopped and started again on the same port
    without touching the shared one."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start it (nothing persisted) and wait until it answers PING."""
        log = self.workdir / "redis.log"
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
             "--logfile", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 15, what=f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.process.returncode}")
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.exceptions.ConnectionError:
            return False

    def stop(self) -> None:
        """SHUTDOWN NOSAVE, and wait for the process to end (killed if it will not)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            redis.Redis(port=self.port, socket_timeout=2).shutdown(nosave=True)
        except redis.exceptions.RedisError:
            pass  # it is going away either way; the wait below decides
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class SandboxProcess:
    """`python -m vodsandbox` in its own process, steered through /_sandbox/... ."""

    def __init__(self, workdir: Path, callback_auth_key: str, callback_url: str) -> None:
        self.port = free_port()
        # VOD sends a media's events only while the account's global callback is on.
        self.callback_url = callback_url
        self.url = f"http://127.0.0.1:{self.port}"
        self.endpoint = f"127.0.0.1:{self.port}"
        self.log_path = workdir / "sandbox.log"
        self.callback_auth_key = callback_auth_key
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        """Start it and wait until its control endpoints answer."""
        log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "vodsandbox", "--host", "127.0.0.1", "--port", str(self.port),
             "--access-key-id", ACCESS_KEY_ID, "--access-key-secret", ACCESS_KEY_SECRET,
             "--callback-auth-key", self.callback_auth_key,
             "--callback-url", self.callback_url,
             # Faults, not VOD's limit, are what this suite injects (its scenarios answer
             # Throttling on purpose, at chosen rates).
             "--no-qps-limits"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()  # the child keeps its own descriptor

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"vodsandbox exited: {self.log_path.read_text()[-1000:]}")
            try:
                return requests.get(f"{self.url}/_sandbox/state", timeout=2).ok
            except requests.RequestException:
                return False

        wait_until(answers, 20, what="vodsandbox")

    def stop(self) -> None:
        """SIGTERM (it exits cleanly) and wait; killed if it does not."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    # --- control endpoints -----------------------------------------------------------------

    def _get(self, path: str) -> requests.Response:
        return requests.get(f"{self.url}/_sandbox{path}", timeout=30)

    def state(self) -> dict:
        """GET /_sandbox/state."""
        return self._get("/state").json()

    def media_ids(self) -> dict[str, str]:
        """Every media the sandbox holds: id -> kind (video, image, attached_media)."""
        state = self.state()
        return {media_id: kind
                for field, kind in (("videos", "video"), ("images", "image"),
                                    ("attached_media", "attached_media"))
                for media_id in state[field]}

    def media(self, media_id: str) -> dict | None:
        """One media's dict, or None when the sandbox does not hold it."""
        answer = self._get(f"/media/{media_id}")
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        return answer.json()

    def calls(self) -> list[dict]:
        """The VOD call log, oldest first."""
        return self._get("/calls").json()["calls"]

    def notifications(self) -> list[dict]:
        """Every notification attempt, oldest first."""
        return self._get("/notifications").json()["notifications"]

    def add_fault(self, **fault) -> None:
        """POST /_sandbox/faults (raises when the sandbox refuses the fault)."""
        answer = requests.post(f"{self.url}/_sandbox/faults", json=fault, timeout=10)
        if answer.status_code != 201:
            raise RuntimeError(f"sandbox refused fault {fault}: {answer.text}")

    def clear_faults(self) -> None:
        """DELETE /_sandbox/faults."""
        requests.delete(f"{self.url}/_sandbox/faults", timeout=10).raise_for_status()

    def configure(self, **changes) -> bool:
        """POST /_sandbox/config; False when this sandbox does not know a field."""
        answer = requests.post(f"{self.url}/_sandbox/config", json=changes, timeout=10)
        return answer.status_code == 200


@dataclass
class Stack:
    """Everything the suite runs against."""

    workdir: Path
    redis: RedisServer
    sandbox: SandboxProcess
    portal: Portal
    database_url: str
    callback_url: str
    callback_auth_key: str

    @property
    def master_pid(self) -> int:
        """The gunicorn master's pid (its workers are its children)."""
        return self.portal.process.pid

    def workers(self) -> set[int]:
        """The gunicorn workers' pids right now (children of the master)."""
        found = subprocess.run(["pgrep", "-P", str(self.master_pid)], capture_output=True,
                               text=True, check=False).stdout.split()
        return {int(pid) for pid in found}

    def manage(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run `manage.py <args>` with the portal's environment (its database, AUDIT_KEY)."""
        return subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=self.portal.env,
                              capture_output=True, text=True, timeout=timeout, check=False)

    def db(self) -> psycopg.Connection:
        """A fresh connection to the portal's database (short-lived: scenario (c) terminates
        every session on it)."""
        return psycopg.connect(self.database_url, autocommit=True, connect_timeout=10)

    def admin_db(self) -> psycopg.Connection:
        """A connection to the server's `postgres` database, untouched by terminations."""
        return psycopg.connect(self.database_url.rsplit("/", 1)[0] + "/postgres",
                               autocommit=True, connect_timeout=10)


def start_stack(workdir: Path, base_database_url: str, users: list[str]) -> tuple[Stack, list]:
    """Start Redis, the sandbox and the portal; returns the stack and what to stop (in
    reverse order), which is filled as things start so a failure half-way stops the rest."""
    started: list = []
    auth_key = "chaos-callback-" + uuid.uuid4().hex
    redis_server = RedisServer(workdir)
    started.append(redis_server)
    redis_server.start()
    port = free_port()
    callback_url = f"http://127.0.0.1:{port}/api/v1/vod/events/"
    sandbox = SandboxProcess(workdir, auth_key, callback_url)
    started.append(sandbox)
    sandbox.start()
    database_url = fresh_database_url(base_database_url, DATABASE_NAME, workdir)
    if not database_url.startswith("postgres"):
        raise SystemExit("chaos needs PostgreSQL (--database-url postgres://...)")
    portal = start_portal(
        sandbox_endpoint=sandbox.endpoint, access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET, database_url=database_url, workdir=workdir,
        users=users,
        extra_env={
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(WORKERS),
            "REDIS_URL": redis_server.url,
            # High enough never to interfere: the scenarios bring their own trouble.
            "VOD_QPS_LIMIT": "5000", "VOD_QPS_MAX_WAIT_MS": "500",
            "API_CREDENTIAL_RATE": "100000/minute", "API_REFRESH_RATE": "100000/minute",
            "VOD_CALLBACK_URL": callback_url, "VOD_CALLBACK_AUTH_KEYS": auth_key,
            # Short, so an injected timeout resolves in about a second and a half.
            "VOD_READ_TIMEOUT_MS": "1500", "VOD_CONNECT_TIMEOUT_MS": "1000",
            "VOD_SEARCH_LAG_SECONDS": str(PORTAL_SEARCH_LAG),
            "LOG_LEVEL": "WARNING",
        })
    started.append(portal)
    stack = Stack(workdir=workdir, redis=redis_server, sandbox=sandbox, portal=portal,
                  database_url=database_url, callback_url=callback_url,
                  callback_auth_key=auth_key)
    return stack, started


def stop_all(started: list) -> list[str]:
    """Stop everything started, newest first; returns what could not be stopped cleanly."""
    problems = []
    for thing in reversed(started):
        try:
            thing.stop()
        except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
            problems.append(f"{type(thing).__name__}: {exc}")
            process = getattr(thing, "process", None)
            if process is not None and process.poll() is None:
                process.kill()
    return problems


def drop_database(base_database_url: str) -> None:
    """Drop the suite's database (the next run creates it afresh anyway)."""
    admin_url = base_database_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {DATABASE_NAME} WITH (FORCE)")


def sync_summary(output: str) -> tuple[int, int, int] | None:
    """(checked, changed, failed) from vod_sync's last line, None when it is not there."""
    found = re.search(r"vod_sync: (\d+) checked, (\d+) changed, (\d+) failed", output)
    return tuple(int(n) for n in found.groups()) if found else None


def default_database_url() -> str:
    """$DATABASE_URL when it is PostgreSQL, else the local server the Makefile uses."""
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith("postgres") else "postgres://postgres@127.0.0.1:5432/vodportal"
