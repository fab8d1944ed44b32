"""The report's comparison at scale: classify() + summary() on synthetic old and new pools.

    .venv/bin/python benchmarks/report_bench.py                 # 1k, 10k, 100k and 1M users per pool
    .venv/bin/python benchmarks/report_bench.py --sizes 10000   # any sizes

No AWS: both pools are generated directly as DataFrames (Arrow strings, as ``scan.scan_users`` returns
them), shaped like a migration near its end: 90% of the old users already in the new pool, sign-ups
filling the new pool to the same size, 0.5% case variants, 2% disabled, 3% unconfirmed. Each size runs in
its own subprocess so one size's memory does not inflate the next; it reports the comparison's wall time
(best of three), the peak of Python and NumPy allocations during it (tracemalloc), and the subprocess's
peak resident memory (getrusage: the data itself included). Prints a markdown table for docs/benchmarks.md.
Goal: 1M + 1M in under 5 s and 2 GB. Rows go to benchmarks/results/report.json.
"""

from __future__ import annotations

import os
import platform
import resource
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import sizes

from cognito_migration import report

RESULTS = Path(__file__).resolve().parent / "results" / "report.json"
STATUSES = np.array(["CONFIRMED", "UNCONFIRMED", "FORCE_CHANGE_PASSWORD", "RESET_REQUIRED", "EXTERNAL_PROVIDER"])
STATUS_WEIGHTS = np.array([0.93, 0.03, 0.02, 0.01, 0.01])


def _strings(prefix: str, numbers: np.ndarray, suffix: str = "") -> pd.Series:
    text = pc.binary_join_element_wise(prefix, pa.array(numbers).cast(pa.string()), suffix, "")
    return pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([text.cast(pa.large_string())])))


def synthetic_pools(users: int, seed: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(old users, new users) frames with the columns the report reads."""
    rng = np.random.default_rng(seed)
    ids = rng.permutation(users * 10)[:users]
    usernames = _strings("user.", ids)
    variants = rng.random(users) < 0.005  # "User.123" beside "user.123": a case collision
    usernames = usernames.where(~variants, usernames.str.capitalize())
    old = pd.DataFrame(
        {
            "username": usernames,
            "status": pd.Series(rng.choice(STATUSES, users, p=STATUS_WEIGHTS)).astype("str"),
            "enabled": rng.random(users) >= 0.02,
            "created": pd.to_datetime(rng.integers(1_483_228_800, 1_735_689_600, users), unit="s", utc=True),
            "email": _strings("user.", ids, "@example.com"),
            "email_verified": pd.Series(np.where(rng.random(users) < 0.97, "true", "false")).astype("str"),
            "phone_number": _strings("+1555", ids % 10_000_000),
            "phone_number_verified": pd.Series(np.where(rng.random(users) < 0.5, "true", "false")).astype("str"),
        }
    )
    # Late in a migration: 90% of the old users moved, and sign-ups bring the new pool to the same size.
    migrated = old["username"][rng.random(users) < 0.9]
    signed_up = _strings("newcomer.", np.arange(users - len(migrated)))
    new = pd.DataFrame({"username": pd.concat([migrated, signed_up], ignore_index=True)})
    new["status"] = "CONFIRMED"
    return old, new


def measure(users: int) -> dict[str, Any]:
    """One size, in this process: time (best of 3) and memory of classify() + summary()."""
    old, new = synthetic_pools(users)
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        classified = report.classify(old, new, case_sensitive=False)
        totals = report.summary(classified)
        timings.append(time.perf_counter() - started)
    assert int(totals["users"].sum()) == users
    del classified
    tracemalloc.start()
    report.summary(report.classify(old, new, case_sensitive=False))
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    return {
        "users": users,
        "new_users": len(new),
        "seconds": round(min(timings), 3),
        "traced_peak_mb": round(traced_peak / 2**20, 1),
        "max_rss_mb": round(max_rss_kb / 1024, 1),
    }


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| old users | new users | classify + summary | peak allocations (tracemalloc) | peak RSS (process) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['users']:,} | {r['new_users']:,} | {r['seconds']:.2f} s | {r['traced_peak_mb']:,.0f} MB "
            f"| {r['max_rss_mb']:,.0f} MB |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = sizes.parser(__doc__, "1000,10000,100000,1000000")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the rows are written")
    args = parser.parse_args(argv)
    results = sizes.by_size(args, __file__, measure, results=args.json)
    if results is None:
        return 0
    print(
        f"Python {platform.python_version()}, pandas {pd.__version__}, pyarrow {pa.__version__}, "
        f"{platform.machine()} x {os.cpu_count()} CPUs\n"
    )
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
