"""The sign-up index: a DynamoDB table of every old-pool username, email and phone number, case-folded and
keyed by an HMAC, that the PreSignUp guard reads with GetItem instead of asking the old pool.

Cognito's ListUsers matches usernames case-sensitively and shares a 30/s quota with production, so the guard
cannot ask it. Step 3 creates and fills the table before attaching the guard; step 5 adds the users the old
pool gained since (it reads the whole pool anyway); ``rollback --delete`` removes it. The HMAC key lives in the
trigger's environment (``SIGNUP_INDEX_KEY``), never in a record: the table alone reveals nobody.

A fill compares the pool's keys with the table's. Up to IN_MEMORY_USERS users, in memory (a dict and a set);
beyond, a bucket at a time: the pool's keys, computed a batch of users at a time, and the table's, scanned a
page at a time, are split into buckets by a hash of the key (``buckets.split``: Parquet files in a private
work folder), and DuckDB (``buckets.connection``) finds each bucket's distinct keys, the missing ones (written
as they stream out) and the stale ones. The counts and the table are the same either way.
"""

from __future__ import annotations

import itertools
import math
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from . import buckets, memory, scan
from .aws import RateLimiter, absent_as_none
from .buckets import Users
from .checks import Check
from .snapshot_store import SnapshotStore
from .trigger.migration_trigger import INDEX_KEY_ATTRIBUTE, index_key

TABLE_VARIABLE = "SIGNUP_INDEX_TABLE"
KEY_VARIABLE = "SIGNUP_INDEX_KEY"
OWNER_TAG = "cognito-migration"  # as deploy.OWNER_TAG: rollback deletes only a table carrying it
KINDS = ("username", "email", "phone_number")  # the scan's columns the guard may look up
BATCH = 25  # BatchWriteItem's limit of put requests per call (DynamoDB API reference)
RETRY_DELAYS_S = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0)  # for unprocessed items: back off, then give up
# Pools up to this size are indexed in memory. Their keys, as Python strings in a dict and a set, take about
# 600 bytes a user: 60 MB here, on top of what step 5 already holds (both pools and their comparison).
IN_MEMORY_USERS = 100_000
BUCKET_USERS = 250_000  # beyond it, the keys of about this many users are compared at a time (750,000 at most)
BATCH_USERS = buckets.BATCH_ROWS  # users whose keys are computed at once
KEY_SCHEMA = pa.schema([("key", pa.string()), ("kind", pa.string())])  # the pool's keys, on disk
INDEXED_SCHEMA = pa.schema([("key", pa.string())])  # the table's


class SignUpIndexError(RuntimeError):
    """The index could not be written; the message names the table and the fix."""


def table_name_for(function_name: str) -> str:
    """The index table of a migration function: found again (and deleted by a rollback) by this name."""
    return f"{function_name}-signup-index"


def table_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:dynamodb:{region}:{account}:table/{name}"


def new_key() -> str:
    """A fresh 256-bit HMAC key, as the trigger's SIGNUP_INDEX_KEY expects it (hex)."""
    return secrets.token_hex(32)


def keys_of(users: pd.DataFrame, secret: str) -> dict[str, str]:
    """{HMAC key: kind} of every username, email and phone number in a scan of the old pool. Values that fold
    to one spelling (case twins) become one key."""
    keys: dict[str, str] = {}
    for kind in KINDS:
        if kind not in users.columns:
            continue
        for value in users[kind].dropna().unique():
            if str(value).strip():
                keys[index_key(secret, kind, str(value))] = kind
    return keys


def kinds_of(users: Users) -> list[str]:
    """The KINDS a read has columns for."""
    names = users.columns if isinstance(users, pd.DataFrame) else users.schema.names
    return [kind for kind in KINDS if kind in names]


