"""Fuzz the running portal below the schema: raw HTTP bytes over a socket.

schemathesis sends requests its schema can describe. This sends what it cannot: header
values with bytes no encoding allows, absurd or lying Content-Length, bodies that are not
UTF-8, JSON nested 100,000 deep, numbers beyond any integer type, NaN, NUL characters in
every field, oversized bodies, and callbacks with well-signed timestamps and broken fields.
Each request is built from a seeded random mix of such parts and sent to every endpoint
(with and without a valid token). Fails on any 5xx; prints counts per status.

    .venv/bin/python scripts/fuzz_raw_http.py [--requests 3000] [--seed 20261201]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import socket
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

from tests.stack import fresh_database_url, start_fuzz_target  # noqa: E402

CALLBACK_URL = "https://example.invalid/api/v1/vod/events/"
CALLBACK_KEY = "fuzz-callback-key"
ENDPOINTS = ("/api/v1/videos/", "/api/v1/images/", "/api/v1/attached-media/",
             "/api/v1/vod/events/")
# The HTML pages are left out: this stack runs without collectstatic, so they cannot render.
READS = ("/api/v1/videos/?status=", "/api/v1/videos/", "/api/v1/images/x/",
         "/api/v1/videos/0123456789abcdef0123456789abcdef/refresh/", "/api/v1/schema/",
         "/readyz", "/healthz")
FIELDS = ("title", "file_name", "file_size", "description", "tags", "cate_id", "cover_url",
          "extend", "image_type", "image_ext", "original_file_name", "business_type",
          "media_ext", "cate_ids", "EventType", "VideoId", "ImageId", "AttachedMediaId",
          "Size", "Status")
# Values no schema generator sends: text with NULs, lone surrogates (escaped), control and
# bidi characters, numbers past any integer type, NaN and Infinity, deep structures.
NASTY_VALUES = ('"a\\u0000b"', '"\\ud800"', '"\\u202e gpj.exe"', '"\\u0007\\u001b[2J"',
                str(2**70), str(-2**70), "1e400", "-1e400", "NaN", "Infinity", "-0.0",
                "[" * 50 + "]" * 50, '{"a":' * 30 + "1" + "}" * 30, '""', "null", "true",
                '"' + "x" * 70_000 + '"', '"clip.mp4"', '"default"', '"png"', '"watermark"',
                '"FileUploadComplete"', '"0123456789abcdef0123456789abcdef"', "4096")


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(8)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))  # not UTF-8
    if kind == 1:
        depth = rng.choice((1_000, 100_000))
        return b"[" * depth + b"]" * depth
    if kind == 2:
        return b"\xef\xbb\xbf" + json.dumps({"title": "bom", "file_name": "a.mp4"}).encode()
    if kind == 3:
        return b"x" * rng.choice((70_000, 3 * 1024 * 1024))
    pairs = [f'"{rng.choice(FIELDS)}": {rng.choice(NASTY_VALUES)}'
             for _ in range(rng.randrange(1, 6))]
    text = "{" + ", ".join(pairs) + "}"
    return text.encode("utf-8", errors="surrogatepass")


def _header_value(rng: random.Random, valid: str) -> bytes:
    kind = rng.randrange(6)
    if kind == 0:
        return valid.encode()
    if kind == 1:
        return valid.encode() + bytes([rng.randrange(128, 256)]) * rng.randrange(1, 4)
    if kind == 2:
        return b"Token \xff\xfe" + os.urandom(8).hex().encode()
    if kind == 3:
        return b"Token vodp_" + b"\x00" + b"a" * 20
    if kind == 4:
        return b"Token " + b"A" * rng.choice((10, 10_000))
    return b"Bearer " + os.urandom(12).hex().encode()


def build_request(rng: random.Random, host: str, token: str) -> bytes:
    """One request: a method and path, headers valid or broken, a body valid or broken."""
    if rng.random() < 0.2:
        path = rng.choice(READS) + rng.choice(("", "%ff", "\u202e".encode().hex(), "?q=%00"))
        method = rng.choice(("GET", "POST", "DELETE", "PUT"))
    else:
        path, method = rng.choice(ENDPOINTS), "POST"
    body = _body(rng)
    headers = [b"Host: " + host.encode(), b"Connection: close",
               b"Authorization: " + _header_value(rng, f"Token {token}"),
               b"Content-Type: " + rng.choice((b"application/json", b"application/json; "
                                               b"charset=latin-1", b"text/plain",
                                               b"application/json\xff", b"multipart/form-data"))]
    length = len(body)
    headers.append(b"Content-Length: " + rng.choice(
        (str(length).encode(), str(length).encode(), str(max(0, length - 5)).encode(),
         b"-1", b"99999999999999999999", b"abc")))
    if path.startswith("/api/v1/vod/events/"):
        timestamp = str(int(time.time()) + rng.choice((0, 0, 0, -400, 10**12)))
        signature = hashlib.md5(f"{CALLBACK_URL}|{timestamp}|{CALLBACK_KEY}".encode()
                                ).hexdigest()
        headers.append(b"X-VOD-TIMESTAMP: " + _header_value(rng, timestamp))
        headers.append(b"X-VOD-SIGNATURE: " + rng.choice((signature.encode(), b"\xff" * 32)))
    if rng.random() < 0.1:
        headers.append(b"X-Request-ID: " + bytes(rng.randrange(1, 256) for _ in range(40)))
    head = f"{method} {path} HTTP/1.1\r\n".encode() + b"\r\n".join(headers) + b"\r\n\r\n"
    return head + body


def send(address: tuple[str, int], payload: bytes) -> int | None:
    """The response's status, or None when the server closed without one."""
    with socket.create_connection(address, timeout=30) as conn:
        try:
            conn.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer (413, 400) before it has read everything
        try:
            first = conn.recv(64)
        except (ConnectionResetError, socket.timeout):
            return None
    parts = first.split(b" ", 2)
    return int(parts[1]) if len(parts) >= 2 and parts[1].isdigit() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=20261201)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="vodportal-rawfuzz-"))
    sandbox, portal = start_fuzz_target(
        # FUZZ_DATABASE_URL=postgres://...: a fresh PostgreSQL database; else SQLite.
        database_url=fresh_database_url(os.environ.get("FUZZ_DATABASE_URL", ""),
                                        "vodportal_rawfuzz", workdir),
        workdir=workdir,
        extra_env={"API_CREDENTIAL_RATE": "1000000/minute", "VOD_QPS_LIMIT": "0",
                   "VOD_CALLBACK_REFUSED_RATE": "1000000/minute",
                   "VOD_CALLBACK_URL": CALLBACK_URL, "VOD_CALLBACK_AUTH_KEYS": CALLBACK_KEY})
    rng = random.Random(args.seed)
    host, port = portal.url.removeprefix("http://").split(":")
    statuses: Counter = Counter()
    failures: list[str] = []
    try:
        for _ in range(args.requests):
            payload = build_request(rng, f"{host}:{port}", portal.tokens["fuzzer"])
            status = send((host, int(port)), payload)
            statuses[status] += 1
            if status is not None and status >= 500 and len(failures) < 5:
                failures.append(payload[:300].decode("latin-1"))
    finally:
        portal.stop()
        sandbox.stop()
    server_errors = sum(count for status, count in statuses.items()
                        if status is not None and status >= 500)
    shown = {str(key): value for key, value in sorted(statuses.items(), key=lambda kv: str(kv))}
    print(f"raw fuzz: {args.requests} requests, seed {args.seed}; statuses {shown}; "
          f"5xx: {server_errors}")
    for failure in failures:
        print("  5xx for:", failure.replace("\r\n", " | ")[:300])
    return 1 if server_errors else 0


if __name__ == "__main__":
    sys.exit(main())
