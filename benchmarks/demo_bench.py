"""The whole runbook on the local AWS at several pool sizes: wall time per step, and how it grows.

Each size runs `python -m cognito_migration run --env local --users N` in its own process (as `make demo`
and tests/test_end_to_end.py do), then reads that run's run.json: the seconds of each step, of starting the
local AWS and seeding the legacy pool, and of the wave of sign-ins before the report. "outside steps" is the
rest of the wall time (the runner's own start, imports, writing HTML copies).

    .venv/bin/python benchmarks/demo_bench.py                  # 2000, 20000, 100000 users
    .venv/bin/python benchmarks/demo_bench.py --sizes 2000,20000

Prints markdown tables; writes benchmarks/results/demo.json and demo_scaling.png (log-log, seconds per
step vs users).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "benchmarks" / "results" / "demo_scaling.png"
RESULTS = ROOT / "benchmarks" / "results" / "demo.json"
START = "local: start + seed"
AUDIT_READS = "01: of which reading the old pool"
OUTSIDE = "outside steps"


def run_once(users: int, replay_share: float | None, outputs: Path, root: Path = ROOT) -> dict[str, float]:
    """Seconds per step of one run (plus OUTSIDE and "total") of the runbook in ``root`` (its notebooks and its
    library, with this venv's packages); raises if the run failed."""
    command = [sys.executable, "-m", "cognito_migration", "run", "--env", "local", "--users", str(users)]
    if replay_share is not None:
        command += ["--replay-share", str(replay_share)]
    command += ["--outputs", str(outputs)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(root / "lib")  # before the editable install's path: this root's library
    started = time.perf_counter()
    done = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    (outputs / "runner.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"run at {users} users failed (exit {done.returncode}); see {outputs / 'runner.log'}")
    (run_dir,) = [p for p in (outputs / "local").iterdir() if (p / "run.json").exists()]
    manifest = json.loads((run_dir / "run.json").read_text())
    seconds = {START: float(manifest["local"]["seconds_to_start"])}
    # Entries without seconds (steps skipped or recorded without timing) add nothing to the table.
    seconds.update({s["step"]: float(s["seconds"]) for s in manifest["steps"] if s.get("seconds") is not None})
    seconds[OUTSIDE] = wall - sum(seconds.values())
    seconds["total"] = wall
    # Part of step 1, not added to the total: the API reads (users and memberships) against the audit's own work.
    seconds[AUDIT_READS] = float(json.loads((run_dir / "audit.json").read_text())["scan_seconds"])
    return seconds


def markdown_table(results: dict[int, dict[str, float]]) -> str:
    sizes = sorted(results)
    rows = _row_names(results)
    lines = ["| step | " + " | ".join(f"{n:,} users" for n in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
    for row in rows:
        cells = [f"{results[n][row]:.1f} s" if row in results[n] else "-" for n in sizes]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def growth_table(results: dict[int, dict[str, float]]) -> str:
    """Growth per 10x users between consecutive sizes: 10 ** slope of log(seconds) against log(users)."""
    sizes = sorted(results)
    pairs = list(zip(sizes, sizes[1:], strict=False))
    header = "| step | " + " | ".join(f"{a:,} -> {b:,}" for a, b in pairs) + " |"
    lines = [header, "|---" * (len(pairs) + 1) + "|"]
    for row in _row_names(results):
        cells = [_per_tenfold(results, row, a, b) for a, b in pairs]
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _per_tenfold(results: dict[int, dict[str, float]], row: str, a: int, b: int) -> str:
    ta, tb = results[a].get(row), results[b].get(row)
    if not ta or not tb or ta <= 0 or tb <= 0:
        return "-"
    slope = math.log(tb / ta) / math.log(b / a)
    return f"x{10**slope:.1f}"


def _row_names(results: dict[int, dict[str, float]]) -> list[str]:
    names: list[str] = []
    for seconds in results.values():
        names += [k for k in seconds if k not in names]
    # Steps first, in run order, then the rest of the wall time, then the total.
    return [n for n in names if n not in (OUTSIDE, "total", AUDIT_READS)] + [AUDIT_READS, OUTSIDE, "total"]


def chart(results: dict[int, dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(results)
    fig, ax = plt.subplots(figsize=(9.5, 4.4), dpi=90)
    for row in _row_names(results):
        points = [(n, results[n][row]) for n in sizes if results[n].get(row, 0) > 0]
        style = {"linewidth": 2.5, "color": "black"} if row == "total" else {"marker": "o"}
        ax.plot([p[0] for p in points], [p[1] for p in points], label=row, **style)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("users in the legacy pool")
    ax.set_ylabel("wall seconds")
    ax.set_title("make demo on the local AWS: seconds per step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000,100000", help="comma-separated user counts")
    parser.add_argument("--replay-share", type=float, default=None, help="share who sign in (runner default)")
    parser.add_argument("--chart", type=Path, default=CHART)
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the seconds per step are written")
    parser.add_argument("--from-json", action="store_true", help="no runs: tables and chart from --json")
    args = parser.parse_args(argv)
    results: dict[int, dict[str, float]] = {}
    if args.from_json:
        results = {int(n): row for n, row in json.loads(args.json.read_text()).items()}
    for users in () if args.from_json else (int(s) for s in args.sizes.split(",")):
        # Kept when the run fails (run_once exits naming its log); removed once its figures are read.
        tmp = Path(tempfile.mkdtemp(prefix=f"demo-bench-{users}-"))
        results[users] = run_once(users, args.replay_share, tmp)
        shutil.rmtree(tmp, ignore_errors=True)
        print(f"{users:,} users: {results[users]['total']:.1f} s", file=sys.stderr, flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({str(n): row for n, row in results.items()}, indent=1))
    print(markdown_table(results))
    print()
    print(growth_table(results))
    chart(results, args.chart)
    print(f"\nchart: {args.chart.relative_to(ROOT) if args.chart.is_relative_to(ROOT) else args.chart}")


if __name__ == "__main__":
    main()
