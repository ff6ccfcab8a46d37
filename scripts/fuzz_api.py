"""Fuzz the running API with schemathesis: every endpoint, against its own OpenAPI schema.

Starts vodsandbox and vodportal (gunicorn, a fresh SQLite database), then lets schemathesis
generate requests (valid and invalid) for every operation, then stateful sequences that follow
each create's OpenAPI links (read, refresh, cancel the upload just made). Fails on any 5xx, on
any response that breaks the schema (status, content type, headers, body), on auth that is
ignored, or on fewer requests than --min-requests. One schemathesis worker: with two, its
coverage phase sometimes died of a CPython 3.11 error compiling in parallel threads ("AST
constructor recursion depth mismatch"), which says nothing about the API.

    .venv/bin/python scripts/fuzz_api.py [--max-examples 150] [--min-requests 2000]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

from tests.stack import start_fuzz_target  # noqa: E402

ACCESS_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>[^ ?]*)[^"]*" (?P<status>\d{3}) ')
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_headers_conformance,response_schema_conformance,ignored_auth")


def count_requests(access_log: Path) -> tuple[int, dict[int, int], set[str]]:
    """What the server received: request count, count per status, and the paths hit."""
    total, statuses, paths = 0, {}, set()
    for line in access_log.read_text().splitlines():
        match = ACCESS_LINE.search(line)
        if not match or match["path"] == "/healthz":
            continue
        total += 1
        status = int(match["status"])
        statuses[status] = statuses.get(status, 0) + 1
        paths.add(match["path"])
    return total, statuses, paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=150)
    parser.add_argument("--min-requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261125)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="vodportal-fuzz-"))
    sandbox, portal = start_fuzz_target(
        database_url=f"sqlite:///{workdir / 'fuzz.sqlite3'}", workdir=workdir,
        extra_env={"API_CREDENTIAL_RATE": "1000000/minute",
                   "API_REFRESH_RATE": "1000000/minute", "VOD_QPS_LIMIT": "0",
                   # Callbacks are fuzzed too; with a key configured they are checked.
                   "VOD_CALLBACK_URL": "https://example.invalid/api/v1/vod/events/",
                   "VOD_CALLBACK_AUTH_KEYS": "fuzz-callback-key"})
    try:
        completed = subprocess.run(
            [str(Path(sys.executable).parent / "schemathesis"), "run",
             f"{portal.url}/api/v1/schema/", "--checks", CHECKS,
             "--header", f"Authorization: Token {portal.tokens['fuzzer']}",
             # Logging out revokes the fuzzer's own token: every later operation would get
             # only 401s. The logout endpoints take no input; tests/test_api_token_login.py
             # drives them.
             "--exclude-name", "DELETE /api/v1/auth/token/",
             "--exclude-name", "DELETE /api/v1/auth/tokens/",
             "--max-examples", str(args.max_examples), "--seed", str(args.seed),
             "--phases", "coverage,fuzzing,stateful", "--workers", "1", "--request-timeout", "30",
             "--no-color", "--generation-database", "none", "--continue-on-failure"],
            cwd=ROOT, timeout=1800)
    finally:
        portal.stop()
        sandbox.stop()
    total, statuses, paths = count_requests(portal.access_log)
    server_errors = sum(count for status, count in statuses.items() if status >= 500)
    print(f"fuzz: {total} requests to {len(paths)} distinct paths; statuses "
          f"{dict(sorted(statuses.items()))}; 5xx: {server_errors}; "
          f"schemathesis exit {completed.returncode}")
    if completed.returncode != 0 or server_errors:
        return 1
    if total < args.min_requests:
        print(f"fuzz: fewer than {args.min_requests} requests were generated")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
