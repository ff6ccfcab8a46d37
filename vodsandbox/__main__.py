"""python -m vodsandbox: run the sandbox until SIGINT or SIGTERM.

    python -m vodsandbox --host 127.0.0.1 --port 8765 \\
        --access-key-id X --access-key-secret Y \\
        [--latency-ms N] [--fault ACTION:CODE:RATE ...] [--qps-limit N] \\
        [--qps-limit-for ACTION=N ... | --no-qps-limits] [--template-group ID ...] \\
        [--no-transcode-template-group ID ...] [--default-template-group ID] \\
        [--storage-location X ...] [--app-id X ...] [--category-id N ...] \\
        [--callback-url URL] [--callback-auth-key KEY] [--callback-duplicates RATE] \\
        [--callback-reorder] [--transcode-delay SECONDS] [--transcode-definitions LD,SD] \\
        [--search-lag SECONDS]

Keys default to $VODSANDBOX_ACCESS_KEY_ID / $VODSANDBOX_ACCESS_KEY_SECRET, else the well-known
development pair. One line with the URL is printed once it listens.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from .config import (
    DEFAULT_SEARCH_LAG,
    DEFAULT_TRANSCODE_DEFINITIONS,
    DEFAULT_TRANSCODE_DELAY,
    DEV_ACCESS_KEY_ID,
    DEV_ACCESS_KEY_SECRET,
    NO_TRANSCODE_TEMPLATE_GROUP_ID,
    SandboxConfig,
)
from .sandbox import Sandbox


def parse_fault(text: str) -> dict:
    """ACTION:CODE[:RATE] -> Faults.add keyword arguments ("*" for every action)."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError(f"expected ACTION:CODE[:RATE], got {text!r}")
    try:
        rate = float(parts[2]) if len(parts) == 3 else 1.0
    except ValueError:
        raise argparse.ArgumentTypeError(f"RATE must be a number in {text!r}") from None
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"RATE must be between 0 and 1 in {text!r}")
    return {"action": parts[0], "code": parts[1], "rate": rate}


def parse_action_limit(text: str) -> tuple[str, int]:
    """ACTION=N -> (action, N), N a whole number of calls per second, at least 1."""
    action, sep, limit = text.partition("=")
    if not sep or not action.strip() or not limit.strip().isdigit() or int(limit) < 1:
        raise argparse.ArgumentTypeError(f"expected ACTION=N with N >= 1, got {text!r}")
    return action.strip(), int(limit)


def parse_definitions(text: str) -> tuple[str, ...]:
    """LD,SD,... -> ("LD", "SD", ...): at least one definition."""
    definitions = tuple(part.strip() for part in text.split(",") if part.strip())
    if not definitions:
        raise argparse.ArgumentTypeError(f"expected definitions such as LD,SD, got {text!r}")
    return definitions


