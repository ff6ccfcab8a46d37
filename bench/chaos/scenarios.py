"""Scenarios (a)-(e): creates while VOD misbehaves, workers die, database sessions are
terminated, Redis goes away, or ten clients share one Idempotency-Key. Scenario (f),
callbacks, lives in callbacks.py. Each takes (context, api, snapshot before) and returns
an Extra: notes for its line and, optionally, a check to run after vod_sync."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

from .load import KIND_NAMES, Answer, Api, Load, retry_pause, retryable
from .services import DATABASE_NAME, WORKERS, Stack, wait_until
from .verify import Snapshot, Verdict

# Every kind of fault the sandbox has, at rates summing to 18 % of VOD calls (a call hit by
# two draws takes the first, so about 16.5 % are faulted; the line says how many were).
FAULT_MIX = (
    {"code": "InternalError", "rate": 0.025},           # 500
    {"code": "ServiceUnAvailable", "rate": 0.025},      # 503
    {"code": "Throttling", "rate": 0.0125},
    {"code": "Throttling", "rate": 0.0125, "retry_after": 1},
    {"timeout": True, "rate": 0.0175},                  # VOD never acted, no answer
    {"timeout": True, "apply_after": True, "rate": 0.0175},  # VOD acted, the answer is lost
    {"reset": True, "rate": 0.0175},
    {"reset": True, "apply_after": True, "rate": 0.0175},
    {"body": "truncated", "rate": 0.0175},              # no code: VOD acted
    {"body": "non_json", "rate": 0.0175},               # no code: VOD acted
)
CLIENTS_PER_KEY = 10
RETRIES_PER_KEY = 8


@dataclass
class Context:
    """What every scenario needs: the stack, users' tokens, sizes and randomness."""

    stack: Stack
    tokens: list[str]
    threads: int
    scale: float
    seed: int
    rng: random.Random
    search_lag: float = 0.0

    def scaled(self, count: int, minimum: int) -> int:
        """`count` times --scale, at least `minimum`."""
        return max(minimum, round(count * self.scale))

    def prefix(self, letter: str) -> str:
        """A title prefix unique to this run and scenario."""
        return f"chaos-{letter}-{self.seed}-{uuid.uuid4().hex[:6]}"


@dataclass
class Extra:
    """A scenario's own notes for its line, and a check to run after the comparison (it may
    add problems to the verdict)."""

    notes: list[str] = field(default_factory=list)
    after: Callable[[Verdict], list[str]] | None = None


def add_fault_mix(stack: Stack) -> None:
    """Put FAULT_MIX in force on every VOD action."""
    for fault in FAULT_MIX:
        stack.sandbox.add_fault(action="*", **fault)


INJECTED_CODES = {fault["code"] for fault in FAULT_MIX if "code" in fault}


def fault_share(stack: Stack, first: int, end: int) -> str:
    """How many VOD calls in the log's [first, end) were faulted, by fault, and which other
    error codes VOD answered (the operations' own, e.g. a lookup that found nothing). Read
    after settling: a call held by a `timeout` fault is only marked once it ends."""
    calls = stack.sandbox.calls()[first:end]
    hit = Counter(call["fault"] or call["code"] for call in calls
                  if call["fault"] or call["code"] in INJECTED_CODES)
    other = Counter(f"{call['action']} {call['code']}" for call in calls
                    if call["code"] and not call["fault"] and call["code"] not in INJECTED_CODES)
    share = 100.0 * sum(hit.values()) / len(calls) if calls else 0.0
    detail = ", ".join(f"{name} {count}" for name, count in hit.most_common())
    text = f"{len(calls)} VOD calls, {share:.1f}% faulted" + (f" ({detail})" if detail else "")
    if other:
        text += "; other VOD errors: " + ", ".join(f"{k} {v}" for k, v in other.most_common())
    return text


def clear_faults(stack: Stack) -> int:
    """Clear the faults; returns the call log's length then (the faulted span's end)."""
    stack.sandbox.clear_faults()
    return len(stack.sandbox.calls())


