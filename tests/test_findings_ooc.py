"""Step 1's findings over a pool too large for memory are the findings over one frame, in bounded memory.

A generated pool carrying every quirk (the legacy generator's, and what this module adds: case collisions only
case folding finds, identical spellings that are no collision, shared verified phones, federated users, values
the new schema rejects, legacy SMS MFA, attributes the new pool lacks) is audited twice: from one frame, as
every pool that fits, and from its snapshot in batches of 97 users with the cross-user detectors run on chunks
of 5 users, as the largest pools are. Ids, severities, counts, examples, details, facts and every colliding
group agree, for each sign-in model, alias set, MFA policy and attribute map; so do the tables and records.
Then memory: a 300,000-user snapshot read in batches peaks far below the same pool read whole, each measured in
a fresh process (about a minute and a half).
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from cognito_migration import audit, aws, findings, scan, shared_values, snapshot, user_audit
from cognito_migration.local import legacy_snapshot
from cognito_migration.local.legacy import generate_users, seed_legacy_pool
from cognito_migration.local.server import LocalAWS
from cognito_migration.params import Params, validate
from findings_memory import write_context

REGION = "ca-central-1"  # a Region of its own: other tests reseed the legacy pool elsewhere
USERS, SEED = 3000, 5
SMALL = user_audit.Batching(in_memory=0, rows=97, shared=shared_values.Limits(chunk_rows=5))
MEMORY_USERS = 300_000
USER_KINDS = {
    "username_case_collisions", "email_case_collisions", "preferred_username_case_collisions", "alias_conflicts",
    "usernames_are_emails", "missing_required_attributes", "invalid_phone_numbers", "values_too_long",
    "custom_attribute_type_mismatch", "attributes_dropped", "attribute_map_unused_source", "federated_users",
    "unconfirmed_users", "force_change_password_users", "reset_required_users", "disabled_users",
    "no_verified_contact", "mfa_users", "mfa_refused_users",
}  # fmt: skip
# name -> (parameters, old pool settings): together they reach every user finding, each severity it can take.
VARIANTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "usernames, case-insensitive": ({}, {}),
    "email sign-in, no default for name": (
        {"target_username_attributes": ["email"], "attribute_defaults": {}},
        {},
    ),
    "phone sign-in, case-sensitive": (
        {"target_username_attributes": ["phone_number"], "target_case_sensitive": True},
        {},
    ),
    "every alias, MFA ON, refuse": (
        {"target_alias_attributes": ["email", "phone_number", "preferred_username"], "mfa_policy": "refuse"},
        {"MfaConfiguration": "ON"},
    ),
    "email alias, MFA OPTIONAL, refuse": ({"target_alias_attributes": ["email"], "mfa_policy": "refuse"}, {}),
    "sms, MFA OFF, attribute map, old sub kept": (
        {
            "mfa_policy": "sms",
            "attribute_map": {"nickname": ["middle_name", "given_name"], "name": "given_name"},
            "legacy_sub_attribute": "custom:legacy_sub",
        },
        {"MfaConfiguration": "OFF"},
    ),
}


def quirky_frame() -> pd.DataFrame:
    """The generated users as step 1 reads them, with the quirks the generator does not make."""
    frame = pd.DataFrame([legacy_snapshot.user_row(u) for u in generate_users(USERS, SEED)])
    frame["created"] = pd.to_datetime(frame["created"], utc=True)
    plain = frame.index[(frame["status"] == "CONFIRMED") & frame["enabled"]]

    def put(column: str, values: dict[int, str]) -> None:
        if column not in frame.columns:
            frame[column] = pd.Series(None, index=frame.index, dtype=object)
        for position, value in values.items():
            frame.loc[plain[position], column] = value

    # Case collisions, three of them only case folding finds; identical spellings alone are none.
    put("preferred_username", {0: "Sam.Wise", 1: "sam.wise", 2: "SAM.WISE", 3: "Straße", 4: "STRASSE",
                               5: "İstanbul", 6: "i̇stanbul", 7: "same", 8: "same", 9: "solo"})  # fmt: skip
    put("email", {10: "Ünal@example.com", 11: "ünal@example.com"})
    put("email_verified", {10: "true", 11: "true"})
    # One phone number verified on three users, and held unverified by a fourth.
    put("phone_number", {20: "+15550000001", 21: "+15550000001", 22: "+15550000001", 23: "+15550000001"})
    put("phone_number_verified", {20: "true", 21: "true", 22: "true", 23: "false"})
    put("status", {30: "EXTERNAL_PROVIDER"})
    put("identities", {30: '[{"providerName": "Google"}]', 31: '[{"providerName": "Google"}]'})
    put("given_name", {40: "y" * 2049})
    put("custom:tier", {41: "x" * 40})
    put("custom:signup_year", {42: "n/a", 43: "1900"})
    put("middle_name", {p: "   " for p in range(50, 55)})  # blank: held by nobody
    put("custom:legacy_flag", {p: "1" for p in range(60, 65)})  # the new pool lacks it: dropped
    frame["legacy_sms_mfa"] = frame.index.isin(plain[70:80])
    frame.loc[plain[90], "username"] = "kim@example.com"
    return frame


@pytest.fixture(scope="module")
def pool_snapshot(tmp_path_factory: pytest.TempPathFactory) -> snapshot.Snapshot:
    folder = tmp_path_factory.mktemp("findings-ooc") / "snapshot"
    return snapshot.from_frame(quirky_frame(), folder, shard_digits=1, batch_rows=101)


@pytest.fixture(scope="module")
def regional(local_aws: LocalAWS) -> Any:
    return boto3.client("cognito-idp", region_name=REGION, endpoint_url=local_aws.endpoint_url)


@pytest.fixture(scope="module")
def old_pool(regional: Any) -> tuple[audit.Audit, str]:
    """The legacy pool's configuration, clients and groups, without its users; and the migration client."""
    legacy = seed_legacy_pool(users=5, seed=SEED, region=REGION)
    pool_id = legacy.pool_id
    memberships = pd.DataFrame({"group": ["admins", "admins", "viewers"], "username": ["a", "b", "c"]})
    base = audit.Audit(
        audit.describe_pool(regional, pool_id),
        scan.list_clients(regional, pool_id),
        scan.list_groups(regional, pool_id),
        pd.DataFrame(),
        memberships,
        mfa_config=regional.get_user_pool_mfa_config(UserPoolId=pool_id),
    )
    return base, legacy.migration_client_id


