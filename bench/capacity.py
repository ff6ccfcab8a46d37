"""`make bench-capacity`: the portal's capacity under VOD latency (see bench/capacity/ and
bench/README.md, "Capacity under VOD latency (issue 13)").

    ALIBABA_CLOUD_ECS_METADATA_DISABLED=true .venv/bin/python bench/capacity.py \\
        [--duration 20] [--parts sweep,overload,peer] [--workers N --threads N]

Exit status: 0 when every verdict passes, 1 when one fails.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file's directory comes first on sys.path; the project root must too, for `tests`
# (tests/stack.py) and `bench.capacity`, the package beside this file.
sys.path.insert(0, str(ROOT))
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

from bench.capacity.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
