"""One measured point against a target: open loop (bench/capacity/openloop.py) or closed loop
(wrk, through bench/issue_throughput.py), with the target's CPU per credential and how its
workers shared the requests."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from bench.capacity.openloop import OpenLoopResult, percentile, run_open_loop, status_class
from bench.capacity.stack import CREDENTIAL_PATH, AccessLog, Target, spread_text
from bench.issue_throughput import VIDEO, ServerCpu, WrkResult, run_wrk, write_wrk_script

BODY = json.dumps(VIDEO).encode()


@dataclass
class Point:
    """What one run of load against one target gave."""

    label: str
    target: str
    mode: str  # "open" or "closed"
    load: float  # open: offered credentials/s; closed: clients
    served_per_second: float
    latencies: dict[str, float]  # p50, p90, p99, max in ms (answered requests)
    counts: dict[str, int]  # 2xx, 429, 5xx, other, timeout, conn
    cpu_ms: float  # the target's gunicorn CPU per 2xx answer
    pg_ms: float  # its database's PostgreSQL backends' CPU per 2xx answer
    spread: str
    open_loop: OpenLoopResult | None = field(default=None, repr=False)
    # Open loop: cores in use over the window, machine-wide and by this process (the load
    # generator), so that a saturated machine shows as one.
    machine_cores: float = math.nan
    stolen_cores: float = math.nan
    generator_cores: float = math.nan
    # Open loop: VOD calls that left the limiter later than VOD_QPS_MARGIN_MS, how late in
    # all (vodportal_vod_limiter_late_seconds over the window), and how many of them had
    # their slot held until VOD's answer (vodportal_vod_limiter_held_until_answered).
    late_calls: float = math.nan
    late_seconds: float = math.nan
    held_until_answered: float = math.nan

    @property
    def errors(self) -> int:
        """Answers that are not 2xx, and requests without an answer."""
        return sum(count for name, count in self.counts.items() if name != "2xx")

    @property
    def failures(self) -> int:
        """Errors other than a 429 (a refusal with Retry-After): 5xx, other statuses,
        timeouts and connection errors."""
        return self.errors - self.counts.get("429", 0)


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, stolen) CPU seconds of the whole machine since boot, summed over its CPUs
    (/proc/stat): busy is user, nice, system, irq and softirq; stolen is the time a virtual
    machine's CPUs were ready but the host ran something else (a noisy neighbour: the
    portal stalls through no fault of its own)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _portal_samples(url: str) -> list | None:
    """Every sample the portal's /metrics serves (open to loopback by default); None from a
    target without it (the peer)."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    answer = requests.get(url.rstrip("/") + "/metrics", timeout=10)
    if answer.status_code != 200:
        return None
    return [sample for family in text_string_to_metric_families(answer.text)
            for sample in family.samples]


def limiter_lateness(url: str) -> tuple[float, float, float]:
    """(late calls, their lateness in seconds, slots held until answered): the portal's
    vodportal_vod_limiter_late_seconds count and sum and its
    vodportal_vod_limiter_held_until_answered_total, every operation; nan from a target
    without them (the peer)."""
    samples = _portal_samples(url)
    if samples is None:
        return math.nan, math.nan, math.nan
    names = {"vodportal_vod_limiter_late_seconds_count": 0,
             "vodportal_vod_limiter_late_seconds_sum": 1,
             "vodportal_vod_limiter_held_until_answered_total": 2}
    totals = [0.0, 0.0, 0.0]
    for sample in samples:
        if sample.name in names:
            totals[names[sample.name]] += sample.value
    return totals[0], totals[1], totals[2]


def requests_shed(url: str) -> float:
    """The portal's vodportal_requests_shed_total (503 `overloaded`: queued past
    REQUEST_MAX_QUEUE_MS); nan when it cannot be read."""
    samples = _portal_samples(url)
    if samples is None:
        return math.nan
    return sum(sample.value for sample in samples
               if sample.name == "vodportal_requests_shed_total")


class _Marks(NamedTuple):
    """What is read at the start and at the end of a measured window."""

    gunicorn_cpu: float
    servers: tuple
    machine: tuple[float, float]  # machine_cpu_seconds()
    generator_cpu: float  # this process
    at: float
    limiter: tuple[float, float, float]  # limiter_lateness()


def _latency_summary(values: list[float]) -> dict[str, float]:
    return {"p50": percentile(values, 0.50), "p90": percentile(values, 0.90),
            "p99": percentile(values, 0.99), "max": max(values) if values else math.nan}


