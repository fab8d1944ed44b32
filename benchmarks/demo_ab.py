"""The demo's pool before and after a change: `make demo`'s run (2,000 users) at a base revision and at this
checkout, alternately, so the machine's load falls on both alike.

    nice -n 10 .venv/bin/python benchmarks/demo_ab.py --base c7df7f8^ --rounds 3

The base is checked out into a temporary git worktree and run with this venv's packages and its own library
and notebooks (demo_bench.run_once). Every run's seconds per step, and per step the median of each side and
their ratio, go to benchmarks/results/demo_ab.json; a markdown table is printed. Compare the medians' ratio,
not the seconds: the machines are shared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from demo_bench import ROOT, run_once

RESULTS = ROOT / "benchmarks" / "results" / "demo_ab.json"
ROWS = ("01_audit_old_pool", "05_report", "06_cutover", "total")


def revision(rev: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the revision to compare with, e.g. c7df7f8^")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    base, head = revision(args.base), revision("HEAD")
    work = Path(tempfile.mkdtemp(prefix="demo-ab-"))
    tree = work / "base"
    subprocess.run(["git", "worktree", "add", "--detach", str(tree), base], cwd=ROOT, check=True, capture_output=True)
    runs: dict[str, list[dict[str, float]]] = {base: [], head: []}
    try:
        for number in range(1, args.rounds + 1):
            for name, root in ((base, tree), (head, ROOT)):
                outputs = work / f"{name}-{number}"
                outputs.mkdir()
                runs[name].append(run_once(args.users, None, outputs, root))
                shutil.rmtree(outputs, ignore_errors=True)
                print(f"round {number} {name}: {runs[name][-1]['total']:.1f} s", file=sys.stderr, flush=True)
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)
    medians = {row: {name: statistics.median(r[row] for r in runs[name]) for name in runs} for row in ROWS}
    for row in ROWS:
        medians[row]["ratio"] = medians[row][head] / medians[row][base]
    args.json.write_text(
        json.dumps({"users": args.users, "base": base, "head": head, "runs": runs, "medians": medians}, indent=1) + "\n"
    )
    print(f"| step | {base} (median of {args.rounds}) | {head} | ratio |\n|---|---:|---:|---:|")
    for row in ROWS:
        m = medians[row]
        print(f"| {row} | {m[base]:.1f} s | {m[head]:.1f} s | x{m['ratio']:.2f} |")


if __name__ == "__main__":
    main()