@dataclass
class IndexCounts:
    """What a fill or refresh found and did; deploy.json and step 5's record keep it (no key, no value)."""

    table: str
    users_read: int = 0
    keys: dict[str, int] = field(default_factory=dict)  # distinct folded values by kind
    already_indexed: int = 0
    written: int = 0
    stale: int = 0  # indexed but no longer in the old pool: kept, so the name stays guarded
    unprocessed_retries: int = 0
    created_table: bool = False
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_table(dynamodb: Any, name: str) -> dict[str, Any] | None:
    found = absent_as_none(lambda: dynamodb.describe_table(TableName=name), "ResourceNotFoundException")
    return None if found is None else dict(found["Table"])


def ensure_table(dynamodb: Any, name: str) -> bool:
    """Creates the table (on-demand, tagged) unless it exists, and waits until it is ACTIVE; True if created."""
    created = describe_table(dynamodb, name) is None
    if created:
        dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": INDEX_KEY_ATTRIBUTE, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": INDEX_KEY_ATTRIBUTE, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": OWNER_TAG, "Value": "signup-index"}],
        )
    # A new table is CREATING for a few seconds in AWS; writes before ACTIVE fail.
    dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 60})
    return created


def indexed_pages(dynamodb: Any, name: str) -> Iterator[list[str]]:
    """The keys the table holds, a Scan page at a time (of the key attribute only)."""
    pages = dynamodb.get_paginator("scan").paginate(TableName=name, ProjectionExpression=INDEX_KEY_ATTRIBUTE)
    for page in pages:
        yield [item[INDEX_KEY_ATTRIBUTE]["S"] for item in page.get("Items", [])]


def indexed_keys(dynamodb: Any, name: str) -> set[str]:
    """Every key the table holds."""
    return {key for page in indexed_pages(dynamodb, name) for key in page}


def write_keys(
    dynamodb: Any, name: str, keys: Iterable[tuple[str, str]], sleep: Callable[[float], None] = time.sleep
) -> int:
    """Puts one item per (key, kind), 25 per BatchWriteItem, as ``keys`` come, resending what DynamoDB left
    unprocessed (throttling) with a bounded back-off. Returns the number of resends; raises SignUpIndexError
    when items stay unprocessed."""
    resends = 0
    pairs = iter(keys)
    while batch := list(itertools.islice(pairs, BATCH)):
        pending = [{"PutRequest": {"Item": {INDEX_KEY_ATTRIBUTE: {"S": k}, "kind": {"S": v}}}} for k, v in batch]
        for delay in (*RETRY_DELAYS_S, None):
            pending = dynamodb.batch_write_item(RequestItems={name: pending}).get("UnprocessedItems", {}).get(name)
            if not pending:
                break
            if delay is None:
                raise SignUpIndexError(
                    f"DynamoDB table {name}: {len(pending)} item(s) still unprocessed after {len(RETRY_DELAYS_S)} "
                    "resends (throttled): re-run this step; items already written are kept"
                )
            resends += 1
            sleep(delay)
    return resends


def fill(dynamodb: Any, name: str, users: Users, secret: str, dry_run: bool) -> IndexCounts:
    """Adds to the table every key of ``users`` (a read of the old pool: a frame or a snapshot) it lacks;
    writes nothing under ``dry_run``. Keys of users the old pool no longer has are counted as stale and kept.
    Beyond IN_MEMORY_USERS users, a bucket at a time (``_fill_by_bucket``), in a work folder of the system's
    temporary folder (owner-only, removed on the way out)."""
    counts = IndexCounts(name, users_read=buckets.count(users), dry_run=dry_run)
    exists = describe_table(dynamodb, name) is not None
    if counts.users_read > IN_MEMORY_USERS:
        with tempfile.TemporaryDirectory(prefix="cognito-signup-index-") as work:
            _fill_by_bucket(dynamodb, name, users, secret, exists, Path(work), counts)
        memory.give_back()
        return counts
    frame = users if isinstance(users, pd.DataFrame) else users.frame(kinds_of(users))
    keys = keys_of(frame, secret)
    present = indexed_keys(dynamodb, name) if exists else set()
    missing = {k: v for k, v in keys.items() if k not in present}
    counts.keys = {kind: sum(1 for k in keys.values() if k == kind) for kind in KINDS}
    counts.already_indexed, counts.stale = len(keys) - len(missing), len(present - keys.keys())
    if not dry_run:
        counts.unprocessed_retries = write_keys(dynamodb, name, missing.items())
        counts.written = len(missing)
    return counts


