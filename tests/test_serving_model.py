"""The serving model under real VOD latency (gunicorn.conf.py as deployed: gevent workers):
one worker serves many requests at once, with few database connections. A request hands its
connection back to the worker's pool while it waits on VOD, so requests waiting on a slow
VOD do not hold, or wait for, a connection."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET
from tests.stack import fresh_database_url, start_portal

DATABASE_URL = os.environ.get("DATABASE_URL", "")
pytestmark = pytest.mark.skipif(not DATABASE_URL.startswith("postgres"),
                                reason="the connection pool is PostgreSQL's (psycopg_pool)")

WORKERS, CONNECTIONS, POOL = 1, 32, 2
IN_FLIGHT = 24
USERS = [f"pooled{index}" for index in range(4)]


@pytest.fixture(scope="module")
def portal(sandbox_server, tmp_path_factory):
    """One gevent worker (the deployed worker class: gunicorn.conf.py's default) taking up to
    32 requests at once, and a pool of 2 connections that makes a request give up after
    1.5 s without one (503 database_unavailable): half as long as a request waits on VOD
    here, and ample for the database work alone on a loaded machine."""
    workdir = tmp_path_factory.mktemp("serving")
    portal = start_portal(
        sandbox_endpoint=sandbox_server.endpoint, access_key_id=SANDBOX_ACCESS_KEY_ID,
        access_key_secret=SANDBOX_ACCESS_KEY_SECRET,
        database_url=fresh_database_url(DATABASE_URL, "vodportal_serving", workdir),
        workdir=workdir, users=USERS,
        extra_env={"GUNICORN_WORKERS": str(WORKERS),
                   "GUNICORN_WORKER_CONNECTIONS": str(CONNECTIONS),
                   "DATABASE_POOL_SIZE": str(POOL), "DATABASE_POOL_TIMEOUT": "1.5",
                   "API_CREDENTIAL_RATE": "100000/minute", "VOD_QPS_LIMIT": "100000"})
    yield portal
    portal.stop()


def backends(portal) -> int:
    """Connections PostgreSQL holds for the portal's database (this query's excluded)."""
    import psycopg

    name = portal.env["DATABASE_URL"].rsplit("/", 1)[1]
    with psycopg.connect(portal.env["DATABASE_URL"]) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> "
            "pg_backend_pid()", [name]).fetchone()[0]


def test_requests_waiting_on_vod_hold_no_database_connection(portal, sandbox):
    """24 requests wait on VOD for 3 s each, at once, in one worker with 2 connections:
    every one is answered, and PostgreSQL never sees more than the pool's connections. A
    worker that served one request at a time would need 72 s (the clients give up at 30); a
    request that held its connection through the VOD call would keep the others waiting
    past the pool's timeout."""
    sandbox.faults.add(action="CreateUploadVideo", latency=3.0)
    start = threading.Barrier(IN_FLIGHT + 1)
    counts: list[int] = []

    def issue(index: int) -> requests.Response:
        start.wait(timeout=30)
        return requests.post(f"{portal.url}/api/v1/videos/", timeout=30,
                             json={"title": f"pooled {index}", "file_name": "p.mp4"},
                             headers={"Authorization": f"Token {portal.tokens[USERS[index % 4]]}"})

    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        answers = [pool.submit(issue, index) for index in range(IN_FLIGHT)]
        start.wait(timeout=30)
        while not all(answer.done() for answer in answers):
            counts.append(backends(portal))
        statuses = [answer.result().status_code for answer in answers]

    assert statuses == [201] * IN_FLIGHT, [answer.result().text for answer in answers
                                           if answer.result().status_code != 201][:3]
    assert sandbox.count_calls("CreateUploadVideo") == IN_FLIGHT
    assert counts and max(counts) <= WORKERS * POOL, counts
