"""Running the runbook's command line as an operator would: a fresh process, no AWS settings inherited."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tests belong to


def run_runbook(
    *args: str, extra_env: dict[str, str] | None = None, timeout: int = 600
) -> subprocess.CompletedProcess[str]:
    """``python -m cognito_migration run ARGS`` from the project's folder, its output captured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "cognito_migration", "run", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
