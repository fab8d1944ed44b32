"""What the benchmarks by pool size share: each size measured in a process of its own, so one size's memory
and caches do not colour the next. A script calls itself with ``--one SIZE`` and prints one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def in_own_process(script: str, size: int, *extra: str) -> dict[str, Any]:
    """The JSON line `script --one size` printed last; exits naming the script and size if it failed."""
    done = subprocess.run([sys.executable, script, "--one", str(size), *extra], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{Path(script).name} at {size:,} users failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
