"""The four parts of the capacity bench (issue 13): the latency sweep, overload, the naive
peer, and audit appends. Each prints its table and returns its verdicts [(text, passed)]."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.capacity.measure import (HEADER, class_latencies, closed_point, open_point,
                                    requests_shed, row)
from bench.capacity.openloop import percentile
from bench.capacity.stack import (SandboxControl, Serving, Target, start_peer,
                                  start_portal_target)
from bench.issue_throughput import start_sandbox
from tests.stack import ROOT

Verdicts = list[tuple[str, bool]]
SERVED_MARGIN = 1.0  # served >= offered - 1 per second (79/s of 80/s)
P99_SLACK_MS = 150.0  # p99 <= VOD latency + this
REFUSAL_P99_TARGET_MS = 50.0


def _table(title: str, points) -> None:
    print(f"\n{title}\n{HEADER}\n{'-' * len(HEADER)}")
    for point in points:
        print(row(point))


def sweep(args, workdir: Path, sandbox: SandboxControl, endpoint: str, serving: Serving
          ) -> Verdicts:
    """The latency sweep twice: the portal as deployed, then with its limiter set high
    enough never to bind (what the portal itself can serve)."""
    return (_sweep(args, workdir, sandbox, endpoint, serving, limiter_binding=True)
            + _sweep(args, workdir, sandbox, endpoint, serving, limiter_binding=False))


def _sweep(args, workdir: Path, sandbox: SandboxControl, endpoint: str,
           serving: Serving, *, limiter_binding: bool) -> Verdicts:
    """The sandbox at each latency: open loop at --rate, then (as deployed only) wrk at each
    of --clients.

    As deployed, VOD_QPS_LIMIT is VOD's 80/s and the limiter holds every call's slot for
    1 s + VOD_QPS_MARGIN_MS, so at an offered 80/s it serves just under 80/s and refuses the
    rest with 429 and Retry-After (no limiter that keeps VOD at 80 in every second can take
    exactly 80/s of arrivals that jitter). Those refusals are counted and shown; the
    verdict's errors are the other failures. With the limiter out of the way, every request
    must be served."""
    name = "as deployed" if limiter_binding else "limiter not binding"
    extra_env = None if limiter_binding else {"VOD_QPS_LIMIT": "1000000"}
    portal = start_portal_target(args.db_name, database_url=args.database_url, workdir=workdir,
                                 sandbox=endpoint, redis_url=args.redis_url,
                                 serving=serving, extra_env=extra_env)
    verdicts: Verdicts = []
    points = []
    try:
        for latency in args.latencies:
            sandbox.configure(latency=latency / 1000)
            point = open_point(portal, f"VOD +{latency:g} ms, open loop", rate=args.rate,
                               warmup=args.warmup, duration=args.duration,
                               timeout=args.timeout, redis_url=args.redis_url)
            points.append(point)
            print(f"  {name}, {point.label}: {point.spread}; generator late p99 "
                  f"{point.open_loop.late_ms(0.99):.1f} ms, max {point.open_loop.late_ms(1):.1f}"
                  f" ms; connections opened {point.open_loop.connections_opened}; "
                  f"{_late_calls_text(point)}; CPU stolen by the host "
                  f"{point.stolen_cores:.2f} cores", flush=True)
            served_ok = point.served_per_second >= args.rate - SERVED_MARGIN
            p99_ok = point.latencies["p99"] <= latency + P99_SLACK_MS
            refused = point.counts["429"]
            errors = point.failures if limiter_binding else point.errors
            verdicts.append((
                f"sweep {name}, VOD +{latency:g} ms, {args.rate:g}/s open loop: served "
                f"{point.served_per_second:.1f}/s >= {args.rate - SERVED_MARGIN:g}, p99 "
                f"{point.latencies['p99']:.0f} ms <= {latency + P99_SLACK_MS:g}, errors "
                f"{errors} == 0 (429 from the limiter: {refused})",
                served_ok and p99_ok and not errors))
            for clients in args.clients if limiter_binding else ():
                point = closed_point(portal, f"VOD +{latency:g} ms, wrk {clients} clients",
                                     workdir, clients=clients, warmup=args.warmup,
                                     duration=args.duration, redis_url=args.redis_url)
                points.append(point)
                print(f"  {name}, {point.label}: {point.spread}", flush=True)
    finally:
        portal.stop()
    settings_text = ("VOD_QPS_LIMIT and VOD_QPS_MAX_WAIT_MS as settings default them"
                     if limiter_binding else "VOD_QPS_LIMIT=1000000")
    _table(f"1{'a' if limiter_binding else 'b'}. latency sweep, {name}: {serving.text}, "
           f"{settings_text}; latencies in ms from the scheduled "
           "send (open loop) or from wrk (closed); CPU and PG: ms per 2xx answer", points)
    return verdicts


def _late_calls_text(point) -> str:
    """The limiter's late calls over a point's window and the capacity they cost."""
    return (f"calls that left the limiter late {point.late_calls:.0f} ({point.late_seconds:.2f}"
            f" s late in all), slots held until VOD's answer {point.held_until_answered:.0f}")


def busiest_second(times: list[float]) -> tuple[int, int]:
    """(most arrivals in one calendar second, most in any sliding one-second window)."""
    calendar = max(Counter(int(moment) for moment in times).values(), default=0)
    ordered, sliding, first = sorted(times), 0, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= 1.0:
            first += 1
        sliding = max(sliding, last - first + 1)
    return calendar, sliding


def _overload_counts(database_url: str) -> tuple[int, dict[str, int], int]:
    """Upload rows, rows by status, and `video.credential.failed` events whose code is
    QpsLimitReached, in the overload portal's database."""
    import psycopg

    with psycopg.connect(database_url) as connection:
        statuses = dict(connection.execute(
            "SELECT status, count(*) FROM uploads_videoupload GROUP BY status").fetchall())
        refused = connection.execute(
            "SELECT count(*) FROM uploads_auditevent WHERE action = "
            "'video.credential.failed' AND data->>'code' = 'QpsLimitReached'").fetchone()[0]
    return sum(statuses.values()), statuses, refused


