"""Whole-pool reads stream into a snapshot on disk and resume: over real HTTP against the local AWS, a read
writes Parquet parts as pages arrive and equals the in-memory read; a read stopped part-way (an error past the
retries, expired credentials) keeps its finished shards and a re-run reads only the others, losing and
duplicating nobody; a stale or foreign snapshot is never mixed in; snapshots are owner-only and no record's;
memory is bounded by the batches, not the pool; refreshable credentials refresh mid-read."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import subprocess
import sys
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pandas as pd
import pytest
from botocore.config import Config
from botocore.credentials import CredentialProvider, RefreshableCredentials
from botocore.exceptions import ClientError

from cognito_migration import aws, chain, params, records, run_index, scan, snapshot, snapshot_store
from cognito_migration.local.legacy import LegacyPool, seed_legacy_pool
from cognito_migration.local.server import LocalAWS
from cognito_migration.snapshot_store import SnapshotStore

REGION = "us-east-1"
NO_RETRIES = Config(retries={"max_attempts": 0})


@pytest.fixture(scope="module")
def legacy(local_aws: LocalAWS) -> LegacyPool:
    return seed_legacy_pool(users=1500, seed=41, region=REGION)


@pytest.fixture
def faults(local_aws: LocalAWS) -> Iterator[Any]:
    assert local_aws.faults is not None
    yield local_aws.faults
    local_aws.faults.clear()


@pytest.fixture
def store(tmp_path: Path) -> SnapshotStore:
    return SnapshotStore(tmp_path / "local" / snapshot_store.SNAPSHOTS)


def client(local_aws: LocalAWS, config: Config | None = None) -> Any:
    return boto3.client("cognito-idp", region_name=REGION, endpoint_url=local_aws.endpoint_url, config=config)


def truth_by_shard(legacy: LegacyPool, digits: int = 1) -> Counter[str]:
    return Counter(u.sub[:digits] for u in legacy.users)


def pages(users: int) -> int:
    return max(1, math.ceil(users / 60))


def listed_filters(cognito: Any) -> list[str]:
    """The Filter of every ListUsers call the client makes from now on."""
    seen: list[str] = []
    cognito.meta.events.register(
        "provide-client-params.cognito-idp.ListUsers", lambda params, **_: seen.append(params.get("Filter", ""))
    )
    return seen


def the_only_snapshot(store: SnapshotStore, pool_id: str) -> snapshot.Snapshot:
    (folder,) = [p for p in store.pool_dir(pool_id).iterdir() if p.is_dir()]
    return snapshot.Snapshot(folder)


def in_memory_read(cognito: Any, pool_id: str) -> pd.DataFrame:
    """The read as it was before snapshots: every row a dict in one list, then a frame."""
    pager = aws.paginate(cognito, "list_users", "Users", UserPoolId=pool_id, PaginationConfig={"PageSize": 60})
    frame = pd.DataFrame([scan.user_row(user) for user in pager])
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    return frame


def test_small_pools_keep_one_paginator_and_large_ones_get_finer_shards() -> None:
    assert scan.shard_digits(None) == 0 and scan.shard_digits(2000) == 0, "the demo's pool: one paginator"
    assert scan.shard_digits(scan.SHARDED_FROM) == 1 and scan.shard_digits(scan.LARGE_POOL_FROM - 1) == 1
    assert scan.shard_digits(scan.LARGE_POOL_FROM) == 2 and scan.shard_digits(40_000_000) == 2
    assert len(snapshot.prefixes(2)) == 256 and snapshot.prefixes(0) == ("",)


def test_a_reads_columns_hold_every_attribute_listusers_can_show() -> None:
    # a pool created with a Schema describes only that Schema (as moto does): its users still have given_name
    declared = {"SchemaAttributes": [{"Name": "email"}, {"Name": "custom:tier", "DeveloperOnlyAttribute": True}]}
    names = snapshot.pool_attributes(declared)
    assert {"given_name", "family_name", "identities", "custom:tier", "dev:custom:tier"} <= set(names)


def test_a_sharded_read_writes_parts_as_it_goes_and_equals_the_in_memory_read(
    legacy: LegacyPool, cognito: Any, store: SnapshotStore
) -> None:
    sealed_during_read: list[int] = []

    def count_sealed(**_: Any) -> None:
        sealed_during_read.append(len(list(store.root.glob("*/*/shards/*/done.json"))))

    cognito.meta.events.register("before-call.cognito-idp.ListUsers", count_sealed)
    snap = scan.read_snapshot(cognito, legacy.pool_id, store, aws.RateLimiter(1000), digits=1, batch_rows=40)

    assert sealed_during_read[0] == 0 and 0 < sealed_during_read[-1] < 16, "shards are sealed while others read"
    truth = truth_by_shard(legacy)
    for prefix, done in snap.finished().items():
        assert done["rows"] == truth[prefix] and len(done["parts"]) == math.ceil(truth[prefix] / 40)
    assert snap.complete and snap.rows == len(legacy.users)
    assert snap.completeness()["per_shard"] == [truth[p] for p in snap.prefixes]

    read = scan.frame_of(snap)
    before = in_memory_read(cognito, legacy.pool_id)
    assert sorted(read.columns) == sorted(before.columns), "columns no user has are left out, as before"
    columns = sorted(before.columns)
    pd.testing.assert_frame_equal(
        read[columns].sort_values("username", ignore_index=True),
        before[columns].sort_values("username", ignore_index=True),
    )
    assert read.attrs["completeness"]["difference"] == 0


def test_the_demo_sized_read_is_one_paginator_and_one_part(
    legacy: LegacyPool, cognito: Any, store: SnapshotStore
) -> None:
    filters = listed_filters(cognito)
    budget = aws.RateLimiter(1000)
    snap = scan.read_snapshot(cognito, legacy.pool_id, store, budget, expected=len(legacy.users))
    assert snap.prefixes == ("",) and filters == [""] * pages(len(legacy.users)), "no filter, no shard"
    assert budget.requests == pages(len(legacy.users)) and len(snap.files()) == 1
    assert "completeness" not in scan.frame_of(snap).attrs


def test_a_read_stopped_by_an_error_keeps_its_finished_shards_and_a_rerun_reads_only_the_others(
    legacy: LegacyPool, local_aws: LocalAWS, faults: Any, store: SnapshotStore, capsys: pytest.CaptureFixture[str]
) -> None:
    # the service fails past botocore's retries (none here, so the test is quick) from the 13th ListUsers on
    faults.add("ListUsers", fail_after=12, code="InternalErrorException", message="Internal error")
    with pytest.raises(ClientError, match="InternalErrorException") as stopped:
        scan.read_snapshot(client(local_aws, NO_RETRIES), legacy.pool_id, store, aws.RateLimiter(1000), digits=1)
    assert "run the step again to resume" in " ".join(stopped.value.__notes__)

    first = the_only_snapshot(store, legacy.pool_id)
    truth = truth_by_shard(legacy)
    finished = first.finished()
    unfinished = [p for p in first.prefixes if p not in finished]
    assert 0 < len(finished) < 16, "some shards were sealed before the error, not all"
    assert all(done["rows"] == truth[p] for p, done in finished.items())
    assert first.folder.resolve() not in snapshot_store.held(), "a stopped read lets its snapshot go: it continues"

    faults.clear()
    cognito = client(local_aws)
    filters = listed_filters(cognito)
    capsys.readouterr()
    second = scan.read_snapshot(cognito, legacy.pool_id, store, aws.RateLimiter(1000), digits=1)

    said = capsys.readouterr().out
    assert second.folder == first.folder
    assert f"resumed snapshot {first.folder}: {len(finished)} of 16 shards already read" in said
    assert f"reading {len(unfinished)}" in said
    assert sorted(set(filters)) == sorted(f'sub ^= "{p}"' for p in unfinished), "finished shards are not read again"
    assert len(filters) == sum(pages(truth[p]) for p in unfinished)
    users = second.frame(["username", "sub"])
    assert users["username"].is_unique, "nobody twice"
    assert sorted(users["username"]) == sorted(u.username for u in legacy.users), "nobody lost"
    assert second.summary()["resumed"][0]["line"].startswith("resumed snapshot")


def staging(legacy: LegacyPool, tmp_path: Path, **extra: Any) -> params.Params:
    """An environment reading the legacy pool through a named profile, its runs under ``tmp_path/staging``."""
    values = {
        "old_user_pool_id": legacy.pool_id,
        "old_client_id": legacy.migration_client_id,
        "aws_profile": "migration-ops",
        "run_dir": str(tmp_path / "staging" / "20261201T090000Z"),
    }
    return params.validate({**values, **extra})


def test_expired_credentials_with_no_wait_stop_the_read_with_what_to_renew_and_a_rerun_resumes(
    legacy: LegacyPool, local_aws: LocalAWS, faults: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = SnapshotStore.of(staging(legacy, tmp_path, credentials_wait_minutes=0))  # stop at once
    assert store.root == tmp_path / "staging" / ".snapshots"
    faults.expire_credentials(after=10, operation="ListUsers")
    with pytest.raises(scan.CredentialsExpired) as paused:
        scan.read_snapshot(client(local_aws), legacy.pool_id, store, aws.RateLimiter(1000), digits=1)

    message = str(paused.value)
    kept = the_only_snapshot(store, legacy.pool_id).finished()
    assert paused.value.__cause__ is not None and aws.error_code(paused.value.__cause__) == "ExpiredTokenException"
    assert re.search(r"credentials expired at shard \d+/16 of " + legacy.pool_id, message)
    assert "`aws sso login --profile migration-ops`" in message and "run the step again" in message
    assert f"with the {len(kept)} of 16 shards" in message and "already read" in message

    faults.clear()  # renewed
    capsys.readouterr()
    resumed = scan.read_snapshot(client(local_aws), legacy.pool_id, store, aws.RateLimiter(1000), digits=1)
    assert f"{len(kept)} of 16 shards already read" in capsys.readouterr().out
    assert sorted(resumed.frame(["username"])["username"]) == sorted(u.username for u in legacy.users)


def test_expired_credentials_renewed_while_the_read_waits_and_it_goes_on_in_place(
    legacy: LegacyPool, local_aws: LocalAWS, faults: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = dataclasses.replace(SnapshotStore.of(staging(legacy, tmp_path)), poll_seconds=0.05)
    assert store.wait_minutes == 30, "the default: a read waits half an hour for renewed credentials"
    faults.expire_credentials(after=10, operation="ListUsers")
    renewed = threading.Timer(1.0, faults.clear)  # the operator runs `aws sso login` meanwhile
    renewed.start()
    started = time.monotonic()
    snap = scan.read_snapshot(client(local_aws), legacy.pool_id, store, aws.RateLimiter(1000), digits=1)
    said = capsys.readouterr().out

    assert 1.0 <= time.monotonic() - started < 60, "it waited for the renewal, then went on"
    assert re.search(r"credentials expired at shard \d+/16 of " + legacy.pool_id + r" \(ListUsers\)", said)
    assert "`aws sso login --profile migration-ops`" in said and "waits for them up to 30 min" in said
    line = snap.summary()["resumed"][0]["line"]
    assert re.fullmatch(r"credentials expired at shard \d+/16 \(ListUsers\) and were renewed \d+ s later: the "
                        r"read went on with the \d+ of 16 shards \(\d+ users\) already read", line), line  # fmt: skip
    assert line in said and snap.complete, "recorded with the read, as a resume is"
    assert sorted(snap.frame(["username"])["username"]) == sorted(u.username for u in legacy.users)


def test_a_read_waits_for_credentials_no_longer_than_it_may_then_stops_resumable(
    legacy: LegacyPool, local_aws: LocalAWS, faults: Any, store: SnapshotStore
) -> None:
    waiting = dataclasses.replace(store, wait_minutes=1 / 60, poll_seconds=0.1)  # a second
    faults.expire_credentials(after=20, operation="ListUsersInGroup")
    groups = [g["GroupName"] for g in client(local_aws).list_groups(UserPoolId=legacy.pool_id)["Groups"]]
    started = time.monotonic()
    with pytest.raises(scan.CredentialsExpired) as stopped:
        scan.read_snapshot(client(local_aws), legacy.pool_id, waiting, aws.RateLimiter(1000), groups=groups, workers=1)

    assert 1 <= time.monotonic() - started < 30
    message = str(stopped.value)
    assert "credentials expired at group" in message and "run the step again: it resumes" in message
    assert "no renewed credentials came in the 1 s it waited: credentials_wait_minutes" in message
    assert stopped.value.__cause__ is not None and aws.error_code(stopped.value.__cause__) == "ExpiredTokenException"
    refused = faults.injected["ListUsersInGroup:fail_after"]  # one group read at a time: 1 is the read's
    assert refused >= 3, f"the refused call was tried again while the read waited ({refused - 1} tries)"


def test_an_sso_session_that_ended_counts_as_expired_credentials() -> None:
    from botocore.exceptions import TokenRetrievalError, UnauthorizedSSOTokenError

    assert aws.credentials_expired(UnauthorizedSSOTokenError())
    assert aws.credentials_expired(TokenRetrievalError(provider="sso", error_msg="the session ended"))
    assert not aws.credentials_expired(ValueError("ExpiredToken"))


def test_memberships_resume_by_group_without_reading_users_again(
    legacy: LegacyPool, local_aws: LocalAWS, faults: Any, store: SnapshotStore
) -> None:
    groups = sorted({g for u in legacy.users for g in u.groups})
    faults.add("ListUsersInGroup", fail_after=14, code="InternalErrorException", message="Internal error")
    with pytest.raises(ClientError):
        reader = client(local_aws, NO_RETRIES)
        scan.read_snapshot(reader, legacy.pool_id, store, aws.RateLimiter(1000), "", groups, workers=4)
    stopped = the_only_snapshot(store, legacy.pool_id)
    assert stopped.complete and 0 < len(stopped.groups_finished()) < len(groups)

    faults.clear()
    cognito = client(local_aws)
    filters = listed_filters(cognito)
    snap = scan.read_snapshot(cognito, legacy.pool_id, store, aws.RateLimiter(1000), "", groups)
    assert filters == [] and snap.finished_reading, "the users were read already"
    members = snap.memberships()
    expected = sorted((g, u.username) for u in legacy.users for g in u.groups)
    assert sorted(zip(members["group"], members["username"], strict=True)) == expected


def stopped_snapshot(store: SnapshotStore, pool_id: str, attributes: list[str], started: datetime) -> Path:
    """An unfinished snapshot with one finished shard, as a read that stopped would leave it."""
    folder = store.pool_dir(pool_id) / started.strftime(records.RUN_ID_FORMAT)
    snap = snapshot.create(folder, pool_id, attributes, 1, groups=None)
    snap.update_manifest(started=started.isoformat(timespec="seconds"))
    snapshot.ShardWriter(snap, "0", snap.schema).finish()
    return folder


def test_a_stale_mismatched_or_foreign_snapshot_is_never_mixed_in(
    legacy: LegacyPool, cognito: Any, store: SnapshotStore, capsys: pytest.CaptureFixture[str]
) -> None:
    pool = cognito.describe_user_pool(UserPoolId=legacy.pool_id)["UserPool"]
    now = datetime.now(UTC)
    stale = stopped_snapshot(store, legacy.pool_id, snapshot.pool_attributes(pool), now - timedelta(hours=30))
    other_schema = stopped_snapshot(store, legacy.pool_id, ["custom:gone"], now - timedelta(hours=2))
    other_pool = stopped_snapshot(store, "us-east-1_Other", snapshot.pool_attributes(pool), now - timedelta(hours=1))

    snap = scan.read_snapshot(cognito, pool, store, aws.RateLimiter(1000), digits=1)
    said = capsys.readouterr().out

    assert snap.folder not in (stale, other_schema) and not snap.summary()["resumed"]
    assert not stale.exists() and f"removed {stale}: started 30.0 h ago, snapshot_resume_hours is 24" in said
    assert other_schema.exists() and f"left alone {other_schema}: the pool's attributes differ" in said
    assert other_pool.exists(), "another pool's snapshot is not this read's business"
    assert snap.rows == len(legacy.users)

    # the runner's sweep, once nobody holds them: the finished read goes, the young unfinished ones stay
    snapshot_store.let_go(snap)
    removed = snapshot_store.sweep(store)
    assert [r.split(":")[0] for r in removed] == [str(snap.folder)] and other_schema.exists() and other_pool.exists()
    never = SnapshotStore(store.root, resume_hours=0)
    assert sorted(r.split(":")[0] for r in snapshot_store.sweep(never)) == sorted(map(str, (other_schema, other_pool)))


def test_a_read_starting_while_another_process_deletes_its_last_snapshot_gets_its_folder(
    store: SnapshotStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's ``_delete`` removes the empty pool folder and ``.snapshots`` after its last snapshot:
    when that happens just as this read creates them (the runner's sweep beside a notebook run by hand), the
    read creates them again instead of failing on a missing folder."""
    created = records.private_dir
    removed: list[Path] = []

    def created_then_removed(folder: Path) -> Path:
        made = created(folder)
        if not removed:  # once, right after: the other process's rmdir of the empty folders
            removed.append(folder)
            folder.rmdir()
            store.root.rmdir()
        return made

    monkeypatch.setattr(snapshot_store.records, "private_dir", created_then_removed)
    opened = snapshot_store.open_snapshot(store, "us-east-1_Racing", ["email"], 0)

    assert removed == [store.pool_dir("us-east-1_Racing")], "the race was played"
    assert opened.snapshot.folder.is_dir() and opened.snapshot.folder.parent == removed[0]
    assert opened.snapshot.manifest["pool_id"] == "us-east-1_Racing" and opened.snapshot.folder in map(
        Path.resolve, snapshot_store.held()
    )
    assert oct(store.root.stat().st_mode & 0o777) == "0o700"
    snapshot_store.release(opened.snapshot)

    # the runner's sweep, listing a pool folder another process removes as it lists: nothing to do, no error
    racing = records.private_dir(store.pool_dir("us-east-1_Racing"))
    listed = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: listed(self) if self == store.root else _gone(self))
    assert snapshot_store.sweep(store) == [] and racing.is_dir()


