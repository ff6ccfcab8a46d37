"""`make chaos`: the fault suite (see bench/chaos/ and bench/README.md, "Fault suite").

    ALIBABA_CLOUD_ECS_METADATA_DISABLED=true .venv/bin/python bench/chaos.py \\
        [--scenarios a,b,c,d,e,f] [--scale 0.2] [--seed N] [--keep]

Exit status: 0 when every scenario is clean, 1 when one lost, duplicated, left stuck or
mis-stated an upload, broke the audit chain or answered a 500 or a malformed error, 2 when
the harness itself failed, 130 on Ctrl-C.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This file's directory comes first on sys.path; the project root must too, for `tests`
# (tests/stack.py) and for `bench.chaos`, the package beside this file.
sys.path.insert(0, str(ROOT))
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"

from bench.chaos.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
