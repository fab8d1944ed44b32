"""Step 5's comparison of the largest pools: comparison.compare on two snapshots on disk, out of core.

    nice -n 10 .venv/bin/python benchmarks/compare_bench.py --sizes 1000000,10000000
    nice -n 10 .venv/bin/python benchmarks/compare_bench.py --sizes 100000 --folder /tmp/bench   # any sizes

No AWS: for each size, an old and a new pool are written as snapshots (synthetic rows generated in batches
straight into snapshot.ShardWriter, 16 shards, never the whole pool in memory) with their group memberships
(a Parquet file), shaped like a migration under way: 60% of the old users in the new pool (a tenth of them
signed in under another case of their name), case-variant usernames (0.5%) left behind, 2% disabled, 3%
unconfirmed, sign-ups adding 2%, and 1.2 memberships per user. Then, in a fresh process per size, the
comparison runs (split into buckets, every bucket classified, enriched and tabled, the checks): its wall time
and the process's peak RSS (VmHWM) are recorded. Then what step 5's notebook does with the comparison, a phase
at a time, each phase's peak measured apart (VmHWM started afresh from the resident memory at its start):
the stragglers' import file (``stragglers.prepare``, for a new pool auto-verifying email), the stragglers'
table and its counts, the records (``comparison.save``, masked), and the sign-up index's refresh under dry run
(no table yet: every old user's keys computed and counted). Results go to benchmarks/results/compare.json
and are printed as a markdown table for docs/largest-pools.md. The snapshots are deleted after each size.
Goal: peak RSS flat across sizes, under 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import sizes
from _memory import current_mb, high_water_mb, restart_high_water
from botocore.exceptions import ClientError

from cognito_migration import comparison, signup_index, snapshot, stragglers
from cognito_migration.params import Params

RESULTS = Path(__file__).resolve().parent / "results" / "compare.json"
BATCH = 50_000  # users generated at a time
STATUSES = np.array(["CONFIRMED", "UNCONFIRMED", "FORCE_CHANGE_PASSWORD", "RESET_REQUIRED", "EXTERNAL_PROVIDER"])
STATUS_WEIGHTS = np.array([0.93, 0.03, 0.02, 0.01, 0.01])
GROUPS = [f"group-{n:02d}" for n in range(12)]
START = pd.Timestamp("2018-01-01", tz="UTC").value // 1000  # microseconds
SPAN = 7 * 365 * 86400 * 1_000_000
NEW_START = pd.Timestamp("2026-01-01", tz="UTC").value // 1000
PARAMS = {"old_user_pool_id": "us-east-1_Bench0001", "old_client_id": "benchclient"}
# Step 5 after its comparison: the new pool its import file is built for (GetCSVHeader's columns for its schema)
NEW_POOL = {
    "Id": "us-east-1_Bench0002",
    "AutoVerifiedAttributes": ["email"],
    "MfaConfiguration": "OPTIONAL",
    "SchemaAttributes": [{"Name": n} for n in ("email", "name", "phone_number", "custom:tier")],
}
HEADER = [
    *"name email email_verified phone_number phone_number_verified custom:tier".split(),
    "cognito:mfa_enabled",
    "cognito:username",
]


def _ids(users: int, shard: int) -> Iterator[np.ndarray]:
    """The ids of one of the 16 shards (id % 16), in batches."""
    ids = np.arange(shard, users, 16)
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _migrated(ids: np.ndarray) -> np.ndarray:
    """60% of the old users, never a case variant (a case-insensitive pool holds one of the two)."""
    return ((ids * 2_654_435_761) % 1000 < 600) & (ids % 200 != 1)


def old_rows(ids: np.ndarray) -> list[dict[str, Any]]:
    rng = np.random.default_rng(int(ids[0]))
    n = len(ids)
    names = np.char.add("user.", ids.astype(str))
    variant = ids % 200 == 1  # "User.41" beside "user.40"'s case... of its neighbour: "User.40"
    names = np.where(variant, np.char.add("User.", (ids - 1).astype(str)), names)
    columns = {
        "username": names,
        "status": rng.choice(STATUSES, n, p=STATUS_WEIGHTS),
        "enabled": rng.random(n) >= 0.02,
        "created": (START + rng.integers(0, SPAN, n)).astype("datetime64[us]"),  # UTC
        "email": np.char.add(names, "@example.com"),
        "email_verified": np.where(rng.random(n) < 0.97, "true", "false"),
        "phone_number": np.char.add("+1555", (ids % 10_000_000).astype(str)),
        "phone_number_verified": np.where(rng.random(n) < 0.5, "true", "false"),
        "name": np.char.add("Name ", ids.astype(str)),
        "sub": [f"{i % 16:x}{i:031x}" for i in ids],
        "custom:tier": rng.choice(["free", "pro", "enterprise"], n),
        "legacy_sms_mfa": rng.random(n) < 0.04,
    }
    return _rows(columns)


def _rows(columns: dict[str, Any]) -> list[dict[str, Any]]:
    """Column arrays as row dicts (plain Python values), as ShardWriter.add takes them."""
    values = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in columns.values()]
    return [dict(zip(columns, row, strict=True)) for row in zip(*values, strict=True)]


def new_rows(ids: np.ndarray, users: int) -> list[dict[str, Any]]:
    """The migrated ones of ``ids`` (a tenth under an upper-case name), and sign-ups for ids past ``users``."""
    rng = np.random.default_rng(int(ids[0]) + 1)
    old = ids[ids < users]
    came = old[_migrated(old)]
    names = np.where(came % 10 == 3, np.char.add("USER.", came.astype(str)), np.char.add("user.", came.astype(str)))
    signed_up = ids[ids >= users]
    names = np.concatenate([names, np.char.add("newcomer.", signed_up.astype(str))])
    every = np.concatenate([came, signed_up])
    columns = {
        "username": names,
        "status": np.full(len(every), "CONFIRMED"),
        "enabled": np.ones(len(every), dtype=bool),
        "created": (NEW_START + rng.integers(0, 90 * 86400 * 10**6, len(every))).astype("datetime64[us]"),
        "email": np.char.add(names, "@example.com"),
        "email_verified": np.full(len(every), "true"),
        "sub": [f"{i % 16:x}{i:031x}" for i in every],
    }
    return _rows(columns)


def write_pool(folder: Path, users: int, new: bool) -> snapshot.Snapshot:
    attributes = ["custom:tier"]
    snap = snapshot.create(folder, "us-east-1_Bench", attributes, shard_digits=1)
    total = users + users // 50 if new else users  # sign-ups: 2% more ids in the new pool
    for shard, prefix in enumerate(snap.prefixes):
        writer = snapshot.ShardWriter(snap, prefix, snap.schema)
        for ids in _ids(total, shard):
            for row in new_rows(ids, users) if new else old_rows(ids):
                writer.add(row)
        writer.finish()
    return snap


def write_memberships(path: Path, users: int) -> Path:
    """One group for 80% of users, a second for 40%: about 1.2 memberships per user."""
    schema = pa.schema([("group", pa.string()), ("username", pa.string())])
    with pq.ParquetWriter(path, schema) as out:
        for start in range(0, users, BATCH):
            ids = np.arange(start, min(users, start + BATCH))
            names = np.where(
                ids % 200 == 1, np.char.add("User.", (ids - 1).astype(str)), np.char.add("user.", ids.astype(str))
            )
            first, second = ids % 5 != 0, ids % 5 < 2
            groups = np.concatenate([np.array(GROUPS)[ids[first] % 12], np.array(GROUPS)[(ids[second] + 5) % 12]])
            members = np.concatenate([names[first], names[second]])
            out.write_table(pa.table({"group": groups, "username": members}, schema=schema))
    return path


def build(folder: Path, users: int) -> float:
    """Both pools and the memberships under ``folder``; seconds taken."""
    started = time.perf_counter()
    write_pool(folder / "old", users, new=False)
    write_pool(folder / "new", users, new=True)
    write_memberships(folder / "memberships.parquet", users)
    return time.perf_counter() - started


def measure(users: int, folder: Path) -> dict[str, Any]:
    """In this (fresh) process: the comparison of the snapshots in ``folder``."""
    old, new = snapshot.Snapshot(folder / "old"), snapshot.Snapshot(folder / "new")
    baseline = high_water_mb()
    started = time.perf_counter()
    cfg = Params(**PARAMS, run_dir=str(folder / "run"))
    compared = comparison.compare(
        old, new, cfg, {"MfaConfiguration": "OPTIONAL"}, {}, memberships=folder / "memberships.parquet", work_dir=folder
    )
    seconds = time.perf_counter() - started
    assert compared.users == users and all(c.passed for c in compared.checks), compared.checks
    compare_peak, after_compare = high_water_mb(), current_mb()
    phases = {}
    for phase, work in step_5_after_the_comparison(cfg, compared, old, folder):
        restart_high_water()
        started_phase = time.perf_counter()
        outcome = work()
        phases[phase] = {
            "seconds": round(time.perf_counter() - started_phase, 1),
            "peak_mb": round(high_water_mb()),
            "rss_after_mb": round(current_mb()),
            **outcome,
        }
    states = dict(zip(compared.summary["state"], compared.summary["users"].astype(int), strict=True))
    result = {
        "users": users,
        "new_users": new.rows,
        "buckets": compared.bucket_total,
        "seconds": round(seconds, 1),
        "max_rss_mb": round(compare_peak),
        "baseline_rss_mb": round(baseline),
        "rss_after_compare_mb": round(after_compare),
        "step5_after_compare": phases,
        "step5_peak_mb": max([round(compare_peak), *(p["peak_mb"] for p in phases.values())]),
        "states": states,
        "sign_ups": compared.sign_ups,
    }
    compared.close()
    return result


class _Cognito:
    """What step 5's import file asks the new pool: its header."""

    def get_csv_header(self, UserPoolId: str) -> dict[str, Any]:  # noqa: N803 (boto3's keyword)
        return {"CSVHeader": HEADER}