def _gone(folder: Path) -> Iterator[Path]:
    raise FileNotFoundError(folder)


def test_snapshots_are_owner_only_and_never_part_of_a_record(legacy: LegacyPool, cognito: Any, tmp_path: Path) -> None:
    env_dir = tmp_path / "local"
    run_dir = env_dir / "20261201T090000Z"
    records.save_json(run_dir, "audit", {"users": len(legacy.users)})
    store = SnapshotStore.of(params.validate({"old_user_pool_id": legacy.pool_id, "old_client_id": "c",
                                              "run_dir": str(run_dir)}))  # fmt: skip
    snap = scan.read_snapshot(cognito, legacy.pool_id, store, aws.RateLimiter(1000), digits=1)

    paths = [store.root, *store.root.rglob("*")]
    assert {oct(p.stat().st_mode & 0o777) for p in paths if p.is_dir()} == {"0o700"}
    assert {oct(p.stat().st_mode & 0o777) for p in paths if p.is_file()} == {"0o600"}

    sealed = chain.seal(run_dir, {"run_id": run_dir.name})
    checked = chain.verify(env_dir)
    assert list(sealed["files"]) == ["audit.json"] and checked.passed and checked.outside == []
    assert snapshot_store.SNAPSHOTS not in run_index.render(env_dir)

    assert snapshot_store.release(snap) == [str(snap.folder)]
    assert not snap.folder.exists() and not store.pool_dir(legacy.pool_id).exists()
    # a cell run again after the step saved its records (step 5's sign-up refresh, by hand) says what to do
    with pytest.raises(snapshot.SnapshotError, match="deleted .* run the step again from the top"):
        next(snap.batches())


