"""Issuing throughput: what vodportal adds to the CreateUploadVideo call it wraps.

In one run, on this machine, against vodsandbox with no injected latency:

1. The floor: the bare SDK (alibabacloud-vod20170321) calling CreateUploadVideo in a loop, in
   a process that does nothing else: its CPU time per call (time.process_time: signing,
   HTTP, parsing) and its latency.
2. vodportal as deployed (gunicorn's gevent workers, PostgreSQL, Redis for the throttles and
   the VOD limiter, JSON logs) issuing video credentials (POST /api/v1/videos/) to 1, 8 and 64
   concurrent clients: credentials per second, p50 and p99 latency, and the CPU
   milliseconds per credential of gunicorn's processes (master + workers, utime + stime
   from /proc/<pid>/stat), and that CPU over the floor's. The floor is measured again just
   before and just after each phase (a shared machine's speed drifts by minutes), and each
   phase's ratio is taken against the mean of the two.
3. With --soak N: N more issuances after a warm-up, sampling each worker's RSS
   (/proc/<pid>/status VmRSS) after the warm-up and at the end: growth must stay under 10 %.

Who runs where: the sandbox is its own process (`python -m vodsandbox`), the load comes from
`wrk` (C, epoll; one thread), the floor from a subprocess of this script. None of them is
counted as the portal's CPU, nor are PostgreSQL and Redis (their CPU per credential is
printed apart). All of them share the machine's cores with the portal.

    ALIBABA_CLOUD_ECS_METADATA_DISABLED=true .venv/bin/python bench/issue_throughput.py \\
        [--clients 1,8,64] [--duration 20] [--soak 50000] [--workers 2] \\
        [--worker-class gevent|gthread] [--threads 4]

Needs PostgreSQL (--database-url; the database is dropped and recreated), Redis
(--redis-url; the bench flushes that Redis database) and wrk (`apt-get install wrk`).
See bench/README.md for the figures and what they led to.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

from tests.stack import Portal, fresh_database_url, start_portal  # noqa: E402

ACCESS_KEY_ID = "BenchIssueKeyId0001"
ACCESS_KEY_SECRET = "bench-issue-secret-0b9d7c3e51a2f468"
VIDEO = {"title": "Bench clip", "file_name": "clip.mp4"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

# Targets from the issue.
CPU_RATIO_TARGET = 4.0
THROUGHPUT_TARGET = 300.0  # credentials/s at 64 clients
P99_TARGET_MS = 250.0  # at 64 clients
RSS_GROWTH_TARGET = 10.0  # % per worker after warm-up


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/vodportal_bench_issue",
                        help="bench database server; the database is dropped and recreated")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/8",
                        help="a Redis database of its own: the bench flushes it")
    parser.add_argument("--clients", default="1,8,64",
                        help="concurrent clients, comma-separated")
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds measured per client count (after a warm-up)")
    parser.add_argument("--warmup", type=float, default=4.0,
                        help="seconds of load before each measurement")
    parser.add_argument("--bare-calls", type=int, default=5000,
                        help="CreateUploadVideo calls of the bare SDK loop")
    parser.add_argument("--phase-floor-calls", type=int, default=2000,
                        help="bare SDK calls just before and just after each portal phase: "
                             "their mean is the floor that phase's ratio is taken against "
                             "(0: use the first floor)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", choices=("gevent", "gthread"), default="gevent",
                        help="gunicorn worker class (gevent as deployed)")
    parser.add_argument("--threads", type=int, default=4,
                        help="gunicorn threads per worker (gthread only)")
    parser.add_argument("--users", type=int, default=64,
                        help="API users; requests take their tokens in turn")
    parser.add_argument("--soak", type=int, default=0, metavar="N",
                        help="after the throughput runs, N more issuances watching RSS")
    parser.add_argument("--soak-clients", type=int, default=64)
    parser.add_argument("--soak-warmup", type=int, default=5000,
                        help="issuances before the soak's first RSS sample")
    parser.add_argument("--profile", metavar="SECONDS", type=float, default=0.0,
                        help="also record each worker with py-spy for this long at the "
                             "highest client count (collapsed stacks into --profile-dir)")
    parser.add_argument("--profile-dir", default=str(ROOT / "var" / "profiles"))
    parser.add_argument("--bare-only", metavar="ENDPOINT", help=argparse.SUPPRESS)
    return parser.parse_args()


# --- the machine -------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures were measured on."""
    import django
    import gunicorn
    import psycopg

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    meminfo = Path("/proc/meminfo").read_text()
    mem_kb = int(re.search(r"MemTotal:\s*(\d+)", meminfo).group(1))
    return {
        "cpus": f"{os.cpu_count()} (nproc), {model.group(1).strip() if model else '?'}",
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "gunicorn": gunicorn.__version__,
        "psycopg": psycopg.__version__,
        "wrk": subprocess.run(["wrk", "--version"], capture_output=True,
                              text=True).stdout.splitlines()[0].strip()
        if shutil.which("wrk") else "missing",
    }


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def postgres_version(database_url: str) -> str:
    """The server's `SELECT version()` (asked through its `postgres` database)."""
    import psycopg

    with psycopg.connect(database_url.rsplit("/", 1)[0] + "/postgres") as connection:
        return connection.execute("SELECT version()").fetchone()[0]