class _NoIndexYet:
    """DynamoDB without the sign-up index's table: step 5's refresh then computes every old user's keys and
    counts them all missing (its work on the pool's side; a table's keys would be split into the same buckets)."""

    def describe_table(self, TableName: str) -> dict[str, Any]:  # noqa: N803 (boto3's keyword)
        message = f"Requested resource not found: Table: {TableName} not found"
        raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": message}}, "DescribeTable")


def step_5_after_the_comparison(
    cfg: Params, compared: comparison.PoolComparison, old: snapshot.Snapshot, folder: Path
) -> Iterator[tuple[str, Any]]:
    """What step 5's notebook does with the comparison, a phase at a time (each a callable giving facts): the
    stragglers' import file, the stragglers' table (the first SAMPLE_ROWS) and its counts, the records, and the
    sign-up index's refresh under dry run (``signup_index.fill`` of the old pool's snapshot)."""
    state: dict[str, Any] = {}

    def import_file() -> dict[str, Any]:
        state["file"] = stragglers.prepare(
            _Cognito(), cfg, NEW_POOL, {"MfaConfiguration": "OPTIONAL"}, compared, folder / "imports"
        )
        return {"imported": state["file"].users, "files": len(state["file"].paths)}

    def straggler_table() -> dict[str, Any]:
        shown = stragglers.table(compared, state["file"], cfg.masker())
        counts = stragglers.actions(compared, state["file"], shown)
        return {"rows_shown": len(shown), "stragglers": int(counts["users"].sum())}

    def saved() -> dict[str, Any]:
        extra = {"import_file": stragglers.summary(state["file"])}
        data = comparison.save(cfg.records_dir, compared, cfg.masker(), extra)
        written = pq.ParquetFile(cfg.records_dir / "report_users.parquet").metadata.num_rows
        return {"users": data["users"], "report_users_rows": written}

    def index_refresh() -> dict[str, Any]:
        counts = signup_index.fill(_NoIndexYet(), "bench-signup-index", old, "0f" * 32, dry_run=True)
        return {"keys": sum(counts.keys.values()), "missing": sum(counts.keys.values()) - counts.already_indexed}

    yield "import file", import_file
    yield "stragglers' table", straggler_table
    yield "records", saved
    yield "sign-up index (dry run)", index_refresh


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| old users | new users | buckets | comparison | its peak RSS | of which at start | after it |"
        " import file | stragglers' table | records | sign-up index (dry run) | step 5's peak |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        phases = r["step5_after_compare"]
        lines.append(
            f"| {r['users']:,} | {r['new_users']:,} | {r['buckets']} | {r['seconds']:,.0f} s | "
            f"{r['max_rss_mb']:,} MB | {r['baseline_rss_mb']:,} MB | {r['rss_after_compare_mb']:,} MB | "
            + " | ".join(f"{p['seconds']:,.0f} s, {p['peak_mb']:,} MB" for p in phases.values())
            + f" | {r['step5_peak_mb']:,} MB |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = sizes.parser(__doc__, "1000000,10000000")
    parser.add_argument("--folder", type=Path, default=None, help="where the snapshots go (default: a temp folder)")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the rows are written")
    parser.add_argument("--snapshots", type=Path, help=argparse.SUPPRESS)  # internal: what --one compares
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.snapshots)))
        return 0
    rows = []
    if args.folder is not None:
        args.folder.mkdir(parents=True, exist_ok=True)
    for users in args.sizes:
        folder = Path(tempfile.mkdtemp(prefix=f"compare-bench-{users}-", dir=args.folder))
        try:
            built = build(folder, users)
            print(f"{users:,} users: snapshots built in {built:,.0f} s", file=sys.stderr, flush=True)
            rows.append(
                {**sizes.in_own_process(__file__, users, "--snapshots", str(folder)), "build_seconds": round(built)}
            )
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(rows[-1], file=sys.stderr, flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {"command": " ".join(["benchmarks/compare_bench.py", *(argv or sys.argv[1:])]), "rows": rows}, indent=1
            )
        )
    print(
        f"Python {platform.python_version()}, pandas {pd.__version__}, pyarrow {pa.__version__}, "
        f"duckdb {duckdb.__version__}, {platform.machine()} x {os.cpu_count()} CPUs\n"
    )
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