def open_point(target: Target, label: str, *, rate: float, warmup: float, duration: float,
               timeout: float, redis_url: str) -> Point:
    """`rate` credentials/s offered for warmup + duration seconds; statuses and latencies of
    the requests due in the measured window; CPU over the window per 2xx completed in it."""
    log, cpu = AccessLog(target.access_log), target.cpu
    servers = ServerCpu(target.database_url, redis_url)

    def snapshot() -> _Marks:
        return _Marks(cpu.total(), servers.snapshot(), machine_cpu_seconds(),
                      time.process_time(), time.monotonic(), limiter_lateness(target.url))

    result = run_open_loop(target.url, CREDENTIAL_PATH, target.tokens, BODY, rate=rate,
                           warmup=warmup, duration=duration, timeout=timeout,
                           on_start=snapshot, on_end=snapshot)
    start, end = result.marks["start"], result.marks["end"]
    elapsed = end.at - start.at
    limiter = [after - before for after, before in zip(end.limiter, start.limiter, strict=True)]
    served = result.served_per_second() * result.duration
    answered = [answer.latency_ms for answer in result.measured if answer.status is not None]
    counts = {name: result.statuses().get(name, 0)
              for name in ("2xx", "429", "5xx", "other", "timeout", "conn")}
    return Point(label=label, target=target.name, mode="open", load=rate,
                 served_per_second=result.served_per_second(),
                 latencies=_latency_summary(answered), counts=counts,
                 cpu_ms=(end.gunicorn_cpu - start.gunicorn_cpu) / served * 1000 if served
                 else math.nan,
                 pg_ms=ServerCpu.delta(start.servers, end.servers)[0] / served * 1000 if served
                 else math.nan,
                 spread=spread_text(log.by_worker(), cpu.workers()), open_loop=result,
                 machine_cores=(end.machine[0] - start.machine[0]) / elapsed,
                 stolen_cores=(end.machine[1] - start.machine[1]) / elapsed,
                 generator_cores=(end.generator_cpu - start.generator_cpu) / elapsed,
                 late_calls=limiter[0], late_seconds=limiter[1],
                 held_until_answered=limiter[2])


def closed_point(target: Target, label: str, workdir: Path, *, clients: int, warmup: float,
                 duration: float, redis_url: str) -> Point:
    """wrk with `clients` connections (each sends its next request once answered), after a
    warm-up; CPU from just before to a second after (wrk abandons its last requests at its
    deadline: they finish and are counted) per 201."""
    script_dir = workdir / f"wrk-{target.name}"
    script_dir.mkdir(exist_ok=True)
    script = write_wrk_script(script_dir, target.tokens)
    run_wrk(target.url, script, clients, warmup)
    log, cpu = AccessLog(target.access_log), target.cpu
    servers = ServerCpu(target.database_url, redis_url)
    cpu_before, pg_before = cpu.total(), servers.snapshot()
    result: WrkResult = run_wrk(target.url, script, clients, duration)
    time.sleep(1.0)
    cpu_seconds, pg = cpu.total() - cpu_before, ServerCpu.delta(pg_before, servers.snapshot())[0]
    counts = {"2xx": 0, "429": 0, "5xx": 0, "other": 0, "timeout": 0,
              "conn": result.socket_errors}
    for status, count in result.statuses.items():
        counts["2xx" if 200 <= status < 300 else "429" if status == 429
               else "5xx" if status >= 500 else "other"] += count
    created = counts["2xx"]
    return Point(label=label, target=target.name, mode="closed", load=clients,
                 served_per_second=created / result.seconds,
                 latencies={"p50": result.p50_ms, "p90": math.nan, "p99": result.p99_ms,
                            "max": result.max_ms},
                 counts=counts, cpu_ms=cpu_seconds / created * 1000 if created else math.nan,
                 pg_ms=pg / created * 1000 if created else math.nan,
                 spread=spread_text(log.by_worker(), cpu.workers()))


def class_latencies(result: OpenLoopResult, name: str, measured_only: bool = True
                    ) -> dict[str, float]:
    """p50/p90/p99/max of the answers of one status class ('2xx', '429', ...)."""
    answers = result.measured if measured_only else result.answers
    return _latency_summary([answer.latency_ms for answer in answers
                             if status_class(answer) == name])


HEADER = (f"{'':34} {'load':>6} {'served/s':>8} {'p50':>7} {'p90':>7} {'p99':>7} {'max':>7} "
          f"{'2xx':>5} {'429':>5} {'5xx':>4} {'oth':>4} {'t/o':>4} {'conn':>4} "
          f"{'CPU ms':>7} {'PG ms':>6}")


def row(point: Point) -> str:
    """One line of a table under HEADER (latencies in ms; CPU per 2xx answer)."""
    load = f"{point.load:.0f}/s" if point.mode == "open" else f"{point.load:.0f}c"
    lat = point.latencies
    counts = point.counts

    def ms(value: float) -> str:
        return f"{'-':>7}" if math.isnan(value) else f"{value:7.0f}"

    return (f"{point.label:34} {load:>6} {point.served_per_second:8.1f} {ms(lat['p50'])} "
            f"{ms(lat['p90'])} {ms(lat['p99'])} {ms(lat['max'])} {counts['2xx']:5d} "
            f"{counts['429']:5d} {counts['5xx']:4d} {counts['other']:4d} {counts['timeout']:4d} "
            f"{counts['conn']:4d} {point.cpu_ms:7.2f} {point.pg_ms:6.2f}")
