"""Whole-pool read throughput under Cognito's quotas, serial paginator vs 16 sharded readers.

    .venv/bin/python benchmarks/scan_bench.py [--users 6000] [--latency 0.1] [--budget 15]

The local AWS enforces the UserList quota (30 requests/s) and adds a fixed latency per request; the runbook's
budget is ``--budget`` requests/s (default: half the quota, leaving the rest to production). The ceiling is
budget x 60 users per page. Both readers run in one process, one after the other, on the same pool.
"""

from __future__ import annotations

import argparse
import os
import time

import boto3

from cognito_migration import aws, scan
from cognito_migration.local.legacy import seed_legacy_pool
from cognito_migration.local.server import LOCAL_CREDENTIALS, LocalAWS


def measure(name: str, read, local: LocalAWS, budget_rps: float, users: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    assert local.faults is not None
    local.faults.injected.clear()
    budget = aws.RateLimiter(budget_rps)  # as the runbook builds it: bursts of one second
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
        "requests/s": round(budget.requests / seconds, 1),
        "throttled": sum(v for k, v in local.faults.injected.items() if k.endswith(":quota")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=6000)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every request")
    parser.add_argument("--budget", type=float, default=15.0, help="the runbook's UserList budget, requests/s")
    args = parser.parse_args()
    os.environ.update(LOCAL_CREDENTIALS)
    with LocalAWS() as local:
        legacy = seed_legacy_pool(users=args.users, seed=1)
        assert local.faults is not None
        local.faults.enforce_quotas(latency_s=args.latency)
        client = boto3.client(
            "cognito-idp", region_name="us-east-1", endpoint_url=local.endpoint_url, config=aws.RETRY_CONFIG
        )
        rows = [
            measure(
                "serial paginator",
                lambda b: scan.scan_users(client, legacy.pool_id, b, args.users),
                local,
                args.budget,
                args.users,
            ),
            measure(
                "16 shards, 8 readers",
                lambda b: scan.scan_users_sharded(client, legacy.pool_id, b, args.users),
                local,
                args.budget,
                args.users,
            ),
        ]
    print(
        f"\n{args.users} users, {args.latency * 1000:.0f} ms per request, UserList quota 30/s enforced, "
        f"budget {args.budget:g}/s (ceiling {args.budget * 60:,.0f} users/s)\n"
    )
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + "---|" * len(rows[0]))
    for row in rows:
        print("| " + " | ".join(str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