def overload(args, workdir: Path, serving: Serving) -> Verdicts:
    """A sandbox that throttles past --vod-qps per second (as VOD does), the portal limited
    to the same, offered --overload-rate per second."""
    process, endpoint = start_sandbox("--latency-ms", f"{args.overload_latency:g}",
                                      "--qps-limit", str(args.vod_qps))
    portal = None
    try:
        portal = start_portal_target(args.db_name, database_url=args.database_url,
                                     workdir=workdir, sandbox=endpoint,
                                     redis_url=args.redis_url, serving=serving,
                                     extra_env={"VOD_QPS_LIMIT": str(args.vod_qps)})
        point = open_point(portal, f"VOD +{args.overload_latency:g} ms, {args.overload_rate:g}/s",
                           rate=args.overload_rate, warmup=args.warmup,
                           duration=args.duration, timeout=args.timeout,
                           redis_url=args.redis_url)
        calls = SandboxControl(endpoint).arrivals("CreateUploadVideo")
        shed = requests_shed(portal.url)
        rows, by_status, refused_events = _overload_counts(portal.database_url)
    finally:
        if portal is not None:
            portal.stop()
        process.terminate()
        process.wait(timeout=30)
    result = point.open_loop
    every = result.statuses(measured_only=False)
    calendar, sliding = busiest_second([call[0] for call in calls])
    # VOD's gateway answers Throttling.User past the account's limit (the sandbox too).
    throttled = sum(1 for call in calls if str(call[2] or "").startswith("Throttling"))
    admitted, refusals = class_latencies(result, "2xx"), class_latencies(result, "429")
    refusal_answers = [answer for answer in result.answers if answer.status == 429]
    without_retry_after = sum(1 for answer in refusal_answers if not answer.retry_after)
    no_answer = every["timeout"] + every["conn"]
    print(f"\n2. overload: sandbox +{args.overload_latency:g} ms and --qps-limit {args.vod_qps}, "
          f"portal VOD_QPS_LIMIT={args.vod_qps}, {args.overload_rate:g}/s offered open loop "
          f"for {args.warmup:g} + {args.duration:g} s")
    print(f"{HEADER}\n{'-' * len(HEADER)}\n{row(point)}")
    print(f"  workers: {point.spread}; connections opened {result.connections_opened}, "
          f"most requests in flight {result.most_in_flight}; generator late p99 "
          f"{result.late_ms(0.99):.1f} ms")
    print(f"  limiter: {_late_calls_text(point)}")
    print(f"  CPU over the window: the machine {point.machine_cores:.2f} of "
          f"{os.cpu_count()} cores busy, {point.stolen_cores:.2f} stolen by the host; the "
          f"portal's gunicorn "
          f"{point.cpu_ms * point.served_per_second / 1000:.2f}, its PostgreSQL backends "
          f"{point.pg_ms * point.served_per_second / 1000:.2f}, the load generator "
          f"{point.generator_cores:.2f}")
    print(f"  sandbox: {len(calls)} CreateUploadVideo calls; most in one calendar second "
          f"{calendar}, in any sliding 1-s window {sliding}; Throttling answers {throttled}")
    print(f"  admitted (2xx): {point.served_per_second:.1f}/s, p50 {admitted['p50']:.0f} ms, "
          f"p99 {admitted['p99']:.0f} ms")
    print(f"  refused (429): {point.counts['429']} in the window ({every['429']} in all), "
          f"p50 {refusals['p50']:.0f} ms, p99 {refusals['p99']:.0f} ms; without Retry-After "
          f"{without_retry_after}")
    cold = [answer for answer in result.answers
            if answer.due < result.window[0] and answer.status is not None]
    cold_refusals = [answer.latency_ms for answer in cold if answer.status == 429]
    print(f"  the warm-up's {args.warmup:g} s (a cold start, not judged): 429 p99 "
          f"{percentile(cold_refusals, 0.99):.0f} ms of {len(cold_refusals)}, 2xx p99 "
          f"{percentile([a.latency_ms for a in cold if 200 <= a.status < 300], 0.99):.0f} ms")
    print(f"  no answer: {every['timeout']} client timeouts ({args.timeout:g} s), "
          f"{every['conn']} connection errors; 5xx {every['5xx']} ({shed:.0f} of them shed: 503 "
          f"`overloaded`, queued past REQUEST_MAX_QUEUE_MS), other {every['other']}")
    print(f"  database: {rows} upload rows {by_status} for {every['2xx']} 2xx answers; "
          f"{refused_events} QpsLimitReached failure events for {every['429']} 429 answers "
          "(warm-up included)")
    refusal_p99 = refusals["p99"]
    return [
        (f"overload: sandbox saw <= {args.vod_qps} CreateUploadVideo in any 1-s window "
         f"(calendar {calendar}, sliding {sliding})", sliding <= args.vod_qps),
        (f"overload: no Throttling from the sandbox ({throttled})", throttled == 0),
        (f"overload: 429 p99 <= {REFUSAL_P99_TARGET_MS:g} ms ({refusal_p99:.0f})",
         not math.isnan(refusal_p99) and refusal_p99 <= REFUSAL_P99_TARGET_MS),
        (f"overload: every 429 carries Retry-After ({without_retry_after} of "
         f"{len(refusal_answers)} without)", without_retry_after == 0),
        (f"overload: no client timeouts or connection errors ({no_answer})", no_answer == 0),
        (f"overload: rows == 2xx answers, no row for a refused request ({rows} rows, "
         f"{every['2xx']} 2xx)", rows == every["2xx"]),
        (f"overload: one QpsLimitReached audit event per 429 ({refused_events} events, "
         f"{every['429']} 429s)", refused_events == every["429"]),
    ]


