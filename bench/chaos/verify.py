"""After a scenario: clear the faults, wait until the sandbox is idle, run vod_sync, then
compare what the sandbox holds with the upload rows, restricted to what the scenario made."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .services import Stack, sync_summary

TABLES = {"video": "uploads_videoupload", "image": "uploads_imageupload",
          "attached_media": "uploads_attachedmediaupload"}
NOT_IN_VOD = "NotFoundInVod"
NEVER_DELIVERED = "CredentialNeverDelivered"
EXAMPLES = 3

# What a row's status says about its media in VOD, after vod_sync: one rule per line,
# (row status, kinds it applies to or None for all, error_code it applies to or None for
# any, what the sandbox must show). "present": the media exists; "absent": it is gone;
# "Normal": it exists with Status Normal; "past Uploading": it exists and is not Uploading.
STATUS_RULES = (
    ("uploading", None, None, "present"),
    ("uploaded", None, None, "present"),
    ("uploaded", {"video"}, None, "past Uploading"),
    ("processing", None, None, "present"),
    ("ready", None, None, "Normal"),
    ("expired", None, None, "present"),
    ("failed", None, NOT_IN_VOD, "absent"),
    ("failed", None, NEVER_DELIVERED, "absent"),
    ("cancelled", None, None, "absent"),
)


@dataclass(frozen=True)
class Row:
    """One upload row, as read from the database."""

    id: str
    kind: str
    vod_id: str | None
    status: str
    error_code: str
    title: str


@dataclass(frozen=True)
class Snapshot:
    """Row ids and sandbox media ids before a scenario, to tell its own from the others'."""

    rows: frozenset[str]
    media: frozenset[str]
    calls: int


@dataclass
class Verdict:
    """What the comparison found: each list holds one line per problem."""

    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    audit_ok: bool = False
    audit_output: str = ""
    sync: str = ""
    new_rows: dict[str, Row] = field(default_factory=dict)
    new_media: dict[str, str] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        """Nothing lost, duplicated, stuck or mis-stated, and the audit chain verifies."""
        return self.audit_ok and not (self.lost or self.duplicated or self.stuck or self.wrong)


def read_rows(stack: Stack) -> dict[str, Row]:
    """Every upload row of the three kinds, by id."""
    rows = {}
    with stack.db() as connection:
        for kind, table in TABLES.items():
            for row_id, vod_id, status, error_code, title in connection.execute(
                    f"SELECT id, vod_id, status, error_code, title FROM {table}"):
                rows[str(row_id)] = Row(str(row_id), kind, vod_id, status, error_code, title)
    return rows


def snapshot(stack: Stack) -> Snapshot:
    """What exists before a scenario."""
    return Snapshot(rows=frozenset(read_rows(stack)),
                    media=frozenset(stack.sandbox.media_ids()),
                    calls=len(stack.sandbox.calls()))


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def _retry_pending(notifications: list[dict]) -> bool:
    """Whether the sandbox will try a notification again (the last try of some event
    failed, was sent, and was not its third)."""
    last: dict[tuple, dict] = {}
    for note in notifications:
        last[(note["media_id"], note["event_type"], str(note.get("payload")))] = note
    return any(not note["delivered"] and note["attempt"] < 3
               and not str(note.get("error") or "").startswith("not sent")
               for note in last.values())


def wait_idle(stack: Stack, search_lag: float, timeout: float = 90.0) -> str:
    """Wait until the sandbox is idle: no VOD call in flight (a held `timeout` call ends
    after timeout_hold_seconds), no notification retry due, nothing new in the call log or
    notifications over one poll interval (longer than the 1 s retry interval and the
    transcoding delay), and `search_lag` past both the newest call and the start of the wait
    (the scenario's last request). '' or why it gave up."""
    deadline = time.monotonic() + timeout
    # Rows may be written without any VOD call (Redis or the database gone): the lag also
    # counts from now, after the scenario's last request.
    not_before = time.monotonic() + search_lag
    previous = None
    while time.monotonic() < deadline:
        calls = stack.sandbox.calls()
        notifications = stack.sandbox.notifications()
        in_flight = sum(1 for call in calls if call["status"] is None and call["fault"] is None)
        seen = (len(calls), len(notifications))
        lag_left = 0.0
        if search_lag and calls:
            newest = _parse_time(calls[-1].get("time"))
            if newest is not None:
                age = (datetime.now(UTC) - newest).total_seconds()
                lag_left = max(0.0, search_lag - age)
        lag_left = max(lag_left, not_before - time.monotonic())
        busy = in_flight or _retry_pending(notifications) or lag_left > 0
        if not busy and seen == previous:
            return ""
        previous = None if busy else seen
        time.sleep(max(1.2, min(lag_left, 5.0)))
    return f"sandbox not idle after {timeout:.0f} s"


