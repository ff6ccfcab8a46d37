"""What the capacity bench runs against: the portal as deployed, the naive peer, the sandbox.

The portal starts through tests/stack.py (start_portal); the peer (bench/peer/) through the
same gunicorn.conf.py with the same worker and thread counts; the sandbox through
bench/issue_throughput.py (start_sandbox) and is steered over its /_sandbox/ endpoints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import requests

from bench.issue_throughput import ACCESS_KEY_ID, ACCESS_KEY_SECRET, GunicornCpu
from tests.stack import ROOT, fresh_database_url, free_port, start_portal

PEER_DIR = ROOT / "bench" / "peer"
CREDENTIAL_PATH = "/api/v1/videos/"  # the portal's, and the peer's too
USER_COUNT = 64
# The per-user credential rate, raised so it never binds: 64 users sharing 300/s is about
# 280 a minute each.
UNBOUND_USER_RATE = "100000000/minute"


@dataclass(frozen=True)
class Serving:
    """How gunicorn serves: its worker class, workers, and each worker's concurrency (gevent:
    worker_connections; gthread: threads)."""

    worker_class: str
    workers: int
    connections: int
    threads: int

    @property
    def text(self) -> str:
        """'2 gevent workers x 100 connections' or '2 gthread workers x 32 threads'."""
        each = (f"{self.threads} threads" if self.worker_class == "gthread"
                else f"{self.connections} connections")
        return f"{self.workers} {self.worker_class} workers x {each}"

    @property
    def env(self) -> dict[str, str]:
        """The GUNICORN_* variables that make gunicorn.conf.py serve this way."""
        return {"GUNICORN_WORKER_CLASS": self.worker_class,
                "GUNICORN_WORKERS": str(self.workers),
                "GUNICORN_WORKER_CONNECTIONS": str(self.connections),
                "GUNICORN_THREADS": str(self.threads)}


def gunicorn_defaults() -> Serving:
    """What gunicorn.conf.py computes when no GUNICORN_* variable is set: what a default
    deployment on this machine runs."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GUNICORN_")}
    code = ("import json, runpy; conf = runpy.run_path('gunicorn.conf.py'); "
            "print(json.dumps([conf[name] for name in ('worker_class', 'workers', "
            "'worker_connections', 'threads')]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    worker_class, workers, connections, threads = json.loads(out)
    return Serving(worker_class, int(workers), int(connections), int(threads))


@dataclass
class Target:
    """A running gunicorn serving POST /api/v1/videos/ (the portal or the peer)."""

    name: str
    url: str
    process: subprocess.Popen
    tokens: list[str]
    access_log: Path
    database_url: str
    stop: Callable[[], object]

    @property
    def cpu(self) -> GunicornCpu:
        """CPU seconds of its master and workers."""
        return GunicornCpu(self.process.pid)


def start_portal_target(name: str, *, database_url: str, workdir: Path, sandbox: str,
                        redis_url: str, serving: Serving,
                        extra_env: dict[str, str] | None = None) -> Target:
    """The portal on a fresh database `name` with USER_COUNT users; gunicorn.conf.py as is
    except for how it serves (`serving`: start_portal would otherwise pin its own), the
    per-user rate unbound, and INFO JSON logs (settings' defaults: start_portal turns them
    down)."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    portal_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
    with _stderr_into(portal_dir / "migrate.log"):
        portal = start_portal(
            sandbox_endpoint=sandbox, access_key_id=ACCESS_KEY_ID,
            access_key_secret=ACCESS_KEY_SECRET,
            database_url=fresh_database_url(database_url, name, portal_dir),
            workdir=portal_dir, users=[f"bench{index:03d}" for index in range(USER_COUNT)],
            extra_env={"REDIS_URL": redis_url, "API_CREDENTIAL_RATE": UNBOUND_USER_RATE,
                       **serving.env,
                       "LOG_LEVEL": "INFO", "LOG_FORMAT": "json", **(extra_env or {})})
    return Target(name="portal", url=portal.url, process=portal.process,
                  tokens=list(portal.tokens.values()), access_log=portal.access_log,
                  database_url=portal.env["DATABASE_URL"], stop=portal.stop)


@contextmanager
def _stderr_into(path: Path) -> Iterator[None]:
    """Send this process's stderr (so its children's: migrate's system-check warning that
    VOD_SANDBOX is on with DEBUG off, expected here) to `path`; replay it if starting fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with path.open("w") as sink:
            os.dup2(sink.fileno(), 2)
            try:
                yield
            except BaseException:
                os.dup2(saved, 2)
                print(path.read_text()[-3000:], file=sys.stderr)
                raise
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def start_peer(name: str, *, database_url: str, workdir: Path, sandbox: str, serving: Serving,
               conn_max_age: int) -> Target:
    """The naive peer (bench/peer/) on a fresh database `name`: migrate, USER_COUNT users
    with DRF tokens, then gunicorn with the portal's gunicorn.conf.py, serving as asked."""
    peer_dir = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
    access_log = peer_dir / "access.log"
    env = {**{key: value for key, value in os.environ.items()
              if not key.startswith(("DJANGO_", "GUNICORN_", "VOD_", "DATABASE_"))},
           "DJANGO_SETTINGS_MODULE": "peerproject.settings",
           "DATABASE_URL": fresh_database_url(database_url, name, peer_dir),
           "DATABASE_CONN_MAX_AGE": str(conn_max_age),
           "VOD_ENDPOINT": sandbox, "VOD_ACCESS_KEY_ID": ACCESS_KEY_ID,
           "VOD_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
           "GUNICORN_BIND": f"127.0.0.1:{free_port()}", **serving.env,
           "GUNICORN_ACCESSLOG": str(access_log)}
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=PEER_DIR, env=env,
                   check=True, timeout=180)
    code = ("import json; from django.contrib.auth.models import User; "
            "from rest_framework.authtoken.models import Token; "
            f"print(json.dumps([Token.objects.create(user=User.objects.create("
            f"username=f'peer{{i:03d}}')).key for i in range({USER_COUNT})]))")
    tokens = json.loads(subprocess.run([*manage, "shell", "-v", "0", "-c", code], cwd=PEER_DIR,
                                       env=env, check=True, capture_output=True, text=True,
                                       timeout=60).stdout)
    error_log = peer_dir / "gunicorn.log"
    # cwd = bench/peer: gunicorn puts its working directory on sys.path (peerproject, videos).
    process = subprocess.Popen([str(Path(sys.executable).parent / "gunicorn"),
                                "peerproject.wsgi:application", "-c",
                                str(ROOT / "gunicorn.conf.py")], cwd=PEER_DIR, env=env,
                               stdout=subprocess.DEVNULL, stderr=error_log.open("w"))
    url = f"http://{env['GUNICORN_BIND']}"
    deadline = time.monotonic() + 30
    while not _answers(f"{url}/healthz"):
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise RuntimeError(f"the peer did not start: {error_log.read_text()[-2000:]}")
        time.sleep(0.2)

    def stop() -> None:
        process.terminate()
        process.wait(timeout=30)

    return Target(name="peer", url=url, process=process, tokens=tokens,
                  access_log=access_log, database_url=env["DATABASE_URL"], stop=stop)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except (requests.ConnectionError, requests.Timeout):
        return False  # still starting


