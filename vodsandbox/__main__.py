"""python -m vodsandbox: run the sandbox until SIGINT or SIGTERM.

    python -m vodsandbox --host 127.0.0.1 --port 8765 \\
        --access-key-id X --access-key-secret Y \\
        [--latency-ms N] [--fault ACTION:CODE:RATE ...] [--qps-limit N] \\
        [--callback-url URL] [--callback-auth-key KEY] [--transcode-delay SECONDS] \\
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
    DEFAULT_TRANSCODE_DELAY,
    DEV_ACCESS_KEY_ID,
    DEV_ACCESS_KEY_SECRET,
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
                        help="answer Throttling past N calls per second per action")
    parser.add_argument("--callback-url", default=None,
                        help="where event notifications go for media whose UserData names "
                             "no MessageCallback")
    parser.add_argument("--callback-auth-key",
                        default=os.environ.get("VODSANDBOX_CALLBACK_AUTH_KEY"),
                        help="sign notifications with this AuthKey (default "
                             "$VODSANDBOX_CALLBACK_AUTH_KEY; none: unsigned)")
    parser.add_argument("--transcode-delay", type=float, default=DEFAULT_TRANSCODE_DELAY,
                        help="seconds from a video's upload to Normal/TranscodeComplete")
    parser.add_argument("--search-lag", type=float, default=DEFAULT_SEARCH_LAG,
                        help="seconds from a media's creation until SearchMedia finds it")
    parser.add_argument("--verbose", action="store_true", help="log every call")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run until SIGINT/SIGTERM; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        config = SandboxConfig(access_key_id=args.access_key_id,
                               access_key_secret=args.access_key_secret, host=args.host,
                               port=args.port, region_id=args.region_id,
                               qps_limit=args.qps_limit, latency=args.latency_ms / 1000,
                               faults=tuple(args.fault), callback_url=args.callback_url,
                               callback_auth_key=args.callback_auth_key or None,
                               transcode_delay=args.transcode_delay,
                               search_lag=args.search_lag)
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
