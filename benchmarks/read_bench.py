"""Step 1's whole-pool read at scale: peak memory by pool size, throughput against the budget's ceiling, and a
read killed at half-way then resumed.

    .venv/bin/python benchmarks/read_bench.py [--sizes 1000000,10000000] [--resume-size 1000000]
                                              [--ceiling-size 100000] [--memberships-size 0]

The pools are virtual pools of the local AWS (``local/virtual.py``): N users generated from their index, never
stored, so the reader is the only thing that could grow with N. The local AWS runs in this process; every read
runs in a subprocess of its own (``--child``) through the runbook's own reader (``scan.read_snapshot``, the call
step 1 makes), so its peak RSS (VmHWM, which starts afresh at exec) is the reader's alone. ``ru_maxrss_mb`` is
getrusage's figure beside it: on Linux it keeps the forked parent's high-water mark, so it is an upper bound.

- sizes: each pool read whole with no request budget (as fast as this machine serves it); peak RSS and users/s.
- ceiling: a pool read at the default budget (15 requests/s: 900 users/s) with Cognito's UserList quota enforced
  by the local AWS (30 requests/s) and 100 ms added to each request: users/s against the budget's ceiling.
- resume: a read killed with SIGKILL once half its shards are sealed, then run again. The generator counts every
  user it served (``VirtualUsers.work``): users served beyond N were read twice. The final snapshot is checked
  against the generator's truth: every shard's count, the total, and no username twice.

Rows go to benchmarks/results/read.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _memory import high_water_mb

RESULTS = Path(__file__).resolve().parent / "results" / "read.json"
DEFAULT_BUDGET = 15.0  # the runbook's default list_rate_limit (Params)


def child(args: argparse.Namespace) -> None:
    """One read, reported as a JSON line on stdout."""
    import boto3

    from cognito_migration import aws, scan
    from cognito_migration.snapshot_store import SnapshotStore

    cognito = boto3.client("cognito-idp", endpoint_url=args.endpoint, region_name="us-east-1")
    limiter = aws.RateLimiter(args.budget) if args.budget else None
    store = SnapshotStore(Path(args.store), resume_hours=24.0)
    groups = None
    if args.memberships:
        groups = [g["GroupName"] for g in cognito.list_groups(UserPoolId=args.pool)["Groups"]]
    started = time.perf_counter()
    snap = scan.read_snapshot(cognito, args.pool, store, limiter, "virtual pool users", groups, digits=args.digits)
    seconds = time.perf_counter() - started
    summary = snap.summary()
    print(
        json.dumps(
            {
                "rows": snap.rows,
                "memberships": len(snap.memberships_dataset().to_table(columns=["username"])) if groups else None,
                "seconds": round(seconds, 2),
                "users_per_s": round(snap.rows / seconds, 1),
                "peak_rss_mb": round(high_water_mb(), 1),
                "ru_maxrss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "resumed": summary.get("resumed"),
                "folder": str(snap.folder),
            }
        )
    )


def _child_command(
    endpoint: str, pool: str, store: Path, budget: float, digits: int | None, members: bool
) -> list[str]:
    command = [sys.executable, __file__, "--child", "--endpoint", endpoint, "--pool", pool, "--store", str(store)]
    command += ["--budget", str(budget)]
    if digits:
        command += ["--digits", str(digits)]
    if members:
        command.append("--memberships")
    return command


def _env(local: Any) -> dict[str, str]:
    return {**os.environ, **local.credentials, "AWS_DEFAULT_REGION": "us-east-1"}


def _run(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the read failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _sealed(store: Path) -> int:
    return sum(1 for _ in store.glob("*/*/shards/*/done.json"))


def read_whole(local: Any, users: int, budget: float, members: bool, work_root: Path) -> dict[str, Any]:
    from cognito_migration.local import virtual

    pool = local.add_virtual_pool(users)
    store = Path(tempfile.mkdtemp(dir=work_root))
    try:
        result = _run(_child_command(local.endpoint_url, pool, store, budget, None, members), _env(local))
        truth = virtual.truth(users)
        result.update(users=users, budget=budget or None, complete=result["rows"] == truth.users)
        if members:
            result["memberships_complete"] = result["memberships"] == truth.memberships
        if budget:
            result["ceiling_users_per_s"] = budget * 60
            result["share_of_ceiling"] = round(result["users_per_s"] / (budget * 60), 3)
        return result
    finally:
        virtual.remove_virtual_pool(pool)
        subprocess.run(["rm", "-rf", str(store)], check=False)


def killed_and_resumed(local: Any, users: int, work_root: Path, kill_at: float) -> dict[str, Any]:
    """SIGKILL once ``kill_at`` of the 256 shards are sealed; run again; check against the truth."""
    import duckdb

    from cognito_migration.local import virtual
    from cognito_migration.snapshot import Snapshot

    pool = local.add_virtual_pool(users)
    store = Path(tempfile.mkdtemp(dir=work_root))
    env = _env(local)
    command = _child_command(local.endpoint_url, pool, store, 0, 2, False)
    try:
        first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while _sealed(store) < kill_at * 256 and first.poll() is None:
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        sealed_at_kill = _sealed(store)
        served_first = virtual.users_of(pool).work
        second = _run(command, env)
        served = virtual.users_of(pool).work
        truth = virtual.truth(users)
        snap = Snapshot(Path(second["folder"]))
        per_shard = {p: int(d["rows"]) for p, d in snap.finished().items()}
        files = [str(f) for f in snap.files()]
        connection = duckdb.connect()
        try:
            connection.execute("SET memory_limit='512MB'; SET threads=2")
            distinct = connection.execute(
                "SELECT count(DISTINCT username), count(*) FROM read_parquet(?)", [files]
            ).fetchone()
        finally:
            connection.close()
        assert distinct is not None
        return {
            "users": users,
            "shards": 256,
            "sealed_at_kill": sealed_at_kill,
            "served_before_kill": served_first,
            "served_in_all": served,
            "read_twice": served - users,
            "read_twice_share": round((served - users) / users, 4),
            "resume_line": second["resumed"],
            "rows": second["rows"],
            "distinct_usernames": distinct[0],
            "shards_match_truth": per_shard == {p: truth.shards[p] for p in per_shard} and len(per_shard) == 256,
            "lost": users - distinct[0],
            "duplicated": distinct[1] - distinct[0],
            "resume_seconds": second["seconds"],
            "resume_peak_rss_mb": second["peak_rss_mb"],
            "resume_ru_maxrss_mb": second["ru_maxrss_mb"],
        }
    finally:
        virtual.remove_virtual_pool(pool)
        subprocess.run(["rm", "-rf", str(store)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000")
    parser.add_argument("--resume-size", type=int, default=1_000_000)
    parser.add_argument("--kill-at", type=float, default=0.5)
    parser.add_argument("--ceiling-size", type=int, default=100_000)
    parser.add_argument("--memberships-size", type=int, default=0, help="also read memberships at this size")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--pool", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--digits", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--memberships", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    from cognito_migration.local.server import LocalAWS

    rows: dict[str, Any] = {"cpus": os.cpu_count(), "sizes": [], "ceiling": None, "resume": None}
    work_root = Path(tempfile.mkdtemp(prefix="read-bench-"))
    with LocalAWS() as local:
        if args.resume_size:
            rows["resume"] = killed_and_resumed(local, args.resume_size, work_root, args.kill_at)
            print("resume:", json.dumps(rows["resume"]), flush=True)
            RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
        if args.ceiling_size:
            assert local.faults is not None
            local.faults.enforce_quotas(scale=1.0, latency_s=0.1)
            rows["ceiling"] = read_whole(local, args.ceiling_size, DEFAULT_BUDGET, False, work_root)
            local.faults.clear()
            print("ceiling:", json.dumps(rows["ceiling"]), flush=True)
            RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
        for size in (int(s) for s in args.sizes.split(",") if s):
            result = read_whole(local, size, 0, False, work_root)
            rows["sizes"].append(result)
            print("size:", json.dumps(result), flush=True)
            RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
        if args.memberships_size:  # last, so that a run cut short still has the sizes
            rows["memberships"] = read_whole(local, args.memberships_size, 0, True, work_root)
            print("memberships:", json.dumps(rows["memberships"]), flush=True)
    RESULTS.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
