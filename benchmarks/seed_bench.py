"""Seeding the local AWS's legacy pool, by size: seconds and memory, each size in its own process.

    .venv/bin/python benchmarks/seed_bench.py [--sizes 1000,10000,100000,1000000]

`seed_legacy_pool` generates the records (pure Python, reproducible) and writes moto's in-process backend
directly: no HTTP. Reported apart: generating the records, writing them into moto, the process's peak RSS and
the RSS added by the seeded pool. Rows go to benchmarks/results/seed.json.
"""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

import sizes

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
    parser = sizes.parser(__doc__, "1000,10000,100000,1000000")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the rows are written")
    args = parser.parse_args(argv)
    rows = sizes.by_size(args, __file__, measure, results=args.json)
    if rows is None:
        return 0
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
