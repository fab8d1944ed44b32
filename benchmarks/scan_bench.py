"""Whole-pool read throughput under Cognito's quotas, serial paginator vs 16 sharded readers, by pool size.

    .venv/bin/python benchmarks/scan_bench.py [--sizes 1000,10000,100000,1000000] [--serial-up-to 100000]
                                              [--latency 0.1] [--budget 15]

The local AWS enforces the UserList quota (30 requests/s) and adds a fixed latency per request; the runbook's
budget is ``--budget`` requests/s (default: half the quota, leaving the rest to production). The ceiling is
budget x 60 users per page. Both readers run in one process, one after the other, on the same pool, reseeded
for each size. The serial paginator is skipped above ``--serial-up-to`` (at a million users it would take
about 45 minutes to show what smaller pools already show). Rows go to benchmarks/results/scan.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
from pathlib import Path

import boto3

from cognito_migration import aws, scan
from cognito_migration.local.legacy import seed_legacy_pool
from cognito_migration.local.server import LocalAWS

RESULTS = Path(__file__).resolve().parent / "results" / "scan.json"


def measure(name: str, read, local: LocalAWS, budget_rps: float, users: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    assert local.faults is not None
    local.faults.injected.clear()
    budget = aws.RateLimiter(budget_rps)  # as the runbook builds it: no bursts
    started = time.perf_counter()
    frame = read(budget)
    seconds = time.perf_counter() - started
    assert len(frame) == users, f"{name}: read {len(frame)} of {users}"
    rate = users / seconds
    ceiling = budget_rps * 60
    return {
        "reader": name,
        "users": users,
        "seconds": round(seconds, 1),
        "users/s": round(rate),
        "share of budget ceiling": f"{100 * rate / ceiling:.0f}%",
        "requests": budget.requests,
        "requests/s": round(budget.requests / seconds, 1),
        "throttled": sum(v for k, v in local.faults.injected.items() if k.endswith(":quota")),
    }


def _read(reader, client, pool_id: str, users: int, budget: aws.RateLimiter):  # type: ignore[no-untyped-def]
    return reader(client, pool_id, budget, users)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000,1000000", help="comma-separated user counts")
    parser.add_argument("--serial-up-to", type=int, default=100_000, help="largest pool the serial reader reads")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every request")
    parser.add_argument("--budget", type=float, default=15.0, help="the runbook's UserList budget, requests/s")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the rows are written")
    args = parser.parse_args()
    rows = []
    with LocalAWS() as local:
        os.environ.update(local.credentials)
        assert local.faults is not None
        client = boto3.client(
            "cognito-idp", region_name="us-east-1", endpoint_url=local.endpoint_url, config=aws.RETRY_CONFIG
        )
        for users in (int(n) for n in args.sizes.split(",")):
            legacy = seed_legacy_pool(users=users, seed=1)  # replaces the previous size's pool
            local.faults.enforce_quotas(latency_s=args.latency)
            readers = [("16 shards, 8 readers", scan.scan_users_sharded)]
            if users <= args.serial_up_to:  # scan_users without an estimate never shards
                readers.insert(0, ("serial paginator", lambda c, pool, b, n: scan.scan_users(c, pool, b, None)))
            for name, reader in readers:
                read = functools.partial(_read, reader, client, legacy.pool_id, users)
                row = measure(name, read, local, args.budget, users)
                rows.append(row)
                print(row, flush=True)
                # Written after every row: a long run stopped early keeps what it measured.
                args.json.parent.mkdir(parents=True, exist_ok=True)
                results = {"latency_s": args.latency, "budget_rps": args.budget, "rows": rows}
                args.json.write_text(json.dumps(results, indent=1))
            local.faults.clear()
    print(
        f"\n{args.latency * 1000:.0f} ms per request, UserList quota 30/s enforced, "
        f"budget {args.budget:g}/s (ceiling {args.budget * 60:,.0f} users/s)\n"
    )
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