def configured(
    regional: Any, old_pool: tuple[audit.Audit, str], variant: str, **extra: Any
) -> tuple[audit.Audit, Params]:
    """The audit (users still to set) and parameters of one variant."""
    overrides, pool_settings = VARIANTS[variant]
    base, client_id = old_pool
    params = validate(
        {
            "region": REGION,
            "old_user_pool_id": base.pool["Id"],
            "old_client_id": client_id,
            "target_required_attributes": ["email", "name"],
            "attribute_defaults": {"name": "Unknown"},
            **overrides,
            **extra,
        }
    )
    pool = {**base.pool, **pool_settings}
    target = audit.create_pool_input(regional, pool, params)
    return dataclasses.replace(base, pool=pool, target=target), params


def both_ways(
    result: audit.Audit, params: Params, snap: snapshot.Snapshot, batching: user_audit.Batching = SMALL
) -> tuple[audit.Audit, audit.Audit]:
    """The audit assessed from one frame, and from the snapshot in batches."""
    whole = dataclasses.replace(result, users=snap.frame())
    whole.findings = audit.assess(whole, params)
    batched = dataclasses.replace(result, users=snap)
    batched.findings = audit.assess(batched, params, batching)
    return whole, batched


def collision_rows(result: audit.Audit) -> list[dict[str, Any]]:
    return audit.collisions(result).data.to_dict("records")


# --- the same findings ------------------------------------------------------------------------------------------


