"""gunicorn settings for production-style runs (`make serve`), all overridable from the
environment or the deployment's `.env` (the file Django's settings read, with the same
precedence: a variable set in the environment wins over the file).

The serving model: gevent workers, one per core, each serving many requests at once as
greenlets. A credential's time is mostly spent waiting on VOD (tens to hundreds of
milliseconds) and its CPU is a few milliseconds, so what bounds throughput is how many
requests can wait at once, and how cheaply a worker switches between them. Threads (gthread)
switch through the GIL and the kernel's scheduler at every network round trip (a request
makes about ten: Redis, PostgreSQL, VOD); on a busy 2-core host each handoff waited its turn,
and after a cold start under three times VOD's rate the workers sat at 0.6 of a core each
while requests queued for a second and never caught up (429 p99 0.6 to 1.1 s). Greenlets
switch in the worker itself: the same overload recovered within 1.5 s (429 p99 30 to 36 ms).
bench/README.md, "Capacity under VOD latency", has the figures behind these numbers.
Requests waiting on VOD hold no database connection (the pool, settings.DATABASES), so
PostgreSQL sees at most workers x DATABASE_POOL_SIZE connections per host.
"""

import gc
import glob
import multiprocessing
import os
import shutil
import sys
import tempfile

# gunicorn reads this file by path: from another working directory (the benchmark's peer
# project), the project's own package is importable only once its root is on the path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from vodportal import envfile  # noqa: E402

# Before any GUNICORN_* is read: one configuration source for gunicorn and Django, so what a
# deployer writes in .env (GUNICORN_BIND, GUNICORN_WORKERS, ...) is what gunicorn does.
envfile.load()

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# More processes than cores would only share the same CPU (each worker's greenlets already
# overlap their waits); fewer would leave a core idle under the GIL.
workers = int(os.environ.get("GUNICORN_WORKERS", max(2, multiprocessing.cpu_count())))
# gevent patches the standard library's sockets, locks and sleeps in each worker before the
# application loads; psycopg, redis-py and the VOD SDK then wait through its event loop.
# "gthread" (with GUNICORN_THREADS) is the thread-per-request alternative, kept for
# comparison (bench/capacity.py --worker-class gthread).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gevent")
# Requests one worker serves at once; past it, connections wait in the kernel's queue (where
# QueueTimeMiddleware's REQUEST_MAX_QUEUE_MS sheds the stale ones). At VOD's 80 calls/s, a
# credential takes VOD's latency plus at most VOD_QPS_MAX_WAIT_MS: 28 in flight at 300 ms,
# 84 at 1 s, over all workers. 100 per worker leaves room for VOD at 2 s on two workers;
# more would let an overloaded worker share its CPU among ever more requests, each slower.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", 100))
threads = int(os.environ.get("GUNICORN_THREADS", 32))
# One listening socket per worker (SO_REUSEPORT) lets the kernel spread connections, but a
# stopping worker's queued connections are reset with its socket: off unless asked for.
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "false").lower() == "true"
# VOD's SDK timeouts (connect 3 s + read 10 s by default) must end before the worker's.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 30))
# On SIGTERM, workers finish the requests they hold for up to this long (graceful shutdown).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
# No keep-alive by default: every request comes on a new connection, and the kernel hands
# it to a worker that is calling accept(), so an idle worker takes it before a busy one.
# A kept-alive connection stays with the worker that accepted it: wrk's or a proxy's few
# connections then load one worker while the other idles (open loop at 240/s, gthread: 84 %
# of the requests on one worker and 429 p99 259 ms with keep-alive; 51 % and 79-110 ms
# without, bench/README.md, "Capacity under VOD latency"). A new loopback or LAN connection
# costs less than that imbalance. Behind a proxy, keep-alive to gunicorn buys nothing; clients'
# keep-alive ends at the proxy. GUNICORN_KEEPALIVE=<seconds> turns it back on.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", 0))
# Recycle workers now and then so a slow leak cannot grow without bound. Not often: a
# worker's restart under load costs its boot's CPU, cold caches and, at VOD's QPS limit, the
# limiter's longer hold on its first calls (a latency spike and refusals in
# bench/capacity.py). Each worker's RSS stayed flat (+0.2 %) over 25,000 issuances
# (bench/README.md, the soak): at 80 credentials/s over two workers, one restart per worker
# every ten minutes or so.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", 25000))
max_requests_jitter = max_requests // 10
# Only the proxy in front may tell us the client's scheme and address.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = os.environ.get("GUNICORN_ACCESSLOG", "-")
# The worker pid and our request id on every line; never the Authorization header.
access_log_format = ('%(h)s "%(r)s" %(s)s %(b)s %(M)sms pid=%(p)s '
                     'request_id=%({x-request-id}o)s')
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")


def post_worker_init(worker):
    """Once the application is loaded, move its objects out of the garbage collector's sight.

    Django, DRF and the VOD SDK leave about 130,000 objects that live as long as the worker,
    and every collection of the oldest generation walks them all: profiling put 13 % of a
    credential's CPU in the collector (bench/README.md, "Issuing throughput"). Frozen objects
    are never collected, which changes nothing for objects that live until exit anyway.
    """
    from django.urls import get_resolver

    # Resolving once imports the URLconf: the views, services, the VOD gateway and its SDK.
    get_resolver().resolve("/healthz")
    gc.freeze()


# --- Prometheus metrics across workers (uploads/metrics/, docs/metrics.md) -----------------
# Each worker keeps its counters in memory-mapped files of one directory and a scrape, served
# by any worker, adds them all up (prometheus_client's multiprocess mode). The variable must be
# set before a worker imports prometheus_client: here, in the master, whose environment the
# workers inherit. Unless the deployer names a directory, each master makes its own (two
# gunicorns on one host must not add up each other's counters). A reload (SIGHUP) runs this
# file again and keeps the directory, since the variable is set by then: counters survive it.
_METRICS_DIR_PREFIX = "vodportal-metrics-"


def _metrics_directory():
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=_METRICS_DIR_PREFIX)


_metrics_directory()


def on_starting(server):
    """Start the metrics directory empty: files an earlier run's workers left would add
    their counts to this run's."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for path in glob.glob(os.path.join(directory, "*.db")):  # prometheus_client's files only
        os.remove(path)


def child_exit(server, worker):
    """A worker is gone (stopped, recycled, killed): drop its live gauges
    (vodportal_vod_calls_in_flight). Its counters stay in the sum, as they must."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """Remove the metrics directory this master made for itself, unless a new master it
    started (SIGUSR2, an upgrade in place) goes on using it."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    ours = (os.path.dirname(directory) == tempfile.gettempdir()
            and os.path.basename(directory).startswith(_METRICS_DIR_PREFIX))
    if ours and not getattr(server, "reexec_pid", 0):
        shutil.rmtree(directory, ignore_errors=True)