MISSING = "SELECT k.key, k.kind FROM keys k ANTI JOIN indexed i ON k.key = i.key"  # the pool's, not the table's
STALE = "SELECT count(DISTINCT i.key) FROM indexed i ANTI JOIN keys k ON i.key = k.key"  # the table's, not the pool's


def _fill_by_bucket(
    dynamodb: Any, name: str, users: Users, secret: str, exists: bool, work: Path, counts: IndexCounts
) -> None:
    """``fill`` of a large pool. The pool's keys (computed a batch of users at a time) and the table's (scanned
    a page at a time) are split into buckets by a hash of the key, so a key and its copies, in the pool or in
    the table, share a bucket; then DuckDB counts and finds the missing keys of one bucket at a time (one
    DISTINCT over every key of a 10M pool would outgrow DuckDB's memory: it does not spill far enough)."""
    total = math.ceil(counts.users_read / BUCKET_USERS)
    batches = buckets.frames(users, kinds_of(users), BATCH_USERS)
    pool_keys = (_key_frame(keys_of(batch, secret)) for batch in batches)
    pages = (pd.DataFrame({"key": page}) for page in indexed_pages(dynamodb, name)) if exists else ()
    pool = buckets.split(pool_keys, _key, ["key"], work / "pool", total, fixed=KEY_SCHEMA)
    table = buckets.split(pages, _key, ["key"], work / "table", total, fixed=INDEXED_SCHEMA)
    kinds: Counter[str] = Counter()
    missing = 0
    with buckets.connection(work) as con:
        for bucket in range(total):
            con.register("pool", buckets.read_bucket(pool.directory(bucket), KEY_SCHEMA))
            con.register("indexed", buckets.read_bucket(table.directory(bucket), INDEXED_SCHEMA))
            con.execute("CREATE OR REPLACE TEMP TABLE keys AS SELECT DISTINCT key, kind FROM pool")
            kinds.update(dict(con.execute("SELECT kind, count(*) FROM keys GROUP BY kind").fetchall()))
            counts.stale += _count(con, STALE)
            if counts.dry_run:
                missing += _count(con, f"SELECT count(*) FROM ({MISSING})")
            else:  # counted as they are written: the anti-join runs once
                found = con.sql(MISSING).to_arrow_reader(buckets.BATCH_ROWS)
                seen: Counter[str] = Counter()
                counts.unprocessed_retries += write_keys(dynamodb, name, _pairs(found, seen))
                missing += seen["pairs"]
            pool.remove(bucket)
            table.remove(bucket)
    counts.keys = {kind: kinds[kind] for kind in KINDS}
    counts.already_indexed = sum(kinds.values()) - missing
    counts.written = 0 if counts.dry_run else missing