def _per_credential(points, attribute: str) -> float:
    """Over several runs: total CPU / total credentials, from each run's per-credential
    figure and its credentials."""
    credentials = sum(point.counts["2xx"] for point in points)
    total = sum(getattr(point, attribute) * point.counts["2xx"] for point in points
                if point.counts["2xx"])
    return total / credentials if credentials else math.nan


def peer_comparison(args, workdir: Path, sandbox: SandboxControl, endpoint: str,
                    serving: Serving) -> Verdicts:
    """Portal and peer in turn (portal, peer, portal, peer, ...), open loop at --rate with the
    sandbox at --peer-latency, then wrk at --peer-clients with no VOD latency.

    The peer runs gthread workers, as the sample's developer deploys it: its persistent
    connections (CONN_MAX_AGE) are one per thread, and would be one per request in greenlets."""
    peer_serving = dataclasses.replace(serving, worker_class="gthread")
    targets: list[Target] = []
    try:
        # The peer has no limiter: the portal's is on (its Redis calls are counted) but set
        # high enough never to bind, so both issue every credential they are asked for.
        targets.append(start_portal_target(
            args.db_name, database_url=args.database_url, workdir=workdir, sandbox=endpoint,
            redis_url=args.redis_url, serving=serving,
            extra_env={"VOD_QPS_LIMIT": "1000000"}))
        targets.append(start_peer(f"{args.db_name}_peer", database_url=args.database_url,
                                  workdir=workdir, sandbox=endpoint, serving=peer_serving,
                                  conn_max_age=args.peer_conn_max_age))
        points = {"open": [], "closed": []}
        sandbox.configure(latency=args.peer_latency / 1000)
        for _ in range(args.rounds):
            for target in targets:
                points["open"].append(open_point(
                    target, f"{target.name}, VOD +{args.peer_latency:g} ms", rate=args.rate,
                    warmup=args.warmup, duration=args.duration, timeout=args.timeout,
                    redis_url=args.redis_url))
        sandbox.configure(latency=0)
        for _ in range(args.rounds):
            for target in targets:
                points["closed"].append(closed_point(
                    target, f"{target.name}, VOD +0 ms", workdir, clients=args.peer_clients,
                    warmup=args.warmup, duration=args.duration, redis_url=args.redis_url))
    finally:
        for target in targets:
            target.stop()
    _table(f"3. the naive peer (bench/peer/, CONN_MAX_AGE={args.peer_conn_max_age}) against "
           f"the portal (VOD_QPS_LIMIT not binding), interleaved; the portal {serving.text}, "
           f"the peer {peer_serving.text}", points["open"] + points["closed"])
    for point in points["open"] + points["closed"]:
        print(f"  {point.label} ({point.mode}): {point.spread}")
    verdicts: Verdicts = []
    for mode, load in (("open", f"{args.rate:g}/s, VOD +{args.peer_latency:g} ms"),
                       ("closed", f"{args.peer_clients} clients, VOD +0 ms")):
        mine = [point for point in points[mode] if point.target == "portal"]
        theirs = [point for point in points[mode] if point.target == "peer"]
        cpu = {name: _per_credential(runs, "cpu_ms") for name, runs in
               (("portal", mine), ("peer", theirs))}
        pg = {name: _per_credential(runs, "pg_ms") for name, runs in
              (("portal", mine), ("peer", theirs))}
        rate = {name: sum(point.served_per_second for point in runs) / len(runs)
                for name, runs in (("portal", mine), ("peer", theirs))}
        ratio = cpu["portal"] / cpu["peer"]
        print(f"  {mode} loop ({load}): CPU ms/credential portal {cpu['portal']:.2f}, peer "
              f"{cpu['peer']:.2f} -> {ratio:.2f}x; PostgreSQL ms/credential portal "
              f"{pg['portal']:.2f}, peer {pg['peer']:.2f}; credentials/s portal "
              f"{rate['portal']:.1f}, peer {rate['peer']:.1f}")
        verdicts.append((f"peer, {mode} loop ({load}): portal CPU per credential <= 1.5x the "
                         f"peer's ({ratio:.2f}x)", ratio <= 1.5))
    return verdicts


