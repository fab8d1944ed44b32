"""How each benchmark figure grows with the pool's size: one table and one chart from the benchmarks' results.

    .venv/bin/python benchmarks/growth.py

Reads benchmarks/results/{scan,report,seed,demo}.json (written by scan_bench.py, report_bench.py,
seed_bench.py and demo_bench.py; a missing file leaves its rows out), prints a markdown table with each
figure at each size and its growth per 10x users between the two largest sizes measured, and writes
benchmarks/results/growth.png.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
CHART = RESULTS / "growth.png"

Series = dict[int, float]  # users -> value


def load(results: Path = RESULTS) -> dict[str, Any]:
    found = {}
    for name in ("scan", "report", "seed", "demo"):
        path = results / f"{name}.json"
        if path.exists():
            found[name] = json.loads(path.read_text())
    return found


def figures(found: dict[str, Any]) -> list[tuple[str, str, Series]]:
    """(figure, unit, values by users), in the order of the table."""
    rows: list[tuple[str, str, Series]] = []
    if "scan" in found:
        for reader in ("serial paginator", "16 shards, 8 readers"):
            scans = [r for r in found["scan"]["rows"] if r["reader"] == reader]
            rows.append((f"scan, {reader}: users/s", "users/s", {r["users"]: r["users/s"] for r in scans}))
            share = {r["users"]: float(r["share of budget ceiling"].rstrip("%")) for r in scans}
            rows.append((f"scan, {reader}: share of the budget's ceiling", "%", share))
    if "report" in found:
        report = found["report"]["rows"]
        rows.append(("report comparison (classify + summary)", "s", {r["users"]: r["seconds"] for r in report}))
        rows.append(("report process peak RSS", "MB", {r["users"]: r["max_rss_mb"] for r in report}))
    if "seed" in found:
        seed = found["seed"]["rows"]
        rows.append(("seeding the legacy pool", "s", {r["users"]: r["seconds"] for r in seed}))
        rows.append(("memory the seeded pool adds", "MB", {r["users"]: r["rss_added_mb"] for r in seed}))
    if "demo" in found:
        demo = {int(n): row for n, row in found["demo"].items()}
        rows.append(("make demo, whole run", "s", {n: row["total"] for n, row in demo.items()}))
        for step in ("01_audit_old_pool", "local: replay sign-ins", "05_report", "06_cutover"):
            rows.append((f"make demo, {step}", "s", {n: row[step] for n, row in demo.items() if step in row}))
    return rows


def per_tenfold(values: Series) -> str:
    """10 ** slope of log(value) against log(users) between the two largest sizes: x10 is linear."""
    sizes = sorted(n for n, v in values.items() if v and v > 0)
    if len(sizes) < 2:
        return "-"
    a, b = sizes[-2], sizes[-1]
    slope = math.log(values[b] / values[a]) / math.log(b / a)
    return f"x{10**slope:.1f}"


def _cell(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "%":
        return f"{value:.0f}%"
    if unit == "s":
        return f"{value:,.2f} s" if value < 10 else f"{value:,.0f} s"
    return f"{value:,.0f} {unit}" if unit != "users/s" else f"{value:,.0f}"


def table(rows: list[tuple[str, str, Series]]) -> str:
    sizes = sorted({n for _, _, values in rows for n in values})
    lines = [
        "| figure | " + " | ".join(f"{n:,} users" for n in sizes) + " | per 10x users |",
        "|---" + "|---:" * (len(sizes) + 1) + "|",
    ]
    for name, unit, values in rows:
        cells = [_cell(values.get(n), unit) for n in sizes]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {per_tenfold(values)} |")
    return "\n".join(lines)


def chart(found: dict[str, Any], rows: list[tuple[str, str, Series]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), dpi=90)
    panels = [
        (axes[0][0], "Whole-pool read (100 ms per request)", "users/s", lambda n: n.endswith("users/s")),
        (axes[0][1], "Report comparison", "seconds / MB", lambda n: n.startswith("report")),
        (axes[1][0], "Seeding the local legacy pool", "seconds / MB", lambda n: "seed" in n),
        (axes[1][1], "make demo on the local AWS", "wall seconds", lambda n: n.startswith("make demo")),
    ]
    for ax, title, ylabel, wanted in panels:
        for name, unit, values in rows:
            if not wanted(name) or not values:
                continue
            sizes = sorted(values)
            label = name.split(": ")[0] if unit == "users/s" else f"{name} ({unit})"
            ax.plot(sizes, [values[n] for n in sizes], marker="o", label=label.replace("make demo, ", ""))
        if title.startswith("Whole-pool") and "scan" in found:
            ceiling = found["scan"]["budget_rps"] * 60
            ax.axhline(ceiling, color="black", linestyle="--", label=f"budget ceiling ({ceiling:,.0f} users/s)")
        ax.set_xscale("log")
        if title.startswith("Whole-pool"):
            ax.set_ylim(bottom=0)
        else:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("users in the pool")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.suptitle("How each figure grows with the pool's size (one machine, 2 shared cores)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--chart", type=Path, default=CHART)
    args = parser.parse_args(argv)
    found = load(args.results)
    if not found:
        raise SystemExit(f"no results in {args.results}: run the benchmarks first (see their docstrings)")
    rows = figures(found)
    print(table(rows))
    chart(found, rows, args.chart)
    print(f"\nchart: {args.chart}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