def test_a_step_records_what_its_read_resumed_and_deletes_its_snapshot(
    legacy: LegacyPool, local_aws: LocalAWS, faults: Any, tmp_path: Path
) -> None:
    from cognito_migration import audit

    cfg = params.validate(
        {
            "old_user_pool_id": legacy.pool_id,
            "old_client_id": legacy.migration_client_id,
            "accept_findings": [],
            "credentials_wait_minutes": 0,
            "run_dir": str(tmp_path / "local" / "20261201T100000Z"),
        }
    )
    faults.expire_credentials(after=20, operation="ListUsersInGroup")
    with pytest.raises(scan.CredentialsExpired, match="credentials expired at group"):
        audit.run_audit(client(local_aws), cfg, aws.RateLimiter(1000))
    faults.clear()
    result = audit.run_audit(client(local_aws), cfg, aws.RateLimiter(1000))
    assert result.snapshot is not None and len(result.users) == len(legacy.users)
    audit.save_records(result, cfg)

    read = json.loads((tmp_path / "local" / "20261201T100000Z" / "audit.json").read_text())["read"]
    assert read["users"] == len(legacy.users) and read["resumed"][0]["line"].startswith("resumed snapshot")
    assert "memberships of" in read["resumed"][0]["line"]
    assert not result.snapshot.folder.exists(), "the unmasked working copy goes once the records are saved"

    audit.save_records(result, cfg)  # the record cell run again (a notebook's cell, by hand): the same record
    again = json.loads((tmp_path / "local" / "20261201T100000Z" / "audit.json").read_text())["read"]
    assert again == read


