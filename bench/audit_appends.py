"""Audit appends per second (issue 13, item 4): `audit.record` straight from worker
processes, with the chain sealed inline (the writer takes the chain's lock, as every append
did before the sealer) and by the background sealer (the writer only inserts).

For each mode and each PROCESSESxTHREADS: every thread calls `audit.record` in a loop for
--seconds; appends/s is what they wrote in that time. With the background sealer, its lag is
measured too: the time from `record()` (the event's created_at) to the UPDATE that sealed it,
taken by a bench-only AFTER UPDATE trigger that notes clock_timestamp() in a side table
(that trigger costs the sealer a little). The processes then exit (a clean exit seals what is
left) and `audit_verify` must pass over everything written.

    ALIBABA_CLOUD_ECS_METADATA_DISABLED=true .venv/bin/python bench/audit_appends.py \\
        [--database-url postgres://postgres@127.0.0.1:5432/vodportal_audit_bench] \\
        [--configs 1x1,2x4,2x8] [--seconds 10]

The database is dropped and recreated. See bench/README.md, "Audit appends".
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LAG_TABLE = """
CREATE TABLE bench_sealed (id bigint PRIMARY KEY, sealed_at timestamptz NOT NULL);
CREATE FUNCTION bench_note_sealed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO bench_sealed VALUES (NEW.id, clock_timestamp());
  RETURN NEW;
END $$;
CREATE TRIGGER bench_note_sealed AFTER UPDATE ON uploads_auditevent FOR EACH ROW
  WHEN (OLD.sequence IS NULL AND NEW.sequence IS NOT NULL)
  EXECUTE FUNCTION bench_note_sealed();
"""


def environment(database_url: str, inline: bool, pool_size: str = "") -> dict[str, str]:
    """The portal's production settings, pointed at the bench database."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "vodportal.settings",
            "DJANGO_SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789",
            "DJANGO_DEBUG": "false", "AUDIT_KEY": "bench-audit-key-5b7e2d9c41a8f0e3",
            "AUDIT_CHECKPOINT_DIR": "/tmp/vodportal-bench-audit-checkpoints",
            "DATABASE_URL": database_url, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "AUDIT_SEAL_INLINE": "true" if inline else "false", "LOG_LEVEL": "WARNING",
            **({"DATABASE_POOL_SIZE": pool_size} if pool_size else {})}


def worker(root: str, env: dict[str, str], threads: int, seconds: float, ready, start,
           results) -> None:
    """One process: `threads` threads appending until the window closes."""
    sys.path.insert(0, root)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import close_old_connections, connection

    from uploads import audit

    counts = [0] * threads
    ready.put(os.getpid())
    start.wait()
    stop = time.monotonic() + seconds

    def loop(index: int) -> None:
        context = audit.RequestContext.system("bench")
        while time.monotonic() < stop:
            audit.record("upload.synced", context=context, data={"thread": index})
            # What the end of a request does: the connection goes back to the pool
            # (DATABASE_POOL_SIZE per process), where the sealer thread can get it too.
            close_old_connections()
            counts[index] += 1
        connection.close()

    pool = [threading.Thread(target=loop, args=(index,)) for index in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put(sum(counts))


def run(root: str, env: dict[str, str], processes: int, threads: int, seconds: float) -> int:
    """Appends written by `processes` x `threads` in `seconds`, with the code in `root`."""
    context = multiprocessing.get_context("spawn")
    ready, start, results = context.Queue(), context.Event(), context.Queue()
    pool = [context.Process(target=worker, args=(root, env, threads, seconds, ready, start,
                                                    results))
            for _ in range(processes)]
    for process in pool:
        process.start()
    for _ in pool:  # the window opens once every process has set Django up
        ready.get(timeout=120)
    start.set()
    total = sum(results.get(timeout=seconds + 120) for _ in pool)
    for process in pool:
        process.join(timeout=120)
    return total


def query(database_url: str, sql: str, *params):
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        cursor = connection.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def machine(database_url: str) -> dict[str, str]:
    """What the figures were measured on."""
    import django
    import psycopg

    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    version, synchronous_commit = (query(database_url, "SELECT version()")[0][0],
                                   query(database_url, "SHOW synchronous_commit")[0][0])
    return {"cpus": f"{os.cpu_count()} (nproc), {model.group(1).strip() if model else '?'}",
            "kernel": platform.release(), "python": platform.python_version(),
            "django": django.get_version(), "psycopg": psycopg.__version__,
            "postgresql": " ".join(version.split()[:2]),
            "synchronous_commit": synchronous_commit}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url",
                        default="postgres://postgres@127.0.0.1:5432/vodportal_audit_bench")
    parser.add_argument("--configs", default="1x1,2x4,2x8",
                        help="PROCESSESxTHREADS, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--modes", default="inline,sealer",
                        help="inline (AUDIT_SEAL_INLINE=true), sealer (the background sealer)")
    parser.add_argument("--root", default=str(ROOT),
                        help="the checkout whose code runs (e.g. `git archive` of an older "
                             "commit: its `inline` is that commit's own way of appending)")
    parser.add_argument("--pool-size", default="",
                        help="DATABASE_POOL_SIZE for the workers (0: a connection per thread)")
    args = parser.parse_args()
    url, name = args.database_url, args.database_url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    query(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    query(admin_url, f"CREATE DATABASE {name}")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--no-input", "-v", "0"], cwd=args.root, check=True,
                   env=environment(url, inline=True))
    query(url, LAG_TABLE)
    for key, value in machine(url).items():
        print(f"{key:18} {value}")
    print(f"window             {args.seconds:.0f} s per run; audit.record('upload.synced') "
          f"in a loop, system actor; DATABASE_POOL_SIZE {args.pool_size or 'default'}\n")
    print(f"{'mode':10} {'procs x threads':>15} {'appends/s':>10} {'lag p50 ms':>11} "
          f"{'lag p99 ms':>11} {'lag max ms':>11}  load before")
    for inline in [mode == "inline" for mode in args.modes.split(",")]:
        for config in args.configs.split(","):
            processes, threads = (int(part) for part in config.split("x"))
            first_id = query(url, "SELECT coalesce(max(id), 0) FROM uploads_auditevent")[0][0]
            load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            total = run(args.root, environment(url, inline, args.pool_size), processes,
                        threads, args.seconds)
            lag = query(url, "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY "
                             "ms), max(ms), count(*) FROM (SELECT extract(epoch FROM "
                             "s.sealed_at - e.created_at) * 1000 AS ms FROM uploads_auditevent"
                             " e JOIN bench_sealed s USING (id) WHERE e.id > %s) lags",
                        first_id)[0]
            (p50, p99), worst = (lag[0] or (0, 0)), lag[1] or 0
            shown = ("-", "-", "-") if inline else (f"{p50:.0f}", f"{p99:.0f}", f"{worst:.0f}")
            print(f"{'inline' if inline else 'sealer':10} {config:>15} "
                  f"{total / args.seconds:10.0f} {shown[0]:>11} {shown[1]:>11} {shown[2]:>11}  "
                  f"{load}",
                  flush=True)
    left = query(url, "SELECT count(*) FROM uploads_auditevent WHERE sequence IS NULL")[0][0]
    verified = subprocess.run([*manage, "audit_verify", "--no-checkpoint"], cwd=args.root,
                              env=environment(url, inline=False), capture_output=True, text=True)
    print(f"\nunsealed after the processes exited: {left}; audit_verify: "
          f"{(verified.stdout or verified.stderr).strip().splitlines()[-1]}")
    return verified.returncode


if __name__ == "__main__":
    sys.exit(main())
