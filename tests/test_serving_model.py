"""The serving model under real VOD latency (gunicorn.conf.py as deployed: gevent workers):
one worker serves many requests at once, with few database connections. A request hands its
connection back to the worker's pool while it waits on VOD, so requests waiting on a slow
VOD do not hold, or wait for, a connection."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import SANDBOX_ACCESS_KEY_ID, SANDBOX_ACCESS_KEY_SECRET, wait_until
from tests.stack import fresh_database_url, start_portal

DATABASE_URL = os.environ.get("DATABASE_URL", "")
pytestmark = pytest.mark.skipif(not DATABASE_URL.startswith("postgres"),
                                reason="the connection pool is PostgreSQL's (psycopg_pool)")

WORKERS, CONNECTIONS, POOL = 1, 32, 2
IN_FLIGHT = 24
USERS = [f"pooled{index}" for index in range(4)]


def _start(sandbox_server, tmp_path_factory, name: str, **env: str):
    """One gevent worker (the deployed worker class: gunicorn.conf.py's default) taking up to
    32 requests at once, on a fresh database `name`, with `env` on top."""
    workdir = tmp_path_factory.mktemp(name)
    return start_portal(
        sandbox_endpoint=sandbox_server.endpoint, access_key_id=SANDBOX_ACCESS_KEY_ID,
        access_key_secret=SANDBOX_ACCESS_KEY_SECRET,
        database_url=fresh_database_url(DATABASE_URL, name, workdir),
        workdir=workdir, users=USERS,
        extra_env={"GUNICORN_WORKERS": str(WORKERS),
                   "GUNICORN_WORKER_CONNECTIONS": str(CONNECTIONS),
                   "API_CREDENTIAL_RATE": "100000/minute", "VOD_QPS_LIMIT": "100000", **env})


@pytest.fixture(scope="module")
def portal(sandbox_server, tmp_path_factory):
    """A pool of 2 connections that makes a request give up after 1.5 s without one (503
    database_unavailable): half as long as a request waits on VOD here, and ample for the
    database work alone on a loaded machine."""
    portal = _start(sandbox_server, tmp_path_factory, "vodportal_serving",
                    DATABASE_POOL_SIZE=str(POOL), DATABASE_POOL_TIMEOUT="1.5")
    yield portal
    portal.stop()


@pytest.fixture(scope="module")
def unpooled_portal(sandbox_server, tmp_path_factory):
    """The pool turned off (DATABASE_POOL_SIZE=0, as behind PgBouncer)."""
    portal = _start(sandbox_server, tmp_path_factory, "vodportal_serving_unpooled",
                    DATABASE_POOL_SIZE="0")
    yield portal
    portal.stop()


def _issue_at_once(portal, count: int, sample: Callable[[], int]
                   ) -> tuple[list[requests.Response], list[int]]:
    """`count` credential requests sent together: their answers, and `sample()` taken again
    and again until the last is answered."""
    start = threading.Barrier(count + 1)

    def issue(index: int) -> requests.Response:
        start.wait(timeout=30)
        return requests.post(f"{portal.url}/api/v1/videos/", timeout=30,
                             json={"title": f"pooled {index}", "file_name": "p.mp4"},
                             headers={"Authorization": f"Token {portal.tokens[USERS[index % 4]]}"})

    samples: list[int] = []
    with ThreadPoolExecutor(max_workers=count) as pool:
        answers = [pool.submit(issue, index) for index in range(count)]
        start.wait(timeout=30)
        while not all(answer.done() for answer in answers):
            samples.append(sample())
        return [answer.result() for answer in answers], samples


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
    answers, counts = _issue_at_once(portal, IN_FLIGHT, lambda: backends(portal))

    assert [answer.status_code for answer in answers] == [201] * IN_FLIGHT, [
        answer.text for answer in answers if answer.status_code != 201][:3]
    assert sandbox.count_calls("CreateUploadVideo") == IN_FLIGHT
    assert counts and max(counts) <= WORKERS * POOL, counts


def test_without_the_pool_each_request_closes_its_connection(unpooled_portal, sandbox):
    """Pool off: a gevent worker runs each request in a greenlet of its own, so a persistent
    connection (Django's CONN_MAX_AGE, kept per thread) would never be used again. Each
    request's is closed at its end: once the requests are answered, PostgreSQL's
    connections for the portal fall back to none (the audit sealer's closes after its pass)."""
    sandbox.faults.add(action="CreateUploadVideo", latency=0.5)
    answers, counts = _issue_at_once(unpooled_portal, 12, lambda: backends(unpooled_portal))

    assert [answer.status_code for answer in answers] == [201] * 12
    assert counts and max(counts) <= 12 + 1, counts  # the requests' and the sealer's
    wait_until(lambda: backends(unpooled_portal) == 0, timeout=10,
               what="the portal's connections to close")