class Refreshing(CredentialProvider):
    """Temporary credentials that expire every few seconds, as SSO or an assumed role's do over hours."""

    METHOD = "test-refreshing"

    def __init__(self, key: str, secret: str) -> None:
        self.key, self.secret, self.fetched = key, secret, 0

    def fetch(self) -> dict[str, str]:
        self.fetched += 1
        expiry = datetime.now(UTC) + timedelta(seconds=2)  # inside botocore's refresh window: renewed per call
        return {"access_key": self.key, "secret_key": self.secret, "token": "t", "expiry_time": expiry.isoformat()}

    def load(self) -> RefreshableCredentials:
        return RefreshableCredentials.create_from_metadata(self.fetch(), self.fetch, self.METHOD)


def test_refreshable_credentials_refresh_themselves_during_a_read(legacy: LegacyPool, local_aws: LocalAWS) -> None:
    provider = Refreshing(local_aws.credentials["AWS_ACCESS_KEY_ID"], local_aws.credentials["AWS_SECRET_ACCESS_KEY"])
    core = botocore.session.Session()
    core.get_component("credential_provider").insert_before("env", provider)
    cognito = aws.client(boto3.Session(botocore_session=core, region_name=REGION), "cognito-idp")
    frame = scan.scan_users(cognito, legacy.pool_id, aws.RateLimiter(1000))
    assert len(frame) == len(legacy.users) and provider.fetched > 2, "the client asked the chain again mid-read"


