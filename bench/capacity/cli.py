"""`make bench-capacity`: the portal's capacity under VOD latency (issue 13).

    ALIBABA_CLOUD_ECS_METADATA_DISABLED=true .venv/bin/python bench/capacity.py \\
        [--duration 20] [--latencies 50,150,300] [--rate 80] [--clients 64,256] \\
        [--overload-rate 240] [--peer-conn-max-age 60] [--parts ...] \\
        [--worker-class gevent|gthread] [--workers N] [--connections N] [--threads N] \\
        [--keep-workdir]

1. Latency sweep: the sandbox answering after 50, 150 and 300 ms; the portal as deployed
   (gunicorn.conf.py's worker and thread counts, settings' VOD_QPS_LIMIT and
   VOD_QPS_MAX_WAIT_MS; only the per-user rate raised), 80 credentials/s offered open loop,
   and wrk at 64 and 256 clients; then open loop again with the limiter set never to bind
   (what the portal itself serves, without the limiter's refusals at exactly VOD's limit).
2. Overload: the sandbox throttling past 80 CreateUploadVideo/s (as VOD does), the portal
   with VOD_QPS_LIMIT=80, 240/s offered open loop; what the sandbox saw, the 429s, and the
   rows and audit events left in the database.
3. The naive peer (bench/peer/) and the portal in turn, at 80/s open loop with VOD +150 ms,
   and at 64 clients with no VOD latency: CPU per credential, rate, latency.
4. Audit appends per second from two processes x 8 threads on one PostgreSQL, with the
   chain sealed by each writer under the lock (as before the sealer) and by the background
   sealer (bench/audit_appends.py).

Needs PostgreSQL (--database-url: its database and <name>_peer are dropped and recreated),
Redis (--redis-url: flushed) and wrk. Exit status 0 when every verdict passes, else 1.
See bench/README.md, "Capacity under VOD latency (issue 13)".
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.capacity.phases import audit_appends, overload, peer_comparison, sweep
from bench.capacity.stack import SandboxControl, Serving, gunicorn_defaults
from bench.issue_throughput import load_average, machine, postgres_version, start_sandbox
from tests.stack import ROOT

PARTS = ("sweep", "overload", "peer", "audit")


def _numbers(text: str) -> list[float]:
    return [float(value) for value in text.split(",") if value]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line (defaults: the issue's figures, about 10 minutes in all)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/vodportal_bench_capacity",
                        help="its database (and <name>_peer) is dropped and recreated")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11",
                        help="a Redis database of its own: the bench flushes it")
    parser.add_argument("--duration", type=float, default=20.0,
                        help="seconds measured per point, after --warmup")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--timeout", type=float, default=30.0,
                        help="client timeout of an open-loop request, seconds")
    parser.add_argument("--rate", type=float, default=80.0,
                        help="credentials/s offered open loop (sweep and peer)")
    parser.add_argument("--latencies", type=_numbers, default=[50.0, 150.0, 300.0],
                        help="sandbox latencies of the sweep, ms, comma-separated")
    parser.add_argument("--clients", type=lambda text: [int(v) for v in _numbers(text)],
                        default=[64, 256], help="wrk clients at each latency of the sweep")
    parser.add_argument("--overload-rate", type=float, default=240.0)
    parser.add_argument("--overload-latency", type=float, default=150.0, help="ms")
    parser.add_argument("--vod-qps", type=int, default=80,
                        help="the sandbox's --qps-limit and the portal's VOD_QPS_LIMIT in "
                             "the overload part")
    parser.add_argument("--peer-latency", type=float, default=150.0, help="ms")
    parser.add_argument("--peer-clients", type=int, default=64)
    parser.add_argument("--peer-conn-max-age", type=int, default=60,
                        help="the peer's CONN_MAX_AGE (0: a new connection per request)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="portal/peer pairs per load in the peer part")
    parser.add_argument("--workers", type=int, default=None,
                        help="gunicorn workers (default: what gunicorn.conf.py says)")
    parser.add_argument("--worker-class", choices=("gevent", "gthread"), default=None,
                        help="the portal's gunicorn worker class (default: gunicorn.conf.py's)")
    parser.add_argument("--connections", type=int, default=None,
                        help="gevent: requests per worker at once (default: gunicorn.conf.py's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="gthread: threads per worker, the portal's and the peer's "
                             "(default: gunicorn.conf.py's)")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep the portals' logs (gunicorn's error and access logs) "
                             "and print where")
    parser.add_argument("--parts", default=",".join(PARTS),
                        help=f"which parts to run, comma-separated ({', '.join(PARTS)})")
    args = parser.parse_args(argv)
    args.db_name = args.database_url.rsplit("/", 1)[1]
    args.parts = [part for part in args.parts.split(",") if part]
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    return args


def describe_machine(args, serving: Serving) -> None:
    """CPU, memory, versions, load, commit and gunicorn settings: what the figures mean."""
    for key, value in machine().items():
        print(f"{key:9} {value}")
    print(f"{'postgres':9} {postgres_version(args.database_url)}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    state = " with uncommitted changes" if dirty else ""
    print(f"{'commit':9} {commit + state if commit else f'{ROOT} is not a git checkout'}; "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}")
    flags = (args.worker_class, args.workers, args.connections, args.threads)
    source = "flags" if any(flags) else "gunicorn.conf.py defaults"
    print(f"{'gunicorn':9} {serving.text} ({source})")
    print(f"{'load':9} {load_average()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the parts asked for; print every table, then the verdicts."""
    args = parse_args(argv)
    if not shutil.which("wrk"):
        print("wrk is needed for the closed-loop points: apt-get install wrk", file=sys.stderr)
        return 2
    # An open loop against a slow server holds one connection per waiting request.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    defaults = gunicorn_defaults()
    serving = Serving(worker_class=args.worker_class or defaults.worker_class,
                      workers=args.workers or defaults.workers,
                      connections=args.connections or defaults.connections,
                      threads=args.threads or defaults.threads)
    describe_machine(args, serving)
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-capacity-"))
    verdicts: list[tuple[str, bool]] = []
    process, endpoint = start_sandbox("--latency-ms", f"{args.latencies[0]:g}")
    sandbox = SandboxControl(endpoint)
    try:
        if "sweep" in args.parts:
            verdicts += sweep(args, workdir, sandbox, endpoint, serving)
        if "overload" in args.parts:
            verdicts += overload(args, workdir, serving)
        if "peer" in args.parts:
            verdicts += peer_comparison(args, workdir, sandbox, endpoint, serving)
        if "audit" in args.parts:
            verdicts += audit_appends(args)
    finally:
        process.terminate()
        process.wait(timeout=30)
        if args.keep_workdir:
            print(f"\nlogs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nverdicts ({time.monotonic() - started:.0f} s; load {load_average()}):")
    for text, passed in verdicts:
        print(f"{'PASS' if passed else 'FAIL'}  {text}")
    return 0 if all(passed for _, passed in verdicts) else 1
