"""Signed checkpoints of the audit chain's head, kept outside the database.

The hash chain shows any change in the middle of the trail, but a chain cut short at its end,
emptied, or rewritten whole by someone holding AUDIT_KEY is still a valid chain. A
checkpoint records a head (sequence and hash) in a file under AUDIT_CHECKPOINT_DIR, signed
with AUDIT_KEY; `audit_verify` writes one each run and requires the chain to still contain
every earlier one. That holds against whoever can change the database (its owner can drop
the triggers) but not the checkpoint directory: keep it where the database's people and
roles cannot write (another host's mount, an object store with write-once retention).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.utils import timezone

from .audit import audit_key

_PREFIX = "checkpoint-"


@dataclass(frozen=True)
class Checkpoint:
    """One recorded head of the chain."""

    sequence: int
    hash: str
    written_at: str
    name: str


def _signature(sequence: int, head_hash: str, written_at: str) -> str:
    message = f"vodportal audit checkpoint|{sequence}|{head_hash}|{written_at}".encode()
    return hmac.new(audit_key(), message, hashlib.sha256).hexdigest()


def directory() -> Path:
    """Where checkpoints are kept (AUDIT_CHECKPOINT_DIR)."""
    return Path(settings.AUDIT_CHECKPOINT_DIR)


def write(sequence: int, head_hash: str) -> Checkpoint:
    """Record a head: a signed JSON file, written whole or not at all (rename)."""
    folder = directory()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    written_at = timezone.now().isoformat()
    name = f"{_PREFIX}{sequence:012d}-{written_at[:19].replace(':', '')}.json"
    body = {"sequence": sequence, "hash": head_hash, "written_at": written_at,
            "signature": _signature(sequence, head_hash, written_at)}
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as handle:
        json.dump(body, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(handle.name, folder / name)
    return Checkpoint(sequence, head_hash, written_at, name)


def load() -> tuple[list[Checkpoint], list[str]]:
    """Every checkpoint whose signature holds, oldest head first, and what is wrong with
    the files that are not (unreadable, or not signed with AUDIT_KEY: forged or altered)."""
    good, problems = [], []
    folder = directory()
    for path in sorted(folder.glob(f"{_PREFIX}*.json")) if folder.is_dir() else []:
        try:
            body = json.loads(path.read_text())
            checkpoint = Checkpoint(int(body["sequence"]), str(body["hash"]),
                                    str(body["written_at"]), path.name)
            signature = str(body["signature"])
        except (OSError, ValueError, KeyError, TypeError):
            problems.append(f"{path.name} cannot be read")
            continue
        expected = _signature(checkpoint.sequence, checkpoint.hash, checkpoint.written_at)
        if not hmac.compare_digest(signature, expected):
            problems.append(f"{path.name} is not signed with AUDIT_KEY")
            continue
        good.append(checkpoint)
    return sorted(good, key=lambda checkpoint: checkpoint.sequence), problems