def faults(ctx: Context, api: Api, before: Snapshot) -> Extra:
    """(a) 1,000 concurrent creates over the three kinds with every fault kind in force."""
    add_fault_mix(ctx.stack)
    count = ctx.scaled(1000, 30)
    try:
        Load(api, ctx.prefix("a"), threads=ctx.threads, minimum=count, maximum=count,
             max_seconds=300).start().stop(timeout=300)
    finally:
        end = clear_faults(ctx.stack)
    return Extra(after=lambda verdict: [fault_share(ctx.stack, before.calls, end)])


def _full_crew(stack: Stack) -> set[int]:
    """The workers, once the master runs all of them (empty while one is missing)."""
    found = stack.workers()
    return found if len(found) >= WORKERS else set()


def _replaced(stack: Stack, victim: int, seen: set[int]) -> bool:
    """Whether the master has replaced `victim` with a worker not seen before."""
    now = stack.workers()
    return victim not in now and len(now) >= WORKERS and bool(now - seen)


def kill_workers(ctx: Context, api: Api, before: Snapshot) -> Extra:
    """(b) Creates under load while a gunicorn worker is SIGKILLed, 8 times, each time
    waiting for the master to start a new one."""
    stack = ctx.stack
    kills = ctx.scaled(8, 2)
    load = Load(api, ctx.prefix("b"), threads=ctx.threads, minimum=ctx.scaled(200, 40),
                maximum=ctx.scaled(4000, 800), max_seconds=240).start()
    seen = set(stack.workers())
    killed: list[int] = []
    try:
        for _ in range(kills):
            load.wait_progress(ctx.scaled(40, 10))
            workers = wait_until(lambda: _full_crew(stack), 30, what="gunicorn workers")
            victim = ctx.rng.choice(sorted(workers))
            os.kill(victim, signal.SIGKILL)
            killed.append(victim)
            seen |= workers
            known = frozenset(seen)
            wait_until(lambda v=victim, k=known: _replaced(stack, v, k), 30,
                       what="a new gunicorn worker")
            seen |= stack.workers()
    finally:
        load.stop()
    return Extra(notes=[f"{len(killed)} workers killed (SIGKILL)"])


def db_terminate(ctx: Context, api: Api, before: Snapshot) -> Extra:
    """(c) Creates under load while every session on the portal's database is terminated,
    6 times."""
    times = ctx.scaled(6, 2)
    load = Load(api, ctx.prefix("c"), threads=ctx.threads, minimum=ctx.scaled(200, 40),
                maximum=ctx.scaled(3000, 600), max_seconds=180).start()
    ended = []
    try:
        # From the `postgres` database, so the terminating session is not among its victims.
        with ctx.stack.admin_db() as admin:
            for _ in range(times):
                load.wait_progress(ctx.scaled(60, 15))
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()", [DATABASE_NAME]).fetchall()
                ended.append(sum(1 for (done,) in rows if done))
    finally:
        load.stop()
    return Extra(notes=[f"{len(ended)} terminations, sessions ended: "
                        f"{'+'.join(map(str, ended))}"])


def redis_down(ctx: Context, api: Api, before: Snapshot) -> Extra:
    """(d) Creates under load while the portal's Redis is shut down (nosave) for a few
    seconds and started again on the same port."""
    outage = 4.0
    redis_server = ctx.stack.redis
    restarted_at = 0
    # Room for the outage's quick refusals and still for creates after the restart.
    load = Load(api, ctx.prefix("d"), threads=ctx.threads, minimum=ctx.scaled(200, 40),
                maximum=ctx.scaled(3000, 1200), max_seconds=180).start()
    try:
        load.wait_progress(ctx.scaled(100, 20))
        during_start = load.done
        redis_server.stop()
        # The outage lasts a chosen time: there is nothing to poll for.
        time.sleep(outage)
        during = load.done - during_start
        redis_server.start()
        restarted_at = len(load.answers)
        load.wait_progress(ctx.scaled(100, 20))
    finally:
        load.stop()
        if redis_server.process is None or redis_server.process.poll() is not None:
            redis_server.start()  # the next scenario needs it
    after_restart = [answer for _, _, answer in load.answers[restarted_at:]]
    created = sum(1 for answer in after_restart if answer.status == 201)
    return Extra(notes=[f"Redis down {outage:.0f} s, {during} requests answered meanwhile, "
                        f"{created}/{len(after_restart)} created after the restart"])


