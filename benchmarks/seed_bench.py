"""Seeding the local AWS's legacy pool, by size: seconds and memory, each size in its own process.

    .venv/bin/python benchmarks/seed_bench.py [--sizes 1000,10000,100000,1000000]

`seed_legacy_pool` generates the records (pure Python, reproducible) and writes moto's in-process backend
directly: no HTTP. Reported apart: generating the records, writing them into moto, the process's peak RSS and
the RSS added by the seeded pool. Rows go to benchmarks/results/seed.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from sizes import in_own_process

RESULTS = Path(__file__).resolve().parent / "results" / "seed.json"


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def measure(users: int) -> dict[str, Any]:
    from moto.cognitoidp.models import cognitoidp_backends

    from cognito_migration.local import cognito_patches, legacy

    cognito_patches.apply()  # as LocalAWS.start does: the pool keeps its indexes while it is written
    before = _rss_mb()
    started = time.perf_counter()
    records = legacy.generate_users(users, seed=1)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    pool = legacy.seed_legacy_pool(users=users, seed=1, records=records)
    written = time.perf_counter() - started
    stored = cognitoidp_backends[pool.account_id][pool.region].user_pools[pool.pool_id]
    assert len(stored.users) == users
    return {
        "users": users,
        "generate_s": round(generated, 2),
        "write_s": round(written, 2),
        "seconds": round(generated + written, 2),
        "users_per_s": round(users / (generated + written)),
        "rss_added_mb": round(_rss_mb() - before),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000", help="comma-separated user counts")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the rows are written")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size, print JSON
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one)))
        return 0
    rows = []
    for size in (int(n) for n in args.sizes.split(",")):
        rows.append(in_own_process(__file__, size))
        print(rows[-1], file=sys.stderr, flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows}, indent=1))
    print("| users | generate records | write into moto | total | users/s | RSS added | peak RSS |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['users']:,} | {r['generate_s']:.2f} s | {r['write_s']:.2f} s | {r['seconds']:.2f} s "
            f"| {r['users_per_s']:,} | {r['rss_added_mb']:,} MB | {r['peak_rss_mb']:,} MB |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
