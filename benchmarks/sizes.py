"""What the benchmarks by pool size share: each size measured in a process of its own, so one size's memory
and caches do not colour the next. A script calls itself with ``--one SIZE`` and prints one JSON line."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any


def parser(doc: str, default_sizes: str) -> argparse.ArgumentParser:
    """The options every benchmark by size takes: --sizes (comma-separated user counts) and the internal --one."""
    parsed = argparse.ArgumentParser(description=doc.splitlines()[0])
    parsed.add_argument("--sizes", type=_sizes, default=_sizes(default_sizes), help="comma-separated user counts")
    parsed.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    return parsed


def by_size(
    args: argparse.Namespace,
    script: str,
    measure: Callable[[int], dict[str, Any]],
    *extra: str,
    results: Path | None = None,
) -> list[dict[str, Any]] | None:
    """With --one: measures that size here and prints its JSON line (None back). Otherwise each of --sizes in
    its own process (`script --one N *extra`), each row shown as it comes and, with `results`, written there
    after every size (a run stopped early keeps what it measured)."""
    if args.one:
        print(json.dumps(measure(args.one)))
        return None
    rows = []
    for size in args.sizes:
        rows.append(in_own_process(script, size, *extra))
        print(rows[-1], file=sys.stderr, flush=True)
        if results is not None:
            results.parent.mkdir(parents=True, exist_ok=True)
            results.write_text(json.dumps({"rows": rows}, indent=1))
    return rows


def in_own_process(script: str, size: int, *extra: str) -> dict[str, Any]:
    """The JSON line `script --one size` printed last; exits naming the script and size if it failed."""
    done = subprocess.run([sys.executable, script, "--one", str(size), *extra], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{Path(script).name} at {size:,} users failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _sizes(text: str) -> list[int]:
    return [int(n) for n in text.split(",")]