# --- processes: CPU and memory from /proc -----------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on


def cpu_seconds(pid: int, *, with_reaped_children: bool = False) -> float:
    """utime + stime of a process (all its threads); optionally + its reaped children's."""
    fields = _stat_fields(pid)
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    if with_reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime (16, 17)
    return ticks / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (scanning /proc: no /proc/<pid>/task/*/children here)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(_stat_fields(int(entry.name))[1]) == pid:  # ppid (field 4)
                found.append(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
    return found


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s*(\d+)", status).group(1)) / 1024


class GunicornCpu:
    """CPU seconds of gunicorn's master and workers (a worker that exited is counted through
    the master's reaped-children times)."""

    def __init__(self, master: int):
        self.master = master

    def workers(self) -> list[int]:
        return sorted(children(self.master))

    def total(self) -> float:
        total = cpu_seconds(self.master, with_reaped_children=True)
        for worker in self.workers():
            try:
                total += cpu_seconds(worker)
            except FileNotFoundError:
                pass  # exited between the listing and the read: counted once reaped
        return total


class ServerCpu:
    """CPU seconds of the PostgreSQL backends serving the bench database and of Redis: not
    the portal's, printed apart."""

    def __init__(self, database_url: str, redis_url: str):
        self.database_url = database_url
        self.redis_url = redis_url
        self._backends: dict[int, float] = {}

    def _backend_pids(self) -> list[int]:
        import psycopg

        name = self.database_url.rsplit("/", 1)[1]
        with psycopg.connect(self.database_url) as connection:
            rows = connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                "pg_backend_pid()", [name]).fetchall()
        return [pid for (pid,) in rows]

    def _redis_seconds(self) -> float:
        import redis

        info = redis.Redis.from_url(self.redis_url).info("cpu")
        return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])

    def snapshot(self) -> tuple[dict[int, float], float]:
        backends = {}
        for pid in self._backend_pids():
            try:
                backends[pid] = cpu_seconds(pid)
            except FileNotFoundError:
                pass
        return backends, self._redis_seconds()

    @staticmethod
    def delta(before, after) -> tuple[float, float]:
        """(PostgreSQL backends, Redis) CPU seconds between two snapshots; a backend born
        in between counts from zero, one gone in between is missed."""
        backends = sum(cpu - before[0].get(pid, 0.0) for pid, cpu in after[0].items())
        return backends, after[1] - before[1]


# --- the floor: the bare SDK --------------------------------------------------------------


def bare_sdk_loop(endpoint: str, calls: int) -> dict:
    """CreateUploadVideo in a loop with the SDK alone (runs in its own process)."""
    from alibabacloud_tea_openapi.utils_models import Config
    from alibabacloud_vod20170321 import models
    from alibabacloud_vod20170321.client import Client
    from darabonba.runtime import RuntimeOptions

    # The portal's own settings: V3 signature, its timeouts, no SDK retries.
    client = Client(Config(access_key_id=ACCESS_KEY_ID, access_key_secret=ACCESS_KEY_SECRET,
                           endpoint=endpoint, protocol="http", region_id="cn-shanghai",
                           connect_timeout=3000, read_timeout=10000))
    runtime = RuntimeOptions(autoretry=False, max_attempts=1)

    def call():
        request = models.CreateUploadVideoRequest(
            title=VIDEO["title"], file_name=VIDEO["file_name"], reference_id=uuid.uuid4().hex)
        body = client.create_upload_video_with_options(request, runtime).body
        assert body.video_id and body.upload_auth

    for _ in range(min(500, calls)):
        call()  # warm: connection pool, imports, caches
    latencies = []
    cpu_started, wall_started = time.process_time(), time.perf_counter()
    for _ in range(calls):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu_started
    wall = time.perf_counter() - wall_started
    latencies.sort()
    return {"calls": calls, "per_second": calls / wall, "cpu_ms": cpu / calls * 1000,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000}


def run_bare_sdk(endpoint: str, calls: int) -> dict:
    completed = subprocess.run([sys.executable, __file__, "--bare-only", endpoint,
                                "--bare-calls", str(calls)], capture_output=True, text=True,
                               check=True, timeout=600)
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- the load: wrk ------------------------------------------------------------------------

WRK_SCRIPT = """
-- POST /api/v1/videos/ with the users' tokens in turn; counts the answers' statuses.
local tokens = {%(tokens)s}
local body = '%(body)s'
local sent = 0
statuses = {}

request = function()
  sent = sent + 1
  return wrk.format("POST", "/api/v1/videos/", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Token " .. tokens[(sent %% #tokens) + 1],
  }, body)
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

local threads = {}
setup = function(thread) table.insert(threads, thread) end

done = function(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[tostring(status)] = (counts[tostring(status)] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    table.insert(parts, string.format('"%%s": %%d', status, count))
  end
  io.write(string.format(
    'RESULT {"duration_us": %%d, "requests": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "errors": %%d, "statuses": {%%s}}\\n',
    summary.duration, summary.requests, latency:percentile(50), latency:percentile(99),
    latency.max, summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout, table.concat(parts, ", ")))
end
"""


@dataclass
class WrkResult:
    seconds: float
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int

    @property
    def created(self) -> int:
        return self.statuses.get(201, 0)


def write_wrk_script(directory: Path, tokens: list[str]) -> Path:
    path = directory / "post.lua"
    path.write_text(WRK_SCRIPT % {"tokens": ", ".join(f'"{token}"' for token in tokens),
                                  "body": json.dumps(VIDEO)})
    return path


def phase_floor(args, endpoint: str, bare: dict) -> float:
    """The bare SDK call's CPU ms now (--phase-floor-calls calls), or the first floor."""
    if not args.phase_floor_calls:
        return bare["cpu_ms"]
    return run_bare_sdk(endpoint, args.phase_floor_calls)["cpu_ms"]


def run_wrk(url: str, script: Path, clients: int, seconds: float,
            until: Callable[[], bool] | None = None) -> WrkResult:
    """wrk with one thread (it is C: one core serves thousands of requests per second), for
    `seconds`, or until `until()` says so (wrk ends early, with its summary, on SIGINT)."""
    process = subprocess.Popen(
        ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
         "-s", str(script), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if until is not None:
        while process.poll() is None and not until():
            time.sleep(0.5)
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=seconds + 600)
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stderr[-2000:]}")
    line = next(line for line in stdout.splitlines() if line.startswith("RESULT "))
    data = json.loads(line[len("RESULT "):])
    return WrkResult(seconds=data["duration_us"] / 1e6,
                     statuses={int(status): count for status, count in data["statuses"].items()},
                     p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000,
                     max_ms=data["max_us"] / 1000, socket_errors=data["errors"])


def idle_request_cpu_ms(portal: Portal, gunicorn_cpu: GunicornCpu, seconds: float) -> float:
    """The portal's CPU ms per `GET /healthz` at 1 client: what gunicorn and Django's
    middleware cost a request that does no work, the part of every credential's CPU that
    no change to the issuing path can remove."""
    subprocess.run(["wrk", "-t1", "-c1", "-d2s", f"{portal.url}/healthz"], check=True,
                   capture_output=True)  # warm
    cpu_before = gunicorn_cpu.total()
    completed = subprocess.run(["wrk", "-t1", "-c1", f"-d{max(1, round(seconds))}s",
                                f"{portal.url}/healthz"], check=True, capture_output=True,
                               text=True)
    time.sleep(0.5)
    requests = int(re.search(r"(\d+) requests in", completed.stdout).group(1))
    return (gunicorn_cpu.total() - cpu_before) / requests * 1000


# --- the portal -----------------------------------------------------------------------------


@dataclass
class Phase:
    label: str
    clients: int
    wrk: WrkResult
    issued: int  # rows completed in the database during the phase
    cpu_seconds: float  # gunicorn master + workers
    pg_seconds: float
    redis_seconds: float
    sandbox_seconds: float
    wrk_seconds: float
    load: str
    # The bare SDK call's CPU ms, measured just before and just after this phase.
    floors: tuple[float, float] = (0.0, 0.0)

    @property
    def floor_cpu_ms(self) -> float:
        """The machine's speed drifts within a phase too: the mean of the two floors."""
        return sum(self.floors) / 2

    @property
    def ratio(self) -> float:
        """The portal's CPU per credential over the bare SDK call's."""
        return self.cpu_ms / self.floor_cpu_ms

    def per_credential(self, seconds: float) -> float:
        return seconds / self.issued * 1000

    @property
    def total_cpu_ms(self) -> float:
        """Every process of the run, per credential: what one credential costs the machine."""
        return self.per_credential(self.cpu_seconds + self.pg_seconds + self.redis_seconds
                                   + self.sandbox_seconds + self.wrk_seconds)

    @property
    def per_second(self) -> float:
        return self.wrk.created / self.wrk.seconds

    @property
    def cpu_ms(self) -> float:
        return self.cpu_seconds / self.issued * 1000

    @property
    def non_201(self) -> dict[int, int]:
        return {status: count for status, count in self.wrk.statuses.items() if status != 201}


def issued_count(database_url: str) -> int:
    import psycopg

    with psycopg.connect(database_url) as connection:
        return connection.execute("SELECT count(*) FROM uploads_videoupload "
                                  "WHERE status = 'uploading'").fetchone()[0]


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(portal: Portal, gunicorn_cpu: GunicornCpu, servers: ServerCpu, sandbox_pid: int,
            script: Path, clients: int, seconds: float, label: str) -> Phase:
    """One wrk run; CPU and completed rows counted from before it to after its last
    in-flight requests drained."""
    issued_before, cpu_before, servers_before = (
        issued_count(portal.env["DATABASE_URL"]), gunicorn_cpu.total(), servers.snapshot())
    sandbox_before, wrk_before = cpu_seconds(sandbox_pid), children_cpu()
    load = load_average()
    result = run_wrk(portal.url, script, clients, seconds)
    wrk_after = children_cpu()
    time.sleep(1.0)  # requests wrk abandoned at its deadline finish (and are counted)
    cpu_after, servers_after = gunicorn_cpu.total(), servers.snapshot()
    issued = issued_count(portal.env["DATABASE_URL"]) - issued_before
    pg, redis_cpu = ServerCpu.delta(servers_before, servers_after)
    return Phase(label=label, clients=clients, wrk=result, issued=issued,
                 cpu_seconds=cpu_after - cpu_before, pg_seconds=pg, redis_seconds=redis_cpu,
                 sandbox_seconds=cpu_seconds(sandbox_pid) - sandbox_before,
                 wrk_seconds=wrk_after - wrk_before, load=load)


def start_sandbox(*options: str) -> tuple[subprocess.Popen, str]:
    """`python -m vodsandbox` on a free port with the bench's keys and `options` (e.g.
    "--latency-ms", "150"); returns the process and its endpoint (host:port). Without a
    `--qps-limit` among the options the sandbox applies none (the benches measure the
    portal; the overload phase sets VOD's)."""
    limits = () if "--qps-limit" in options else ("--no-qps-limits",)
    process = subprocess.Popen(
        [sys.executable, "-m", "vodsandbox", "--port", "0", "--access-key-id", ACCESS_KEY_ID,
         "--access-key-secret", ACCESS_KEY_SECRET, *limits, *options], cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    match = re.search(r"listening on http://(\S+)", line)
    if not match:
        process.kill()
        raise RuntimeError(f"vodsandbox did not start: {line}")
    # Drain its output so a full pipe never blocks it.
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process, match.group(1)


def start(args, workdir: Path, sandbox_endpoint: str) -> Portal:
    import redis

    redis.Redis.from_url(args.redis_url).flushdb()
    users = [f"bench{index:03d}" for index in range(args.users)]
    return start_portal(
        sandbox_endpoint=sandbox_endpoint, access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        database_url=fresh_database_url(args.database_url, args.database_url.rsplit("/", 1)[1],
                                        workdir),
        workdir=workdir, users=users,
        extra_env={
            "REDIS_URL": args.redis_url,
            # Both limits are exercised (a Redis round trip each) but never bind: the bench
            # measures the portal, not the account's VOD QPS limit or a user's rate.
            "VOD_QPS_LIMIT": "1000000", "API_CREDENTIAL_RATE": "100000000/minute",
            "GUNICORN_WORKER_CLASS": args.worker_class,
            "GUNICORN_WORKERS": str(args.workers), "GUNICORN_THREADS": str(args.threads),
            # No worker recycling: its CPU would leave the count, and the soak would measure
            # nothing (gunicorn recycles after 10,000 requests by default).
            "GUNICORN_MAX_REQUESTS": "0",
            "GUNICORN_TIMEOUT": "60",
            # As deployed: INFO, JSON lines (stderr goes to a file), an access log line each.
            "LOG_LEVEL": "INFO", "LOG_FORMAT": "json",
        })


# --- profiling -------------------------------------------------------------------------------


def profile_workers(workers: list[int], seconds: float,
                    directory: Path) -> tuple[list[Path], list[subprocess.Popen]]:
    """py-spy record of each worker while the load runs (collapsed stacks)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    directory.mkdir(parents=True, exist_ok=True)
    outputs, processes = [], []
    for worker in workers:
        output = directory / f"worker-{worker}.txt"
        outputs.append(output)
        processes.append(subprocess.Popen(
            # --gil: only the thread holding the GIL is sampled, so samples are CPU work,
            # not threads waiting on PostgreSQL, Redis or VOD.
            [spy, "record", "--pid", str(worker), "--duration", str(int(seconds)), "--gil",
             "--rate", "250", "--format", "raw", "--nonblocking", "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return outputs, processes


def summarize_profile(paths: list[Path], top: int = 25) -> str:
    """Where the workers' busy samples went: self time by function, and time under a few
    subsystems (inclusive)."""
    own: dict[str, int] = {}
    under: dict[str, int] = {}
    total = 0
    # Function frames, matched from the start of the frame ("name (file:line)"), so that
    # "_complete" does not also count "_send_and_complete".
    functions = {
        "Django (WSGIHandler.__call__)": "WSGIHandler.__call__ (",
        "DRF view (APIView.dispatch)": "APIView.dispatch (",
        "issuing service (video_issue)": "video_issue (uploads/services/issuing.py",
        "SDK call (create_upload_video_with_options)":
            "Client.create_upload_video_with_options (",
        "VOD limiter (Redis)": "vod_call_slot (",
        "_complete: row UPDATE + audit, one transaction": "_complete (uploads/services",
        "audit.record": "record (uploads/audit.py",
        "token authentication (knox)": "TokenAuthentication.authenticate (",
        "per-user throttle (Redis)": "_UserMovingWindowThrottle.allow_request (",
        "request validation (is_valid)": "BaseSerializer.is_valid (",
        "response (issued_response)": "UploadViewSet.issued_response (",
    }
    # Whole libraries, matched anywhere in the frame.
    libraries = {
        "Django ORM: building SQL (as_sql)": ".as_sql (django/db/models/sql/compiler.py",
        "psycopg execute": "Cursor.execute (psycopg/cursor.py",
        "garbage collector (gc)": "(garbage collection)",
        "logging": "logging/__init__.py",
    }
    for path in paths:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack:
                continue
            frames = stack.split(";")
            if any(idle in frames[-1] for idle in ("select (", "wait (", "accept (", "poll (",
                                                   "_recv_into", "recv_into (", "sleep (")):
                continue  # waiting, not working
            samples = int(count)
            total += samples
            own[frames[-1]] = own.get(frames[-1], 0) + samples
            for name, marker in functions.items():
                if any(frame.startswith(marker) for frame in frames):
                    under[name] = under.get(name, 0) + samples
            for name, marker in libraries.items():
                if any(marker in frame for frame in frames):
                    under[name] = under.get(name, 0) + samples
            if not any("WSGIHandler.__call__" in frame for frame in frames):
                under["gunicorn outside Django"] = under.get("gunicorn outside Django", 0) + samples
    if not total:
        return "no busy samples"
    lines = [f"busy samples: {total}", "inclusive:"]
    for name, samples in sorted(under.items(), key=lambda item: -item[1]):
        lines.append(f"  {samples / total * 100:5.1f}%  {name}")
    lines.append("self (top functions):")
    for frame, samples in sorted(own.items(), key=lambda item: -item[1])[:top]:
        lines.append(f"  {samples / total * 100:5.1f}%  {frame}")
    return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------


def print_table(bare: dict, phases: list[Phase]) -> None:
    print()
    header = (f"{'':20} {'creds/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'CPU ms/cred':>11} "
              f"{'floor':>6} {'x bare':>6} | {'PG':>5} {'Redis':>5} {'VOD sb':>6} {'wrk':>5} "
              f"{'all':>5} {'ceiling/s':>9}")
    print(header)
    print("-" * len(header))
    print(f"{'bare SDK, 1 loop':20} {bare['per_second']:7.0f} {bare['p50_ms']:7.2f} "
          f"{bare['p99_ms']:7.2f} {bare['cpu_ms']:11.3f} {bare['cpu_ms']:6.3f} {1:6.2f} |")
    cpus = os.cpu_count()
    for phase in phases:
        print(f"{phase.label:20} {phase.per_second:7.0f} {phase.wrk.p50_ms:7.1f} "
              f"{phase.wrk.p99_ms:7.1f} {phase.cpu_ms:11.3f} {phase.floor_cpu_ms:6.3f} "
              f"{phase.ratio:6.2f} | "
              f"{phase.per_credential(phase.pg_seconds):5.2f} "
              f"{phase.per_credential(phase.redis_seconds):5.2f} "
              f"{phase.per_credential(phase.sandbox_seconds):6.2f} "
              f"{phase.per_credential(phase.wrk_seconds):5.2f} {phase.total_cpu_ms:5.2f} "
              f"{cpus / phase.total_cpu_ms * 1000:9.0f}")
    print("\nfloor: the bare SDK call's CPU ms, the mean of loops just before and just after "
          "the phase (this machine's speed drifts); x bare: the portal's CPU per credential "
          "over that floor")
    print("CPU ms per credential of: the portal (gunicorn master + workers); | PostgreSQL "
          "backends, Redis, the VOD sandbox, wrk, all of them; ceiling: what this machine's "
          f"{cpus} CPUs could issue per second at that total")
    for phase in phases:
        problems = []
        if phase.non_201:
            problems.append(f"non-201 {phase.non_201}")
        if phase.wrk.socket_errors:
            problems.append(f"socket errors {phase.wrk.socket_errors}")
        print(f"{phase.label}: {phase.wrk.created} created in {phase.wrk.seconds:.1f} s, "
              f"{phase.issued} rows completed, portal CPU {phase.cpu_seconds:.2f} s, "
              f"floor before/after {phase.floors[0]:.3f}/{phase.floors[1]:.3f} ms, "
              f"load average before: {phase.load}{'; ' + '; '.join(problems) if problems else ''}")


def verdicts(bare: dict, phases: list[Phase]) -> list[tuple[str, bool]]:
    results = []
    worst_ratio = max(phase.ratio for phase in phases)
    results.append((f"portal CPU per credential <= {CPU_RATIO_TARGET:g}x the bare SDK call's "
                    f"(worst {worst_ratio:.2f}x)", worst_ratio <= CPU_RATIO_TARGET))
    top = max(phases, key=lambda phase: phase.clients)
    if top.clients >= 64:
        results.append((f"{THROUGHPUT_TARGET:g}+ credentials/s at {top.clients} clients "
                        f"({top.per_second:.0f})", top.per_second >= THROUGHPUT_TARGET))
        results.append((f"p99 < {P99_TARGET_MS:g} ms at {top.clients} clients "
                        f"({top.wrk.p99_ms:.1f})", top.wrk.p99_ms < P99_TARGET_MS))
    results.append(("every answer a 201", all(not phase.non_201 and not phase.wrk.socket_errors
                                               for phase in phases)))
    return results


def soak(args, portal: Portal, gunicorn_cpu: GunicornCpu, workdir: Path, tokens: list[str]
         ) -> tuple[str, bool]:
    """--soak N issuances after a warm-up; each worker's RSS after the warm-up and at the end."""
    database_url = portal.env["DATABASE_URL"]
    workers = gunicorn_cpu.workers()
    script = write_wrk_script(workdir, tokens)
    warm_from = issued_count(database_url)
    run_wrk(portal.url, script, args.soak_clients, 3600,
            until=lambda: issued_count(database_url) - warm_from >= args.soak_warmup)
    time.sleep(1.0)
    start_rss = {worker: rss_mib(worker) for worker in workers}
    start_issued = issued_count(database_url)
    print(f"\nsoak: {args.soak} issuances at {args.soak_clients} clients after "
          f"{args.soak_warmup} warm-up ones; RSS after warm-up: "
          + ", ".join(f"{worker}: {rss:.1f} MiB" for worker, rss in start_rss.items()))
    samples: list[tuple[float, dict[int, float], int]] = []
    stop = threading.Event()

    def sample():
        started = time.monotonic()
        while not stop.wait(10):
            samples.append((time.monotonic() - started,
                            {worker: rss_mib(worker) for worker in workers},
                            issued_count(database_url) - start_issued))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    result = run_wrk(portal.url, script, args.soak_clients, 7200,
                     until=lambda: issued_count(database_url) - start_issued >= args.soak)
    elapsed = time.monotonic() - started
    stop.set()
    sampler.join()
    time.sleep(1.0)
    assert gunicorn_cpu.workers() == workers, "a worker was replaced during the soak"
    end_rss = {worker: rss_mib(worker) for worker in workers}
    issued = issued_count(database_url) - start_issued
    for seconds, rss, count in samples[:: max(1, len(samples) // 12)]:
        print(f"  {seconds:6.0f} s  {count:6d} issued  "
              + "  ".join(f"{rss[worker]:7.1f}" for worker in workers) + "  MiB")
    growth = {worker: (end_rss[worker] - start_rss[worker]) / start_rss[worker] * 100
              for worker in workers}
    print(f"  end: {issued} issued in {elapsed:.0f} s ({issued / elapsed:.0f}/s), "
          f"answers {result.statuses}; RSS " + ", ".join(
              f"{worker}: {start_rss[worker]:.1f} -> {end_rss[worker]:.1f} MiB "
              f"({growth[worker]:+.1f} %)" for worker in workers))
    worst = max(growth.values())
    return (f"RSS growth per worker over {issued} issuances < {RSS_GROWTH_TARGET:g} % "
            f"(worst {worst:+.1f} %)", worst < RSS_GROWTH_TARGET)


def main() -> int:
    args = parse_args()
    if args.bare_only:
        print(json.dumps(bare_sdk_loop(args.bare_only, args.bare_calls)))
        return 0
    if not shutil.which("wrk"):
        print("wrk is needed for the load: apt-get install wrk", file=sys.stderr)
        return 2
    clients = [int(value) for value in args.clients.split(",")]
    print("machine: " + "; ".join(f"{key} {value}" for key, value in machine().items()))
    print("PostgreSQL:", postgres_version(args.database_url))
    each = f" x {args.threads} threads" if args.worker_class == "gthread" else ""
    print(f"gunicorn: {args.workers} {args.worker_class} workers{each}; "
          f"load average {load_average()}")

    sandbox, endpoint = start_sandbox()
    workdir = Path(tempfile.mkdtemp(prefix="bench-issue-"))
    portal = None
    try:
        bare = run_bare_sdk(endpoint, args.bare_calls)
        print(f"bare SDK: {bare['calls']} calls, {bare['cpu_ms']:.3f} ms CPU per call")
        portal = start(args, workdir, endpoint)
        gunicorn_cpu = GunicornCpu(portal.process.pid)
        servers = ServerCpu(portal.env["DATABASE_URL"], args.redis_url)
        tokens = list(portal.tokens.values())
        script = write_wrk_script(workdir, tokens)
        phases, profiles = [], []
        for count in clients:
            run_wrk(portal.url, script, count, args.warmup)
            recorders = []
            if args.profile and count == max(clients):
                profiles, recorders = profile_workers(gunicorn_cpu.workers(), args.profile,
                                                      Path(args.profile_dir))
            floor_before = phase_floor(args, endpoint, bare)
            phase = measure(portal, gunicorn_cpu, servers, sandbox.pid, script, count,
                            args.duration, f"portal, {count} client{'s' if count > 1 else ''}")
            phase.floors = (floor_before, phase_floor(args, endpoint, bare))
            phases.append(phase)
            for recorder in recorders:
                recorder.wait(timeout=120)
        idle_ms = idle_request_cpu_ms(portal, gunicorn_cpu, args.duration / 2)
        print_table(bare, phases)
        print(f"a request that does no work (GET /healthz, 1 client): {idle_ms:.3f} ms of the "
              f"portal's CPU, {idle_ms / bare['cpu_ms']:.2f}x the first floor")
        if profiles:
            print(f"\nprofile of the workers at {max(clients)} clients (py-spy, while "
                  "measured: the CPU figures above include its sampling):")
            print(summarize_profile(profiles))
        results = verdicts(bare, phases)
        if args.soak:
            results.append(soak(args, portal, gunicorn_cpu, workdir, tokens))
        print()
        for text, ok in results:
            print(f"{'PASS' if ok else 'FAIL'}  {text}")
        return 0 if all(ok for _, ok in results) else 1
    finally:
        if portal is not None:
            portal.stop()
        sandbox.terminate()
        sandbox.wait(timeout=30)
        # The access log alone grows by ~100 bytes a credential: 7 MB for a soak.
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