def parse_rate(text: str) -> float:
    """A chance between 0 and 1."""
    try:
        rate = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") \
            from None
    if not 0.0 <= rate <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return rate


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m vodsandbox",
                                     description="A local ApsaraVideo VOD OpenAPI for tests.")
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port (0: a free one)")
    parser.add_argument("--access-key-id",
                        default=os.environ.get("VODSANDBOX_ACCESS_KEY_ID", DEV_ACCESS_KEY_ID))
    parser.add_argument("--access-key-secret",
                        default=os.environ.get("VODSANDBOX_ACCESS_KEY_SECRET",
                                               DEV_ACCESS_KEY_SECRET))
    parser.add_argument("--region-id", default="cn-shanghai")
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="delay every VOD answer by this many milliseconds")
    parser.add_argument("--fault", type=parse_fault, action="append", default=[],
                        metavar="ACTION:CODE:RATE", help="inject an error (repeatable)")
    parser.add_argument("--qps-limit", type=int, default=None,
                        help="answer Throttling.User past N calls per second, for every "
                             "action (overrides the per-action limits)")
    parser.add_argument("--qps-limit-for", type=parse_action_limit, action="append",
                        default=[], metavar="ACTION=N",
                        help="calls per second for one action (repeatable); given, these "
                             "replace VOD's documented per-region limits")
    parser.add_argument("--no-qps-limits", action="store_true",
                        help="no per-action limit at all (benchmarks that measure the "
                             "caller, not VOD's limit)")
    parser.add_argument("--template-group", action="append", default=[], metavar="ID",
                        help="a transcoding template group the account has (repeatable; "
                             "none: any id is accepted)")
    parser.add_argument("--no-transcode-template-group", action="append", default=[],
                        metavar="ID", help="a template group that never transcodes "
                                           f"(repeatable; {NO_TRANSCODE_TEMPLATE_GROUP_ID} "
                                           "always is)")
    parser.add_argument("--default-template-group", default=None, metavar="ID",
                        help="the account's default template group, used when a video "
                             "names none")
    parser.add_argument("--storage-location", action="append", default=[], metavar="X",
                        help="a storage location the account has (repeatable; none: any)")
    parser.add_argument("--app-id", action="append", default=[], metavar="X",
                        help="an AppId the account has (repeatable; none: any; app-1000000 "
                             "always exists)")
    parser.add_argument("--category-id", type=int, action="append", default=[], metavar="N",
                        help="a CateId the account has (repeatable; none: any)")
    parser.add_argument("--callback-url", default=None,
                        help="where event notifications go for media whose UserData names "
                             "no MessageCallback")
    parser.add_argument("--callback-auth-key",
                        default=os.environ.get("VODSANDBOX_CALLBACK_AUTH_KEY"),
                        help="sign notifications with this AuthKey (default "
                             "$VODSANDBOX_CALLBACK_AUTH_KEY; none: unsigned)")
    parser.add_argument("--callback-duplicates", type=parse_rate, default=0.0, metavar="RATE",
                        help="chance (0..1) that an event is delivered twice")
    parser.add_argument("--callback-reorder", action="store_true",
                        help="deliver each media's events newest first")
    parser.add_argument("--transcode-delay", type=float, default=DEFAULT_TRANSCODE_DELAY,
                        help="seconds from a video's upload to Normal/TranscodeComplete")
    parser.add_argument("--transcode-definitions", type=parse_definitions,
                        default=DEFAULT_TRANSCODE_DEFINITIONS, metavar="LD,SD",
                        help="the definitions a transcoding template group produces")
    parser.add_argument("--search-lag", type=float, default=DEFAULT_SEARCH_LAG,
                        help="seconds from a media's creation until SearchMedia finds it")
    parser.add_argument("--verbose", action="store_true", help="log every call")
    return parser


def config_from_args(args: argparse.Namespace) -> SandboxConfig:
    """The SandboxConfig a parsed command line asks for; ValueError when it is not valid."""
    return SandboxConfig(
        access_key_id=args.access_key_id, access_key_secret=args.access_key_secret,
        host=args.host, port=args.port, region_id=args.region_id, qps_limit=args.qps_limit,
        qps_limits=({} if args.no_qps_limits
                    else dict(args.qps_limit_for) if args.qps_limit_for else None),
        template_group_ids=frozenset(args.template_group),
        no_transcode_template_group_ids=frozenset(
            {NO_TRANSCODE_TEMPLATE_GROUP_ID, *args.no_transcode_template_group}),
        default_template_group_id=args.default_template_group or None,
        storage_locations=frozenset(args.storage_location), app_ids=frozenset(args.app_id),
        category_ids=frozenset(args.category_id), latency=args.latency_ms / 1000,
        faults=tuple(args.fault), callback_url=args.callback_url,
        callback_auth_key=args.callback_auth_key or None,
        callback_duplicates=args.callback_duplicates, callback_reorder=args.callback_reorder,
        transcode_delay=args.transcode_delay, transcode_definitions=args.transcode_definitions,
        search_lag=args.search_lag)


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"vodsandbox: {exc}", file=sys.stderr)
        return 2
    sandbox = Sandbox(config)
    stopping = threading.Event()

    def on_signal(signum, frame) -> None:
        """Ask the main loop to stop (the server is stopped outside the handler)."""
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    sandbox.start()
    print(f"vodsandbox listening on {sandbox.base_url} (AccessKeyId {config.access_key_id})",
          flush=True)
    try:
        while not stopping.wait(0.5):
            pass
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
