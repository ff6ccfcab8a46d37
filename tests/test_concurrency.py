"""200 concurrent issuances through gunicorn against PostgreSQL and the sandbox.

What only real concurrency shows: under parallel requests (several gunicorn workers, each
with threads, several users) every VideoId the sandbox issued is in the database exactly
once, on the row whose id is its ReferenceId, with exactly one audit event, and the audit
chain still verifies (the workers' sealers chain events one at a time, under a PostgreSQL
advisory lock). The second
test adds injected faults and the gateway's repeats, then vod_sync: still nothing lost,
nothing twice, nothing left `requesting`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET
from tests.stack import ROOT, fresh_database_url, start_portal

DATABASE_URL = os.environ.get("DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    not DATABASE_URL.startswith("postgres"),
    reason="the concurrency test needs PostgreSQL (DATABASE_URL=postgres://...): SQLite "
           "serializes every writer, so there is no race to prove anything about")

CONCURRENT = 200
USERS = [f"concurrent{index}" for index in range(10)]


@pytest.fixture(scope="module")
def portal(sandbox_server, tmp_path_factory):
    """gunicorn (2 workers x 8 threads) on a database of its own; limits out of the way."""
    workdir = tmp_path_factory.mktemp("concurrency")
    portal = start_portal(
        sandbox_endpoint=sandbox_server.endpoint, access_key_id=SANDBOX_ACCESS_KEY_ID,
        access_key_secret=SANDBOX_ACCESS_KEY_SECRET,
        database_url=fresh_database_url(DATABASE_URL, "vodportal_concurrency", workdir),
        workdir=workdir, users=USERS,
        extra_env={"API_CREDENTIAL_RATE": "100000/minute", "VOD_QPS_LIMIT": "100000",
                   "VOD_READ_TIMEOUT_MS": "500", "VOD_RETRY_BACKOFF_MS": "10",
                   "VOD_MAX_ATTEMPTS": "2"})
    yield portal
    portal.stop()


def issue_all(portal, label: str, count: int = CONCURRENT) -> list[requests.Response]:
    """`count` POST /videos/ released at once, one thread each, users taking turns; titles
    start with `label`, so each test finds its own rows."""
    start = threading.Barrier(count)

    def issue(index: int) -> requests.Response:
        token = portal.tokens[USERS[index % len(USERS)]]
        start.wait(timeout=60)
        return requests.post(f"{portal.url}/api/v1/videos/", timeout=60,
                             json={"title": f"{label} {index}", "file_name": f"c{index}.mp4"},
                             headers={"Authorization": f"Token {token}"})

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(issue, range(count)))


def query(portal, sql: str, *params) -> list[tuple]:
    import psycopg

    with psycopg.connect(portal.env["DATABASE_URL"]) as connection:
        return connection.execute(sql, params).fetchall()


def rows_of(portal, label: str) -> list[tuple]:
    """(id, vod_id, status) of the rows one test made."""
    return query(portal, "SELECT id, vod_id, status FROM uploads_videoupload "
                         "WHERE title LIKE %s", f"{label} %")


def events_of(portal, label: str, action: str) -> list[tuple]:
    """(target_vod_id, target_pk) of one action's audit events on one test's rows."""
    return query(portal, "SELECT e.target_vod_id, e.target_pk FROM uploads_auditevent e "
                         "JOIN uploads_videoupload v ON e.target_pk = v.id::text "
                         "WHERE v.title LIKE %s AND e.action = %s", f"{label} %", action)


def manage(portal, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=portal.env,
                          capture_output=True, text=True, timeout=120)


def assert_chain_verifies(portal) -> None:
    """audit_verify, as an operator runs it, over every event of the portal's database (it
    seals what the workers' sealers have not yet, then verifies)."""
    verified = manage(portal, "audit_verify")
    assert verified.returncode == 0, verified.stderr + verified.stdout
    events = query(portal, "SELECT count(*), min(sequence), max(sequence) "
                           "FROM uploads_auditevent")[0]
    assert events[0] and events[1:] == (1, events[0]), "sequence numbers without gaps"
    assert f"audit chain OK: {events[0]} events" in verified.stdout