def settle(stack: Stack, search_lag: float) -> str:
    """Clear faults, wait for idle, run `vod_sync --grace 0` (again if it reports
    failures); returns a short account ('sync 120 checked, 30 changed, 0 failed')."""
    stack.sandbox.clear_faults()
    notes = []
    waited = wait_idle(stack, search_lag)
    if waited:
        notes.append(waited)
    for attempt in (1, 2):
        result = stack.manage("vod_sync", "--grace", "0")
        summary = sync_summary(result.stdout)
        if result.returncode != 0 or summary is None:
            notes.append(f"vod_sync run {attempt} exited {result.returncode}: "
                         f"{(result.stderr or result.stdout).strip()[-300:]}")
            continue
        checked, changed, failed = summary
        notes.append(f"sync#{attempt} {checked} checked, {changed} changed, {failed} failed")
        if failed == 0:
            break
    return "; ".join(notes)


def _media_label(stack: Stack, media_id: str, cache: dict) -> str:
    media = _fetch(stack, media_id, cache)
    if media is None:
        return f"{media_id} (gone)"
    title = media.get("Title") or (media.get("Params") or {}).get("Title")
    return f"{media.get('Kind')} {media_id} status {media.get('Status')} title {title!r}"


def _fetch(stack: Stack, media_id: str, cache: dict) -> dict | None:
    if media_id not in cache:
        cache[media_id] = stack.sandbox.media(media_id)
    return cache[media_id]


def _rule_problem(stack: Stack, row: Row, expectation: str, present: bool,
                  cache: dict) -> str:
    """'' when the sandbox agrees with the rule, else what it shows instead."""
    if expectation == "absent":
        return "" if not present else "media still in VOD"
    if not present:
        return "media gone from VOD"
    if expectation == "present":
        return ""
    media = _fetch(stack, row.vod_id, cache)
    status = media.get("Status") if media else None
    if expectation == "Normal" and status != "Normal":
        return f"VOD status {status}"
    if expectation == "past Uploading" and status == "Uploading":
        return "VOD status Uploading"
    return ""


def wrong_statuses(stack: Stack, rows: dict[str, Row], media: dict[str, str],
                   cache: dict) -> list[str]:
    """Rows whose status contradicts the sandbox, by STATUS_RULES."""
    problems = []
    for row in rows.values():
        for status, kinds, error_code, expectation in STATUS_RULES:
            if row.status != status or (kinds and row.kind not in kinds) \
                    or (error_code and row.error_code != error_code):
                continue
            if not row.vod_id:
                if expectation != "absent":  # nothing to look up: a row without an id
                    problems.append(f"{row.kind} row {row.id} {row.status} without a vod_id")
                break
            problem = _rule_problem(stack, row, expectation, row.vod_id in media, cache)
            if problem:
                problems.append(f"{row.kind} {row.vod_id} row {row.status}"
                                f"{'/' + row.error_code if row.error_code else ''}"
                                f" ({row.title!r}): {problem}")
                break
    return problems


def compare(stack: Stack, before: Snapshot, sync: str) -> Verdict:
    """The sandbox against the database for the rows and media made since `before`, and
    the audit chain."""
    rows = read_rows(stack)
    media = stack.sandbox.media_ids()
    cache: dict = {}
    verdict = Verdict(sync=sync)
    verdict.new_rows = {row_id: row for row_id, row in rows.items()
                        if row_id not in before.rows}
    verdict.new_media = {media_id: kind for media_id, kind in media.items()
                         if media_id not in before.media}
    on_rows = Counter(row.vod_id for row in rows.values() if row.vod_id)
    verdict.lost = [f"{_media_label(stack, media_id, cache)} is on no row"
                    for media_id in sorted(verdict.new_media) if media_id not in on_rows]
    ours = {row.vod_id for row in verdict.new_rows.values() if row.vod_id}
    verdict.duplicated = [f"{vod_id} on {count} rows" for vod_id, count in on_rows.items()
                          if count > 1 and vod_id in ours]
    verdict.stuck = [f"{row.kind} row {row.id} ({row.title!r}) still requesting"
                     for row in verdict.new_rows.values() if row.status == "requesting"]
    verdict.wrong = wrong_statuses(stack, verdict.new_rows, media, cache)
    audit = stack.manage("audit_verify")
    verdict.audit_ok = audit.returncode == 0
    lines = (audit.stdout + audit.stderr).strip().splitlines()
    verdict.audit_output = lines[-1] if lines else f"audit_verify exited {audit.returncode}"
    return verdict
