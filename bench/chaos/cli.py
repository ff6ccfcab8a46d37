"""The fault suite's command line: start the stack, run the chosen scenarios, settle and
compare after each, print one line per scenario and a table, stop everything."""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

from . import callbacks, scenarios
from .load import Api, Outcomes
from .services import (
    PORTAL_SEARCH_LAG,
    SANDBOX_SEARCH_LAG,
    default_database_url,
    drop_database,
    start_stack,
    stop_all,
)
from .verify import Verdict, compare, settle, snapshot

# letter -> (name, function)
SCENARIOS = {
    "a": ("faults", scenarios.faults),
    "b": ("kill-workers", scenarios.kill_workers),
    "c": ("db-terminate", scenarios.db_terminate),
    "d": ("redis-down", scenarios.redis_down),
    "e": ("idempotency", scenarios.idempotency),
    "f": ("callbacks", callbacks.callbacks),
}
USERS = [f"chaos{index}" for index in range(8)]
TIMEOUT_HOLD = 3.0  # > VOD_READ_TIMEOUT_MS: the portal gives up first, as with a real hang
EXAMPLES = 3


@dataclass
class Result:
    """One scenario's outcome, for its line and the table."""

    letter: str
    name: str
    seconds: float = 0.0
    outcomes: Outcomes = field(default_factory=Outcomes)
    verdict: Verdict | None = None
    notes: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def passed(self) -> bool:
        """Clean comparison, no 500, no malformed error, no harness error."""
        return (not self.error and self.verdict is not None and self.verdict.clean
                and self.outcomes.server_errors == 0 and self.outcomes.bad_errors == 0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The flags."""
    parser = argparse.ArgumentParser(prog="bench/chaos.py",
                                     description="vodportal's bounded fault suite")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated letters or names (default: all, a-f)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply request counts (0.2 for a quick run)")
    parser.add_argument("--seed", type=int, default=None, help="for fault draws and choices")
    parser.add_argument("--threads", type=int, default=32, help="concurrent clients")
    parser.add_argument("--database-url", default=default_database_url(),
                        help="a PostgreSQL server; database vodportal_chaos is recreated")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temp dir (logs) and the database afterwards")
    args = parser.parse_args(argv)
    names = {name: letter for letter, (name, _) in SCENARIOS.items()}
    chosen = []
    for item in filter(None, (part.strip() for part in args.scenarios.split(","))):
        letter = names.get(item, item)
        if letter not in SCENARIOS:
            parser.error(f"unknown scenario {item!r}; choose from "
                         f"{', '.join(f'{k} ({v[0]})' for k, v in SCENARIOS.items())}")
        chosen.append(letter)
    args.chosen = chosen
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 10**6)
    if not 0 < args.scale <= 10:
        parser.error("--scale must be in (0, 10]")
    return args


def run_scenario(ctx: scenarios.Context, letter: str) -> Result:
    """Run one scenario, settle, compare; a harness failure is reported, not raised."""
    name, function = SCENARIOS[letter]
    result = Result(letter, name)
    started = time.monotonic()
    api = Api(ctx.stack.portal.url, ctx.tokens, result.outcomes)
    try:
        before = snapshot(ctx.stack)
        extra = function(ctx, api, before)
        result.notes += extra.notes
        sync = settle(ctx.stack, ctx.search_lag)
        result.verdict = compare(ctx.stack, before, sync)
        if extra.after:
            result.notes += extra.after(result.verdict)
    except (OSError, RuntimeError, TimeoutError, ValueError, KeyError, psycopg.Error,
            redis.exceptions.RedisError, subprocess.SubprocessError) as exc:
        # A broken scenario must not hide the others' results; its row says ERROR.
        result.error = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
    result.seconds = time.monotonic() - started
    return result


def describe(result: Result) -> list[str]:
    """The scenario's one line, then a few examples of each problem (indented)."""
    out, verdict = result.outcomes, result.verdict
    head = f"({result.letter}) {result.name:<13}"
    if verdict is None:
        return [f"{head} ERROR {result.error}"]
    line = (f"{head} {out.total} requests in {result.seconds:.0f} s | {out.histogram()} | "
            f"conn errors {out.conn_errors} | 500s {out.server_errors} | bad errors "
            f"{out.bad_errors} | lost {len(verdict.lost)} duplicated {len(verdict.duplicated)} "
            f"stuck {len(verdict.stuck)} wrong status {len(verdict.wrong)} | audit "
            f"{'verified' if verdict.audit_ok else 'NOT verified'} | {verdict.sync}"
            + "".join(f" | {note}" for note in result.notes))
    lines = [line]
    problems = {"lost": verdict.lost, "duplicated": verdict.duplicated,
                "stuck": verdict.stuck, "wrong status": verdict.wrong,
                **out.examples}
    for what, items in problems.items():
        lines += [f"      {what}: {item}" for item in items[:EXAMPLES]]
    if not verdict.audit_ok:
        lines.append(f"      audit: {verdict.audit_output}")
    if result.error:
        lines.append(f"      harness: {result.error}")
    return lines


def table(results: list[Result]) -> list[str]:
    """One row per scenario."""
    header = (f"{'scenario':<18}{'reqs':>6}{'secs':>6}{'lost':>6}{'dup':>5}{'stuck':>7}"
              f"{'wrong':>7}  {'audit':<6}{'500s':>6}{'bad':>5}{'conn':>6}  result")
    rows = [header, "-" * len(header)]
    for r in results:
        v = r.verdict
        if v is None:
            rows.append(f"{'(' + r.letter + ') ' + r.name:<18}{'':>48}  ERROR")
            continue
        rows.append(
            f"{'(' + r.letter + ') ' + r.name:<18}{r.outcomes.total:>6}{r.seconds:>6.0f}"
            f"{len(v.lost):>6}{len(v.duplicated):>5}{len(v.stuck):>7}{len(v.wrong):>7}  "
            f"{'ok' if v.audit_ok else 'BROKEN':<6}{r.outcomes.server_errors:>6}"
            f"{r.outcomes.bad_errors:>5}{r.outcomes.conn_errors:>6}  "
            f"{'PASS' if r.passed else 'FAIL'}")
    return rows


def _on_sigterm(signum, frame) -> None:
    """Treat SIGTERM like Ctrl-C, so the finally blocks stop what was started."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Run the suite; the exit status (see bench/chaos.py)."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # A shell starts background jobs with SIGINT ignored; Ctrl-C / kill -INT must still stop
    # the run through the finally below.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    workdir = Path(tempfile.mkdtemp(prefix="vodportal-chaos-"))
    began = time.monotonic()
    started: list = []
    results: list[Result] = []
    print(f"chaos: seed {args.seed}, scale {args.scale}, scenarios {','.join(args.chosen)}, "
          f"workdir {workdir}", flush=True)
    try:
        stack, started = start_stack(workdir, args.database_url, USERS)
        tokens = [stack.portal.tokens[name] for name in USERS]
        stack.sandbox.configure(timeout_hold_seconds=TIMEOUT_HOLD)
        # search_lag is newer than some sandboxes: use it where it exists.
        lagging = stack.sandbox.configure(search_lag=SANDBOX_SEARCH_LAG)
        print(f"chaos: stack up in {time.monotonic() - began:.0f} s (portal {stack.portal.url}, "
              f"sandbox {stack.sandbox.url}, redis {stack.redis.url}); sandbox search_lag "
              f"{f'{SANDBOX_SEARCH_LAG:.0f} s' if lagging else 'not supported, skipped'}, "
              f"portal VOD_SEARCH_LAG_SECONDS {PORTAL_SEARCH_LAG}", flush=True)
        ctx = scenarios.Context(stack=stack, tokens=tokens, threads=args.threads,
                                scale=args.scale, seed=args.seed,
                                rng=random.Random(args.seed),
                                # vod_sync waits for the portal's lag, the longer one.
                                search_lag=float(PORTAL_SEARCH_LAG))
        for letter in args.chosen:
            result = run_scenario(ctx, letter)
            results.append(result)
            print("\n".join(describe(result)), flush=True)
    except KeyboardInterrupt:
        print("chaos: interrupted; stopping everything", file=sys.stderr)
        return 130
    finally:
        problems = stop_all(started)
        for problem in problems:
            print(f"chaos: could not stop cleanly: {problem}", file=sys.stderr)
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
            try:
                drop_database(args.database_url)
            except (OSError, psycopg.Error) as exc:
                print(f"chaos: could not drop the database: {exc}", file=sys.stderr)
        if results:
            print()
            print("\n".join(table(results)))
            print(f"chaos: {time.monotonic() - began:.0f} s in all, seed {args.seed}, "
                  f"scale {args.scale}")
    if any(result.error for result in results):
        return 2
    return 0 if all(result.passed for result in results) else 1