def _key_frame(keys: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({"key": list(keys), "kind": list(keys.values())})


def _key(frame: pd.DataFrame) -> pa.Array:
    return pa.array(frame["key"], pa.string())


def _count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    return int(con.execute(query).fetchall()[0][0])


def _pairs(found: pa.RecordBatchReader, seen: Counter[str]) -> Iterator[tuple[str, str]]:
    """The (key, kind) pairs of DuckDB's answer, a record batch at a time, counted in ``seen["pairs"]``."""
    for batch in found:
        seen["pairs"] += batch.num_rows
        yield from zip(batch.column("key").to_pylist(), batch.column("kind").to_pylist(), strict=True)


def build(
    cognito: Any,
    dynamodb: Any,
    old_pool_id: str,
    name: str,
    secret: str,
    limiter: RateLimiter | None = None,
    store: SnapshotStore | None = None,
) -> IndexCounts:
    """Step 3: creates the table if needed and adds every old-pool user's keys it lacks (a whole-pool read of
    the old pool, paced by ``limiter``, into ``store``: a read stopped part-way resumes there; a finished one
    is deleted once the index is filled)."""
    created = ensure_table(dynamodb, name)
    with scan.read_once(cognito, old_pool_id, limiter, "old pool users (sign-up index)", store) as users:
        counts = fill(dynamodb, name, users, secret, dry_run=False)
    counts.created_table = created
    return counts


def checks(dynamodb: Any, name: str, role_policy: dict[str, Any]) -> list[Check]:
    """Step 3's gate rows: the guard's table is there, and the role may read that table alone, with GetItem
    alone."""
    table = describe_table(dynamodb, name) or {}
    grants = {
        (action, resource)
        for statement in role_policy["Statement"]
        for action in statement["Action"]
        if action.startswith("dynamodb:")
        for resource in statement["Resource"]
    }
    return [
        Check(
            "sign-up index ready",
            table.get("TableStatus") == "ACTIVE",
            "blocker",
            f"{name}: {table.get('TableStatus', 'absent')}",
            "re-run this step: without the table the guard refuses every sign-up",
        ),
        Check(
            "role reads only the sign-up index",
            grants == {("dynamodb:GetItem", table.get("TableArn"))},
            "blocker",
            f"dynamodb grants: {sorted(grants)}",
            "re-run this step: the policy is rewritten",
        ),
    ]


def function_key(lam: Any, function_name: str) -> str | None:
    """The HMAC key the deployed trigger uses (its configuration); None without a function or a key."""
    configuration = absent_as_none(
        lambda: lam.get_function_configuration(FunctionName=function_name), "ResourceNotFoundException"
    )
    if configuration is None:
        return None
    return (configuration.get("Environment") or {}).get("Variables", {}).get(KEY_VARIABLE) or None


def refresh(dynamodb: Any, lam: Any, function_name: str, old_users: Users, dry_run: bool) -> dict[str, Any]:
    """Step 5: adds the old-pool users (a frame or a snapshot) created since the index was filled. Does nothing
    (and says why) when step 3 has not deployed the guard's table and key."""
    name = table_name_for(function_name)
    secret = function_key(lam, function_name)
    if secret is None or describe_table(dynamodb, name) is None:
        return {"table": name, "skipped": f"no table {name} or no {KEY_VARIABLE} on {function_name}: run step 3"}
    return fill(dynamodb, name, old_users, secret, dry_run).as_dict()


def refresh_checks(result: dict[str, Any]) -> list[Check]:
    """Step 5's gate rows for the refresh: a skipped refresh is a warning (sign-ups are refused meanwhile)."""
    skipped = result.get("skipped")
    written = "nothing written (dry run)" if result.get("dry_run") else f"{result.get('written', 0)} key(s) added"
    return [
        Check(
            "sign-up index covers the old pool",
            not skipped,
            "warning",
            skipped or f"{written}; {result.get('stale', 0)} stale key(s) kept",
            "run step 3 with dry_run: false (it creates and fills the index), then this step again",
        )
    ]


def delete_rows(dynamodb: Any, function_name: str, dry_run: bool) -> list[tuple[str, str, str, str]]:
    """Rollback: deletes the index table when it carries the runbook's tag; a same-named table made by
    someone else is kept and shown."""
    name = table_name_for(function_name)
    table = describe_table(dynamodb, name)
    if table is None:
        return [("DynamoDB table", name, "absent", "")]
    tags = dynamodb.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", [])
    if OWNER_TAG not in {t["Key"] for t in tags}:
        return [("DynamoDB table", name, "keep", f"no {OWNER_TAG} tag: not made by step 3")]
    if not dry_run:
        dynamodb.delete_table(TableName=name)
    return [("DynamoDB table", name, "delete", "the sign-up index")]


def plan_rows(table: dict[str, Any] | None, name: str, old_pool: dict[str, Any]) -> Iterable[tuple[str, str, str]]:
    """Step 3's plan rows for the index (resource, name, action)."""
    estimated = old_pool.get("EstimatedNumberOfUsers")
    yield ("DynamoDB table", name, "create" if table is None else "exists")
    yield ("sign-up index", name, f"fill: ~{estimated} old-pool user(s), whole-pool read")