def test_a_merge_sums_keeps_the_first_examples_and_asks_how_to_write_totals() -> None:
    first = findings.Finding("disabled_users", "warning", 2, "disabled", ("a", "b"), facts={"x": 1, "kind": "k"})
    second = findings.Finding("disabled_users", "blocker", 3, "disabled", ("c", "d"), facts={"x": 2, "kind": "k"})
    merged = findings.merge([first, second])
    assert merged == findings.Finding("disabled_users", "blocker", 5, "disabled", ("a", "b", "c"),
                                      facts={"x": 3, "kind": "k"})  # fmt: skip
    assert findings.merge([]) is None

    totals = dataclasses.replace(second, detail="3 of them")
    with pytest.raises(ValueError, match="disabled_users's detail differs between batches"):
        findings.merge([first, totals])
    assert findings.merge([first, totals], render=lambda m: f"{m.count} of them").detail == "5 of them"
    with pytest.raises(ValueError, match="fact kind is 'k' in one batch, 'l' in another"):
        findings.merge([first, dataclasses.replace(second, facts={"kind": "l"})])
    with pytest.raises(ValueError, match="findings of one kind only"):
        findings.merge([first, dataclasses.replace(second, id="unconfirmed_users")])


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_snapshot_read_in_batches_gives_the_findings_of_one_frame(
    variant: str, pool_snapshot: snapshot.Snapshot, regional: Any, old_pool: tuple[audit.Audit, str]
) -> None:
    result, params = configured(regional, old_pool, variant)
    whole, batched = both_ways(result, params, pool_snapshot)

    assert findings.to_records(batched.findings) == findings.to_records(whole.findings)
    assert collision_rows(batched) == collision_rows(whole)
    assert batched.collision_groups is not None and whole.collision_groups is None
    assert batched.collision_groups.truncated == {}


def test_the_variants_reach_every_user_finding(
    pool_snapshot: snapshot.Snapshot, regional: Any, old_pool: tuple[audit.Audit, str]
) -> None:
    frame = pool_snapshot.frame()
    reached: dict[str, set[str]] = {}
    for variant in VARIANTS:
        result, params = configured(regional, old_pool, variant)
        for f in audit.assess(dataclasses.replace(result, users=frame), params):
            reached.setdefault(f.id, set()).add(f.severity)
    assert USER_KINDS - set(reached) == set()
    assert {"blocker", "info"} <= reached["alias_conflicts"] and {"blocker", "warning"} <= reached["mfa_refused_users"]
    assert {"blocker", "warning"} <= reached["email_case_collisions"]


def test_a_large_frame_is_read_in_batches_too(
    pool_snapshot: snapshot.Snapshot, regional: Any, old_pool: tuple[audit.Audit, str]
) -> None:
    result, params = configured(regional, old_pool, "every alias, MFA ON, refuse")
    frame = pool_snapshot.frame()
    whole = audit.assess(dataclasses.replace(result, users=frame), params)
    batched = dataclasses.replace(result, users=frame)
    assert findings.to_records(audit.assess(batched, params, SMALL)) == findings.to_records(whole)
    assert batched.collision_groups is not None


def test_findings_list_their_first_groups_and_the_record_keeps_every_one(
    pool_snapshot: snapshot.Snapshot, regional: Any, old_pool: tuple[audit.Audit, str], tmp_path: Path
) -> None:
    result, params = configured(regional, old_pool, "usernames, case-insensitive", run_dir=str(tmp_path))
    listing_two = dataclasses.replace(SMALL, shared=dataclasses.replace(SMALL.shared, listed=2))
    whole, batched = both_ways(result, params, pool_snapshot, listing_two)

    everything = {f.id: f for f in whole.findings if f.groups}
    assert {"username_case_collisions", "email_case_collisions", "alias_conflicts"} <= set(everything)
    for f in batched.findings:
        if f.id not in everything:
            continue
        full = everything[f.id]
        assert f.groups == full.groups[:2] and f.examples == full.examples and f.detail == full.detail
        assert (f.count, f.severity) == (full.count, full.severity)
        assert f.facts == {**full.facts, "groups_listed": 2, "groups_record": shared_values.RECORD}
    assert batched.collision_groups is not None
    assert batched.collision_groups.truncated == {kind_id: len(f.groups) for kind_id, f in everything.items()}
    assert "the first 2 of" in audit.collisions(batched).caption

    audit.save_records(batched, params)
    record = pd.read_parquet(tmp_path / shared_values.RECORD)
    assert record.to_dict("records") == [
        {"finding": row["finding"], "users": row["users"], "who": row["who"]} for row in collision_rows(whole)
    ]
    summary = json.loads((tmp_path / "audit.json").read_text())["collision_groups"]
    assert summary == {"record": shared_values.RECORD, "groups": batched.collision_groups.groups, "listed": 2}