class SandboxControl:
    """The sandbox's /_sandbox/ control endpoints (vodsandbox/control.py)."""

    def __init__(self, endpoint: str):
        self.base = f"http://{endpoint}/_sandbox"

    def configure(self, **fields) -> dict:
        """Change tunable fields (latency in seconds, qps_limit, ...) of the running sandbox."""
        response = requests.post(f"{self.base}/config", json=fields, timeout=10)
        response.raise_for_status()
        return response.json()["config"]

    def arrivals(self, action: str) -> list[list]:
        """[epoch seconds, status, code] of every call of `action` received, oldest first."""
        response = requests.get(f"{self.base}/arrivals", timeout=60)
        response.raise_for_status()
        return response.json()["arrivals"].get(action, [])


_ACCESS_LINE = re.compile(r'"POST (\S+) HTTP/[\d.]+" (\d{3}) .* pid=<?(\d+)>?')


class AccessLog:
    """The lines gunicorn appends to its access log (format in gunicorn.conf.py, with
    pid=<worker pid>) from a mark on: which worker served how many credential requests."""

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.mark()

    def mark(self) -> None:
        """Count from the end of the log as it is now."""
        self.offset = self.path.stat().st_size if self.path.exists() else 0

    def by_worker(self) -> Counter:
        """Credential requests (POST /api/v1/videos/) per worker pid since the mark."""
        with self.path.open("rb") as log:
            log.seek(self.offset)
            text = log.read().decode("utf-8", "replace")
        counts: Counter = Counter()
        for match in _ACCESS_LINE.finditer(text):
            if match.group(1) == CREDENTIAL_PATH:
                counts[int(match.group(3))] += 1
        return counts


def spread_text(counts: Counter, workers: list[int]) -> str:
    """'n workers: a/b/c/...' with every live worker (0 for one that got nothing) and any
    worker that served but has gone since (recycled), largest first, and the largest share."""
    for worker in workers:
        counts.setdefault(worker, 0)
    total = sum(counts.values())
    if not total:
        return "no requests logged"
    ordered = sorted(counts.values(), reverse=True)
    return (f"{len(counts)} workers: {'/'.join(str(count) for count in ordered)} "
            f"(max share {ordered[0] / total * 100:.0f} %, ideal {100 / len(counts):.0f} %)")