# The ceiling the issue sets for audit appends (item 4).
AUDIT_APPENDS_TARGET = 1000.0


def audit_appends(args) -> Verdicts:
    """Part 4: bench/audit_appends.py at 2 processes x 8 threads, both ways of sealing; the
    verdict is on the background sealer's appends/s."""
    print("\n4. audit appends: 2 processes x 8 threads calling audit.record on one "
          "PostgreSQL (bench/audit_appends.py)", flush=True)
    database_url = args.database_url.rsplit("/", 1)[0] + f"/{args.db_name}_audit"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "audit_appends.py"), "--configs", "2x8",
         "--seconds", f"{args.duration / 2:g}", "--database-url", database_url],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    print(result.stdout.rstrip(), flush=True)
    rates = {mode: float(rate) for mode, rate in
             re.findall(r"^(inline|sealer)\s+2x8\s+(\d+(?:\.\d+)?)", result.stdout, re.M)}
    sealer = rates.get("sealer", 0.0)
    return [(f"audit: appends/s with the background sealer >= {AUDIT_APPENDS_TARGET:g} "
             f"({sealer:.0f}/s; with AUDIT_SEAL_INLINE, each writer sealing under the lock: "
             f"{rates.get('inline', 0.0):.0f}/s)", sealer >= AUDIT_APPENDS_TARGET),
            ("audit: audit_verify passes over every appended event", result.returncode == 0)]