def test_tables_and_records_of_a_snapshot_read_in_batches(
    pool_snapshot: snapshot.Snapshot,
    regional: Any,
    old_pool: tuple[audit.Audit, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, params = configured(regional, old_pool, "email sign-in, no default for name")
    saved_in = {name: dataclasses.replace(params, run_dir=str(tmp_path / name)) for name in ("whole", "batched")}
    memberships = tmp_path / "memberships.parquet"
    result.memberships.to_parquet(memberships)
    whole, _ = both_ways(result, saved_in["whole"], pool_snapshot)
    monkeypatch.setattr(user_audit, "BATCHING", SMALL)  # the tables and records read in its batches too
    batched = dataclasses.replace(result, users=pool_snapshot, memberships=memberships)
    batched.findings = audit.assess(batched, saved_in["batched"])
    assert findings.to_records(batched.findings) == findings.to_records(whole.findings)

    frame = pool_snapshot.frame()
    expected = frame.groupby(["status", "enabled"]).size().rename("users").reset_index()
    pd.testing.assert_frame_equal(audit.users_by_status(pool_snapshot), expected)
    pd.testing.assert_frame_equal(audit.required_attributes(batched), audit.required_attributes(whole))
    pd.testing.assert_frame_equal(audit.pool_overview(batched), audit.pool_overview(whole))

    for name, saved in (("whole", whole), ("batched", batched)):
        audit.save_records(saved, saved_in[name])
    assert (tmp_path / "batched" / "findings.json").read_text() == (tmp_path / "whole" / "findings.json").read_text()
    for name in ("old_users.parquet", "old_memberships.parquet"):
        expected_saved = pd.read_parquet(tmp_path / "whole" / name)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "batched" / name), expected_saved, check_dtype=False)
    masked = pd.read_parquet(tmp_path / "batched" / "old_users.parquet")
    assert "sub" not in masked.columns and not set(frame["username"]) & set(masked["username"])


