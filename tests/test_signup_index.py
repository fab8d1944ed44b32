"""The sign-up index: its keys (shared with the trigger), and its build and refresh against the local AWS's
legacy pool, counted against the users the generator made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from cognito_migration import deploy, signup_index, snapshot
from cognito_migration.local import legacy as legacy_generator
from cognito_migration.local.legacy import LegacyPool, seed_legacy_pool
from trigger_support import load_trigger

trigger = load_trigger()

SECRET = "0f" * 32


# --- keys -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b",
    [
        ("Zed.Mixedcase", "ZED.MIXEDCASE"),
        ("Zed@Example.com", "zed@example.COM"),
        ("Straße", "STRASSE"),
        ("ｚｅｄ", "Zed"),
    ],
)
def test_values_differing_by_case_or_compatibility_form_share_a_key(a: str, b: str) -> None:
    assert trigger.index_key(SECRET, "username", a) == trigger.index_key(SECRET, "username", b)


def test_keys_depend_on_the_kind_and_the_secret_and_reveal_nothing() -> None:
    key = trigger.index_key(SECRET, "email", "zed@example.com")
    assert len(key) == 64 and int(key, 16) >= 0
    assert key != trigger.index_key(SECRET, "username", "zed@example.com")  # a username shaped like an email
    assert key != trigger.index_key("1e" * 32, "email", "zed@example.com")
    assert "zed" not in key


def test_the_library_keys_are_the_triggers_keys() -> None:
    users = pd.DataFrame(
        [
            {"username": "Zed.Mixedcase", "email": "Zed@Example.com", "phone_number": None},
            {"username": "zed.mixedcase", "email": "zed@example.com", "phone_number": "+15555550100"},
        ]
    )
    keys = signup_index.keys_of(users, SECRET)
    assert keys == {  # the case twins fold to one key each
        trigger.index_key(SECRET, "username", "ZED.MIXEDCASE"): "username",
        trigger.index_key(SECRET, "email", "ZED@EXAMPLE.COM"): "email",
        trigger.index_key(SECRET, "phone_number", "+15555550100"): "phone_number",
    }


@pytest.mark.parametrize("key", ["short", "G" * 64, "AB" * 32])
def test_a_malformed_index_key_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch, key: str) -> None:
    environ = {"OLD_USER_POOL_ID": "us-east-1_Old", "OLD_CLIENT_ID": "client", "AWS_REGION": "us-east-1"}
    with pytest.raises(trigger.ConfigurationError, match="SIGNUP_INDEX_KEY"):
        trigger.load_settings({**environ, "SIGNUP_INDEX_KEY": key})


# --- writes ---------------------------------------------------------------------------------------------


class ThrottledTable:
    """BatchWriteItem leaving the first item of each request unprocessed `times` times."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.requests: list[int] = []

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        (name, items), *_ = RequestItems.items()
        assert len(items) <= signup_index.BATCH
        self.requests.append(len(items))
        if self.times:
            self.times -= 1
            return {"UnprocessedItems": {name: items[:1]}}
        return {"UnprocessedItems": {}}


def test_unprocessed_items_are_resent_then_the_write_gives_up_naming_the_table() -> None:
    keys = {f"{i:064x}": "email" for i in range(60)}
    table = ThrottledTable(times=2)
    assert signup_index.write_keys(table, "t", keys.items(), sleep=lambda _: None) == 2
    assert table.requests == [25, 1, 1, 25, 10]

    with pytest.raises(signup_index.SignUpIndexError, match="DynamoDB table t: 1 item"):
        signup_index.write_keys(ThrottledTable(times=99), "t", keys.items(), sleep=lambda _: None)


# --- build and refresh through the local AWS ------------------------------------------------------------


@pytest.fixture(scope="module")
def legacy(local_aws: Any) -> LegacyPool:
    return seed_legacy_pool(users=150, seed=23, region="us-east-1")


def distinct(legacy: LegacyPool, kind: str) -> int:
    values = [u.username if kind == "username" else u.attributes.get(kind) for u in legacy.users]
    return len({trigger.fold(v) for v in values if v})


