"""Step 1's findings at the largest sizes: a snapshot of N users assessed in batches, in a process of its own.

    nice -n 10 .venv/bin/python benchmarks/audit_bench.py --sizes 1000000,10000000 [--whole-up-to 1000000]

No AWS. For each size, a process of its own writes the snapshot straight into the shards' writers, with the
users' group memberships beside it (``local.legacy_snapshot``: the legacy generator's quirk shares in every
batch, never a list of every user), in a private folder under the system's temporary folder, removed after.
Then a fresh process does step 1's work on it, as notebook 01 does after the read: the findings
(``audit.assess``), the tables (users by status, required attributes, collisions, overview) and the records
(``save_records``: masked old_users.parquet and old_memberships.parquet, findings.json, every colliding
group), each timed, with the process's resident memory before the users are read and at its peak. Up to
``--whole-up-to`` users, the same again with the users and memberships read whole into frames (the way
pools of up to 200,000 users go), for the ratio. Peaks are VmHWM: getrusage's ru_maxrss keeps a parent's
peak across exec. Rows go to benchmarks/results/audit.json after every measurement.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _memory import high_water_mb

RESULTS = Path(__file__).resolve().parent / "results" / "audit.json"
REGION = "eu-west-3"


def write(folder: Path, users: int) -> None:
    """The snapshot and memberships of ``users`` generated users, and the audit's context, in ``folder``."""
    from cognito_migration.local import legacy_snapshot

    started = time.perf_counter()
    legacy_snapshot.write(folder / "snapshot", users, memberships=folder / "memberships.parquet")
    generated = time.perf_counter() - started
    context = {**_context(folder / "run"), "generate_seconds": round(generated, 1)}
    (folder / "context.pickle").write_bytes(pickle.dumps(context))


def _context(run_dir: Path) -> dict[str, Any]:
    """The legacy pool's configuration, clients and groups (moto, in this process), and step 1's parameters."""
    import boto3
    import pandas as pd
    from moto import mock_aws

    from cognito_migration import audit, params, scan
    from cognito_migration.local.legacy import seed_legacy_pool

    with mock_aws():
        legacy = seed_legacy_pool(users=5, seed=1, region=REGION)
        cognito = boto3.client("cognito-idp", region_name=REGION)
        parameters = params.validate(
            {
                "region": REGION,
                "old_user_pool_id": legacy.pool_id,
                "old_client_id": legacy.migration_client_id,
                "target_required_attributes": ["email", "name"],
                "attribute_defaults": {"name": "Unknown"},
                "run_dir": str(run_dir),
            }
        )
        pool = audit.describe_pool(cognito, legacy.pool_id)
        result = audit.Audit(
            pool,
            scan.list_clients(cognito, legacy.pool_id),
            scan.list_groups(cognito, legacy.pool_id),
            pd.DataFrame(),
            pd.DataFrame(columns=["group", "username"]),
            mfa_config=cognito.get_user_pool_mfa_config(UserPoolId=legacy.pool_id),
            target=audit.create_pool_input(cognito, pool, parameters),
        )
    return {"audit": result, "params": parameters}


def measure(folder: Path, way: str) -> dict[str, Any]:
    """Step 1's work after the read, on the snapshot in ``folder``, its users read ``way`` (batches, whole)."""
    import pandas as pd

    from cognito_migration import audit, snapshot, user_audit

    context = pickle.loads((folder / "context.pickle").read_bytes())
    snap = snapshot.Snapshot(folder / "snapshot")
    memberships = folder / "memberships.parquet"
    before = high_water_mb()
    started = time.perf_counter()
    if way == "whole":
        users: Any = snap.frame()
        batching = user_audit.Batching(in_memory=snap.rows)
        result = dataclasses.replace(context["audit"], users=users, memberships=pd.read_parquet(memberships))
    else:
        batching = user_audit.BATCHING
        result = dataclasses.replace(context["audit"], users=snap, memberships=memberships)
    read = time.perf_counter()
    result.findings = audit.assess(result, context["params"], batching)
    assessed = time.perf_counter()
    audit.users_by_status(result.users), audit.required_attributes(result), audit.collisions(result)
    audit.pool_overview(result)
    tabled = time.perf_counter()
    audit.save_records(result, context["params"])
    saved = time.perf_counter()
    groups = result.collision_groups.groups if result.collision_groups else {}
    return {
        "users": snap.rows,
        "way": "batches" if snap.rows > batching.in_memory else "one frame",
        "generate_s": context["generate_seconds"],
        "read_s": round(read - started, 1),
        "findings_s": round(assessed - read, 1),
        "tables_s": round(tabled - assessed, 1),
        "records_s": round(saved - tabled, 1),
        "total_s": round(saved - started, 1),
        "before_mb": round(before),
        "peak_mb": round(high_water_mb()),
        "findings": {f.id: f.count for f in result.findings},
        "groups": groups,
    }


def in_own_process(*args: str) -> str:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"audit_bench {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| users | users read | findings | tables | records | step 1 after the read | peak RSS | before the users |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['users']:,} | {r['way']} | {r['read_s'] + r['findings_s']:,.0f} s | {r['tables_s']:,.0f} s "
            f"| {r['records_s']:,.0f} s | {r['total_s']:,.0f} s | {r['peak_mb']:,} MB | {r['before_mb']:,} MB |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated user counts")
    parser.add_argument("--whole-up-to", type=int, default=1_000_000, help="largest pool also read whole")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the rows are written")
    parser.add_argument("--write", nargs=2, metavar=("USERS", "FOLDER"), help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, metavar=("FOLDER", "WAY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.write:
        write(Path(args.write[1]), int(args.write[0]))
        return 0
    if args.measure:
        print(json.dumps(measure(Path(args.measure[0]), args.measure[1])))
        return 0
    rows: list[dict[str, Any]] = []
    machine = f"Python {platform.python_version()}, {platform.machine()} x {os.cpu_count()} CPUs"
    for users in (int(n) for n in args.sizes.split(",")):
        folder = Path(tempfile.mkdtemp(prefix="audit-bench-"))
        try:
            in_own_process("--write", str(users), str(folder))
            ways = ["batches", "whole"] if users <= args.whole_up_to else ["batches"]
            for way in ways:
                rows.append(json.loads(in_own_process("--measure", str(folder), way).splitlines()[-1]))
                print(rows[-1], file=sys.stderr, flush=True)
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"{machine}\n\n{table(rows)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