def test_a_read_holds_its_batches_not_the_pool(tmp_path: Path) -> None:
    """The local AWS in a process of its own, so only the reader's allocations are traced."""
    users = 30_000
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    server = subprocess.Popen(
        [sys.executable, "-m", "cognito_migration.local", "serve", "--port", "0", "--users", str(users)],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert server.stdout is not None
        lines = [server.stdout.readline() for _ in range(3)]
        exported = dict(item.split("=", 1) for item in lines[2].split()[1:])
        match = re.search(r"legacy pool (\S+):", lines[1])
        assert match is not None, lines
        cognito = boto3.client(
            "cognito-idp",
            region_name=REGION,
            endpoint_url=exported["AWS_ENDPOINT_URL"],
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
        )
        pool_id = match.group(1)
        # a first read of a small pool loads what any read loads once (modules, models), untraced
        small = cognito.create_user_pool(PoolName="warm-up")["UserPool"]["Id"]
        cognito.admin_create_user(UserPoolId=small, Username="someone", MessageAction="SUPPRESS")
        scan.read_snapshot(cognito, small, SnapshotStore(tmp_path / "w"), digits=1)
        tracemalloc.start()
        try:
            rows = [scan.user_row(u) for u in cognito.list_users(UserPoolId=pool_id, Limit=60)["Users"]]
            per_row = tracemalloc.get_traced_memory()[0] / len(rows)  # a user as a row in memory, strings included
            del rows
            tracemalloc.reset_peak()
            started = tracemalloc.get_traced_memory()[0]
            snap = scan.read_snapshot(cognito, pool_id, SnapshotStore(tmp_path / "s"), digits=1)
            peak = tracemalloc.get_traced_memory()[1] - started
        finally:
            tracemalloc.stop()
    finally:
        server.terminate()
        server.wait(timeout=30)
    held = per_row * users  # the former read's list of rows alone, before its frame
    assert snap.rows == users
    assert peak < held / 5 and peak < 20e6, f"peak {peak / 1e6:.1f} MB reading; the pool as rows: {held / 1e6:.0f} MB"