def test_build_indexes_every_old_user_once_and_a_rerun_writes_nothing(cognito, dynamodb, legacy):
    name = f"migration-{uuid.uuid4().hex[:8]}-signup-index"

    built = signup_index.build(cognito, dynamodb, legacy.pool_id, name, SECRET)
    again = signup_index.build(cognito, dynamodb, legacy.pool_id, name, SECRET)

    expected = {kind: distinct(legacy, kind) for kind in signup_index.KINDS}
    assert built.users_read == len(legacy.users) and built.keys == expected
    assert built.created_table and built.written == sum(expected.values()) and built.already_indexed == 0
    assert not again.created_table and again.written == 0 and again.already_indexed == built.written
    assert len(signup_index.indexed_keys(dynamodb, name)) == built.written
    table = dynamodb.describe_table(TableName=name)["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # Whatever case a squatter types, the trigger's key is in the table.
    user = legacy.users[0]
    key = {"k": {"S": trigger.index_key(SECRET, "username", user.username.swapcase())}}
    assert "Item" in dynamodb.get_item(TableName=name, Key=key)
    dynamodb.delete_table(TableName=name)


def test_refresh_adds_old_users_created_since_and_dry_run_writes_nothing(dynamodb, lam, iam):
    function = f"migration-{uuid.uuid4().hex[:8]}"
    name = signup_index.table_name_for(function)
    role = iam.create_role(RoleName=f"{function}-role", AssumeRolePolicyDocument=json.dumps(deploy.TRUST_POLICY))
    lam.create_function(
        FunctionName=function,
        Role=role["Role"]["Arn"],
        Runtime="python3.12",
        Handler="x.handler",
        Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        Environment={"Variables": {signup_index.KEY_VARIABLE: SECRET}},
    )
    users = pd.DataFrame([{"username": "first", "email": "first@example.com"}])
    assert "skipped" in signup_index.refresh(dynamodb, lam, function, users, dry_run=False)  # no table yet
    signup_index.ensure_table(dynamodb, name)
    signup_index.refresh(dynamodb, lam, function, users, dry_run=False)
    later = pd.concat([users, pd.DataFrame([{"username": "Later", "email": "later@example.com"}])])

    planned = signup_index.refresh(dynamodb, lam, function, later, dry_run=True)
    assert (planned["written"], len(signup_index.indexed_keys(dynamodb, name))) == (0, 2)
    done = signup_index.refresh(dynamodb, lam, function, later.iloc[1:], dry_run=False)

    assert (done["written"], done["already_indexed"], done["stale"]) == (2, 0, 2)  # "first" is kept, guarded
    assert len(signup_index.indexed_keys(dynamodb, name)) == 4
    assert signup_index.refresh_checks(done)[0].passed
    dynamodb.delete_table(TableName=name)
    lam.delete_function(FunctionName=function)


def test_the_local_aws_refuses_a_read_of_a_table_that_does_not_exist(dynamodb):
    with pytest.raises(ClientError) as refused:
        dynamodb.get_item(TableName="no-such-signup-index", Key={"k": {"S": "x"}})
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"  # as DynamoDB answers


# --- large pools: out of core, the same counts and the same table -----------------------------------------


def quirky_pool() -> pd.DataFrame:
    """The demo's generated users (case-variant names and emails, missing and bad phone numbers), and a few
    more: case twins, an email two users share, blank values."""
    generated = [
        {"username": u.username, "email": u.attributes.get("email"), "phone_number": u.attributes.get("phone_number")}
        for u in legacy_generator.generate_users(300, seed=11)
    ]
    crafted = [
        {"username": "Zed.Mixedcase", "email": "Zed@Example.com", "phone_number": None},
        {"username": "ZED.MIXEDCASE", "email": "zed@example.COM", "phone_number": "+15555550100"},
        {"username": "shared.one", "email": "shared@example.com", "phone_number": "+15555550100"},
        {"username": "shared.two", "email": "SHARED@example.com", "phone_number": ""},
        {"username": "blank", "email": " ", "phone_number": None},
    ]
    rows = pd.DataFrame(generated + crafted)
    return rows.assign(sub=[f"{i % 16:x}{i:031x}" for i in range(len(rows))])  # a snapshot's shards


def table_items(dynamodb: Any, name: str) -> set[tuple[str, str]]:
    pages = dynamodb.get_paginator("scan").paginate(TableName=name)
    return {(i[INDEX_KEY]["S"], i["kind"]["S"]) for page in pages for i in page["Items"]}


INDEX_KEY = signup_index.INDEX_KEY_ATTRIBUTE


@pytest.mark.parametrize("source", ["frame", "snapshot"])
def test_a_large_pool_indexed_out_of_core_counts_and_writes_what_memory_does(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, source: str
) -> None:
    pool = quirky_pool()
    users: signup_index.Users = pool if source == "frame" else snapshot.from_frame(pool, tmp_path / "old")
    # The table already holds the keys of a third of the pool, and of users the pool no longer has (stale).
    before = signup_index.keys_of(pool.iloc[::3], SECRET)
    gone = signup_index.keys_of(pd.DataFrame({"username": ["gone.one", "gone.two"], "email": ["g@x.org"] * 2}), SECRET)
    tables = {}
    for way in ("memory", "disk"):
        tables[way] = f"index-{way}-{uuid.uuid4().hex[:8]}"
        signup_index.ensure_table(dynamodb, tables[way])
        signup_index.write_keys(dynamodb, tables[way], [*before.items(), *gone.items()])

    def fill(way: str, dry_run: bool) -> dict[str, Any]:
        with monkeypatch.context() as patch:
            if way == "disk":  # every pool is large: batches of 40 users (case twins apart), 7 buckets
                patch.setattr(signup_index, "IN_MEMORY_USERS", 0)
                patch.setattr(signup_index, "BATCH_USERS", 40)
                patch.setattr(signup_index, "BUCKET_USERS", 50)
            counts = signup_index.fill(dynamodb, tables[way], users, SECRET, dry_run).as_dict()
        return {k: v for k, v in counts.items() if k != "table"}

    planned = fill("memory", dry_run=True)
    assert fill("disk", dry_run=True) == planned
    assert table_items(dynamodb, tables["disk"]) == table_items(dynamodb, tables["memory"])  # nothing written
    done = fill("memory", dry_run=False)
    assert fill("disk", dry_run=False) == done

    every = signup_index.keys_of(pool, SECRET)
    assert done["keys"] == {kind: list(every.values()).count(kind) for kind in signup_index.KINDS}
    assert done["users_read"] == len(pool) and done["stale"] == len(gone) == 3
    assert done["already_indexed"] == len(before) and done["written"] == len(every) - len(before) > 0
    assert planned == {**done, "written": 0, "dry_run": True}
    held = table_items(dynamodb, tables["disk"])
    assert held == table_items(dynamodb, tables["memory"]) == {*every.items(), *gone.items()}
    for name in tables.values():
        dynamodb.delete_table(TableName=name)


def test_an_out_of_core_fill_of_a_missing_table_writes_nothing_and_leaves_no_files(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(signup_index, "IN_MEMORY_USERS", 0)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    counts = signup_index.fill(dynamodb, "no-such-signup-index", quirky_pool(), SECRET, dry_run=True)
    assert counts.already_indexed == counts.stale == counts.written == 0 and sum(counts.keys.values()) > 0
    assert list(tmp_path.iterdir()) == []  # the work folder went with the fill


# --- memory bounded by a bucket ------------------------------------------------------------------------

# The peak is the process's VmHWM, which starts afresh at exec (getrusage's ru_maxrss would start at pytest's).
MEASURE = """
import json, os, re, sys
from pathlib import Path
from cognito_migration import signup_index, snapshot
def high_water_kb():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
class Table:
    '''A table of as many keys as the pool has users, none of them the pool's, served a Scan page at a time.'''
    def __init__(self, keys):
        self.keys = keys
    def describe_table(self, TableName):
        return {"Table": {"TableName": TableName}}
    def get_paginator(self, operation):
        return self
    def paginate(self, **request):
        for start in range(0, self.keys, 10_000):
            yield {"Items": [{"k": {"S": os.urandom(32).hex()}} for _ in range(min(10_000, self.keys - start))]}
snap, bucketed = snapshot.Snapshot(Path(sys.argv[1])), sys.argv[2] == "bucketed"
signup_index.BATCH_USERS = signup_index.BUCKET_USERS = 10_000
signup_index.IN_MEMORY_USERS = 0  # warmed up first (pandas', Arrow's and DuckDB's first use)
signup_index.fill(Table(10), "t", next(snap.batches(rows=100)), "0f" * 32, dry_run=True)
signup_index.IN_MEMORY_USERS = 0 if bucketed else snap.rows
start = high_water_kb()
counts = signup_index.fill(Table(snap.rows), "t", snap, "0f" * 32, dry_run=True)
print(json.dumps({"growth_mb": (high_water_kb() - start) / 1024, "keys": counts.keys, "stale": counts.stale}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads the peak from Linux's /proc")
def test_a_large_pool_is_indexed_holding_a_bucket_not_the_pool(tmp_path: Path) -> None:
    names = "user." + pd.Series(range(100_000)).astype(str)
    users = pd.DataFrame({"username": names, "email": names + "@example.com", "phone_number": names.str[5:].radd("+1")})
    snapshot.from_frame(users.assign(sub=[f"{i % 16:x}{i:031x}" for i in range(len(users))]), tmp_path / "old")

    def measure(how: str) -> dict[str, Any]:
        environment = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL": "system"}  # what Arrow frees, given back
        script = [sys.executable, "-c", MEASURE, str(tmp_path / "old"), how]
        done = subprocess.run(script, capture_output=True, text=True, env=environment)
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    whole, bucketed = measure("whole"), measure("bucketed")

    assert bucketed["keys"] == whole["keys"] == dict.fromkeys(signup_index.KINDS, 100_000)
    assert bucketed["stale"] == whole["stale"] == 100_000
    # The keys in memory take what the pool's and the table's keys take; 10 buckets hold a tenth at a time.
    assert bucketed["growth_mb"] < 0.6 * whole["growth_mb"], (bucketed, whole)
