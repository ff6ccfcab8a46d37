"""The fault suite (`make chaos`, bench/chaos/) at a twentieth of its size, in CI.

Each scenario runs small against the deployed stack (gunicorn with 2 workers, PostgreSQL,
its own Redis, the sandbox): VOD faults of every kind, workers killed, database sessions
terminated, Redis stopped, one Idempotency-Key from ten clients, a callback storm. It fails
when anything is lost, doubled, stuck or mis-stated, the audit chain breaks, or a client
sees a 500 or an error without its shape or Retry-After.
"""

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.stack import ROOT

SCENARIOS = ("faults", "kill-workers", "db-terminate", "redis-down", "idempotency",
             "callbacks")

pytestmark = [
    pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                       reason="the fault suite runs the deployed stack on PostgreSQL"),
    pytest.mark.skipif(shutil.which("redis-server") is None,
                       reason="the fault suite starts a redis-server of its own"),
]


@pytest.mark.timeout(600)
def test_the_fault_suite_passes_every_scenario_at_small_scale():
    run = subprocess.run([sys.executable, "bench/chaos.py", "--scale", "0.05", "--seed", "7"],
                         cwd=ROOT, capture_output=True, text=True, timeout=540,
                         env={**os.environ, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"})
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    for scenario in SCENARIOS:
        # Each scenario's line, then its row in the closing table (the last one).
        lines = re.findall(rf"^\(\w\) {scenario} .*$", run.stdout, re.MULTILINE)
        assert lines and lines[-1].rstrip().endswith("PASS"), output[-6000:]