@dataclass
class Key:
    """One Idempotency-Key of scenario (e): its title identifies its media in VOD."""

    name: str
    kind: str
    user: int
    answers: list[Answer] = field(default_factory=list)


def idempotency(ctx: Context, api: Api, before: Snapshot) -> Extra:
    """(e) 80 keys over the three kinds, each sent by 10 clients at once with the same
    Idempotency-Key and body under FAULT_MIX; then each retried by one client until it gets
    an answer that is not 409/429/5xx (or RETRIES_PER_KEY tries). A key must end with
    exactly one live media in VOD if any 201 was answered for it."""
    prefix = ctx.prefix("e")
    keys = [Key(f"{prefix}-{index}", KIND_NAMES[index % len(KIND_NAMES)], index)
            for index in range(ctx.scaled(80, 6))]
    barriers = {key.name: threading.Barrier(CLIENTS_PER_KEY) for key in keys}
    lock = threading.Lock()

    def send(key: Key) -> None:
        try:
            barriers[key.name].wait(timeout=60)
        except threading.BrokenBarrierError:
            pass  # "at once" is best effort: send anyway
        answer = api.create(key.kind, key.name, key.user, key=key.name)
        with lock:
            key.answers.append(answer)

    def retry(key: Key) -> None:
        for _ in range(RETRIES_PER_KEY):
            answer = api.create(key.kind, key.name, key.user, key=key.name)
            with lock:
                key.answers.append(answer)
            if not retryable(answer):
                return
            time.sleep(retry_pause(answer, cap=2.0))

    add_fault_mix(ctx.stack)
    # A multiple of CLIENTS_PER_KEY: tasks are taken in order, so a key's ten clients are
    # always running together and no barrier can wait on a task that cannot start.
    pool = ThreadPoolExecutor(max_workers=4 * CLIENTS_PER_KEY)
    try:
        list(pool.map(send, [key for key in keys for _ in range(CLIENTS_PER_KEY)]))
        list(pool.map(retry, keys))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        end = clear_faults(ctx.stack)
    with_201 = sum(1 for key in keys if any(a.status == 201 for a in key.answers))

    def after(verdict: Verdict) -> list[str]:
        by_title: dict[str, list[str]] = defaultdict(list)
        for media_id in verdict.new_media:
            media = ctx.stack.sandbox.media(media_id) or {}
            title = media.get("Title") or (media.get("Params") or {}).get("Title")
            by_title[title].append(media_id)
        for key in keys:
            live = sorted(by_title.get(key.name, []))
            answered = {a.media_id for a in key.answers if a.status == 201}
            if len(live) > 1 or len(answered) > 1:
                verdict.duplicated.append(f"key {key.name} ({key.kind}): {len(live)} live "
                                          f"media {live}, 201s named {sorted(answered)}")
            elif answered and not live:
                verdict.wrong.append(f"key {key.name} ({key.kind}): 201 for "
                                     f"{sorted(answered)} but no live media in VOD")
            elif answered and set(live) != answered:
                verdict.wrong.append(f"key {key.name} ({key.kind}): 201 for "
                                     f"{sorted(answered)} but VOD holds {live}")
        return [fault_share(ctx.stack, before.calls, end)]

    return Extra(notes=[f"{len(keys)} keys x {CLIENTS_PER_KEY} clients, {with_201} got a 201"],
                 after=after)