def but_the_read_time(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Findings records without the one detail that says how long this read took."""
    return [{**r, "detail": ""} if r["id"] == "full_scan_time" else r for r in records]


def test_run_audit_assesses_a_pool_too_large_for_memory_from_its_read_snapshot(
    local_aws: LocalAWS, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    region = "sa-east-1"  # a pool of its own, read over HTTP as step 1 reads it
    cognito = boto3.client("cognito-idp", region_name=region, endpoint_url=local_aws.endpoint_url)
    legacy = seed_legacy_pool(users=600, seed=SEED, region=region)
    params = validate(
        {
            "region": region,
            "old_user_pool_id": legacy.pool_id,
            "old_client_id": legacy.migration_client_id,
            "target_required_attributes": ["email", "name"],
            "attribute_defaults": {"name": "Unknown"},
            "list_rate_limit": 30,
        }
    )
    saved_in = {name: dataclasses.replace(params, run_dir=str(tmp_path / name)) for name in ("whole", "batched")}
    whole = audit.run_audit(cognito, saved_in["whole"], aws.RateLimiter(30))
    audit.save_records(whole, saved_in["whole"])
    monkeypatch.setattr(user_audit, "BATCHING", dataclasses.replace(SMALL, in_memory=100))
    batched = audit.run_audit(cognito, saved_in["batched"], aws.RateLimiter(30))

    assert isinstance(whole.users, pd.DataFrame) and isinstance(whole.memberships, pd.DataFrame)
    assert isinstance(batched.users, snapshot.Snapshot) and batched.memberships is batched.snapshot
    assert but_the_read_time(findings.to_records(batched.findings)) == but_the_read_time(
        findings.to_records(whole.findings)
    )
    audit.save_records(batched, saved_in["batched"])
    assert batched.snapshot is not None and not batched.snapshot.folder.exists(), "released once recorded"
    with pytest.raises(audit.AuditError, match="was deleted when this step's records were saved .*from the top"):
        audit.save_records(batched, saved_in["batched"])  # its users were the snapshot: said, not a missing file
    saved = {name: json.loads((tmp_path / name / "findings.json").read_text()) for name in ("whole", "batched")}
    assert but_the_read_time(saved["batched"]) == but_the_read_time(saved["whole"])
    for name in ("old_users.parquet", "old_memberships.parquet"):
        expected = pd.read_parquet(tmp_path / "whole" / name)
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "batched" / name), expected, check_dtype=False)
    summary = json.loads((tmp_path / "batched" / "audit.json").read_text())
    assert summary["users"] == 600 and summary["read"]["users"] == 600
    assert (tmp_path / "batched" / shared_values.RECORD).exists()


# --- bounded memory ------------------------------------------------------------------------------------------------


def test_a_generated_snapshot_keeps_the_quirk_shares_with_every_name_unique(tmp_path: Path) -> None:
    memberships = tmp_path / "memberships.parquet"
    snap = legacy_snapshot.write(tmp_path / "snapshot", 3000, seed=SEED, batch=1000, memberships=memberships)
    frame = snap.frame()
    assert snap.complete and len(frame) == 3000
    first = {legacy_snapshot.user_row(u)["username"] for u in generate_users(1000, SEED)}
    assert first <= set(frame["username"])  # the first batch is the generator's own
    for column in ("username", "email", "sub"):
        assert not frame[column].duplicated().any(), column
    folded = frame["username"].str.casefold()
    assert folded.duplicated(keep=False).sum() == 3 * 2 * (1000 // 200)  # the case pairs of each batch
    phones = frame["phone_number"].dropna()
    verified_phones = phones[frame.loc[phones.index, "phone_number_verified"] == "true"]
    assert verified_phones.str.fullmatch(r"\+[1-9]\d{1,14}").all()
    assert (frame["status"] == "UNCONFIRMED").sum() == 3 * (1000 * 3 // 100)
    members = pd.read_parquet(memberships)
    assert len(members) == sum(len(u.groups) for i in range(3) for u in generate_users(1000, SEED + i))
    assert set(members["username"]) <= set(frame["username"])


def measured(context: Path, folder: Path, how: str) -> dict[str, float]:
    script = Path(__file__).with_name("findings_memory.py")
    done = subprocess.run([sys.executable, script, context, folder, how], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    measurement: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return measurement


def test_a_large_snapshot_read_in_batches_stays_far_below_the_whole_pool_in_memory(
    regional: Any, old_pool: tuple[audit.Audit, str], tmp_path: Path
) -> None:
    snap = legacy_snapshot.write(tmp_path / "snapshot", MEMORY_USERS, seed=SEED)
    result, params = configured(regional, old_pool, "usernames, case-insensitive")
    context = write_context(tmp_path / "context.pickle", result, params)

    whole = measured(context, snap.folder, "whole")
    batched = measured(context, snap.folder, "batches")

    assert batched["findings"] == whole["findings"], "the same findings, digest for digest"
    grown_whole, grown_batched = whole["peak_mb"] - whole["before_mb"], batched["peak_mb"] - batched["before_mb"]
    assert grown_whole > 300, f"the whole pool must weigh in memory: {grown_whole:.0f} MB"
    assert grown_batched < grown_whole / 2, f"batches: {grown_batched:.0f} MB, whole: {grown_whole:.0f} MB"