def test_every_issued_video_is_recorded_once_with_its_audit_event(portal, sandbox):
    responses = issue_all(portal, "plain")

    assert Counter(response.status_code for response in responses) == {201: CONCURRENT}, \
        [response.text for response in responses if response.status_code != 201][:3]
    answered = [response.json()["video_id"] for response in responses]
    issued = sandbox.state()["videos"]  # the sandbox fixture started this test empty
    assert len(issued) == len(set(issued)) == CONCURRENT
    assert set(answered) == set(issued)
    rows = rows_of(portal, "plain")
    assert len(rows) == CONCURRENT
    assert Counter(vod_id for _, vod_id, _ in rows) == Counter(issued)
    for row_id, vod_id, status in rows:
        assert status == "uploading"
        assert sandbox.get_video(vod_id)["ReferenceId"] == row_id.hex
    events = events_of(portal, "plain", "video.credential.issued")
    assert Counter(vod_id for vod_id, _ in events) == Counter(issued)
    assert {pk for _, pk in events} == {str(row_id) for row_id, _, _ in rows}
    assert_chain_verifies(portal)


def test_under_faults_and_repeats_nothing_is_lost_or_doubled(portal, sandbox):
    # About a fifth of the calls fail in one of the ways VOD can, some after VOD acted; the
    # gateway repeats each video call once (VOD_MAX_ATTEMPTS=2).
    for fault in ({"code": "InternalError", "apply_after": True},
                  {"code": "ServiceUnAvailable"}, {"body": "truncated"},
                  {"body": "non_json"}, {"reset": True, "apply_after": True},
                  {"reset": True}, {"timeout": True, "apply_after": True}):
        sandbox.faults.add(action="*", rate=0.03, **fault)

    responses = issue_all(portal, "faulty")

    statuses = Counter(response.status_code for response in responses)
    assert set(statuses) <= {201, 502, 503, 504}, statuses
    faulted = Counter(call["fault"] or call["code"] for call in sandbox.calls)
    assert sum(count for fault, count in faulted.items() if fault) >= 10, faulted
    print(f"answers {dict(statuses)}; VOD calls {dict(faulted)}")
    sandbox.faults.clear()
    synced = manage(portal, "vod_sync", "--grace", "0")
    assert synced.returncode == 0, synced.stderr

    issued = sandbox.state()["videos"]
    assert len(issued) == len(set(issued)) <= CONCURRENT
    rows = rows_of(portal, "faulty")
    assert len(rows) == CONCURRENT
    assert "requesting" not in {status for _, _, status in rows}
    recorded = Counter(vod_id for _, vod_id, _ in rows if vod_id)
    assert all(count == 1 for count in recorded.values()), "no VideoId is on two rows"
    assert set(issued) <= set(recorded), "every VideoId VOD holds is on a row"
    for row_id, vod_id, status in rows:
        if vod_id in issued:
            assert status == "uploading"
            assert sandbox.get_video(vod_id)["ReferenceId"] == row_id.hex
        else:
            # Never made, or made but never delivered and so deleted by vod_sync.
            assert status == "failed"
    for response in responses:
        if response.status_code == 201:
            assert response.json()["video_id"] in issued
    issued_events = events_of(portal, "faulty", "video.credential.issued")
    assert Counter(vod_id for vod_id, _ in issued_events) == Counter(
        response.json()["video_id"] for response in responses if response.status_code == 201)
    failed_rows = {pk for _, pk in events_of(portal, "faulty", "video.credential.failed")}
    assert len(failed_rows) == CONCURRENT - statuses[201]
    assert_chain_verifies(portal)
