"""Step 1: audit the old pool before anything is created.

Reads the pool's configuration, app clients, groups and users (quota-aware, see ``scan``), predicts the new
pool (``pool.create_pool_input``) and what the trigger will send for every user (the trigger's own pure
functions), and returns findings: each with a severity, an exact count, masked examples and a remedy. The
gate fails while a blocker remains that ``accept_findings`` does not name. Returns data; the notebook
displays it.

The users are a frame, or a snapshot folder for the largest pools; either way a pool too large for memory is
read in batches (``user_audit``), and so are its tables and records here.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from botocore.exceptions import ClientError
from pandas.io.formats.style import Styler

from . import deploy, findings, pool_findings, records, scan, shared_values, snapshot_store, user_audit, user_findings
from .aws import RateLimiter, error_code
from .checks import Check
from .findings import Finding
from .params import Params
from .pool import NEVER_DECLARED, STANDARD_ATTRIBUTES, create_pool_input
from .snapshot import Snapshot
from .trigger import migration_trigger
from .user_audit import Batching, Users
from .user_findings import TargetSchema

# Personal data in the snapshot made pseudonymous; records.NAME_COLUMNS are left out, `sub` altogether.
SNAPSHOT_PII = records.PII_COLUMNS


class AuditError(RuntimeError):
    """The old pool cannot be audited as configured; the message names the parameter to fix."""


# (group, username) rows: in memory, a Parquet file of them, or a read's snapshot (its groups' files)
Memberships = pd.DataFrame | Path | Snapshot


@dataclass
class Audit:
    pool: dict[str, Any]
    clients: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    users: Users  # a frame, or a snapshot folder (the largest pools)
    memberships: Memberships
    mfa_config: dict[str, Any] = field(default_factory=dict)
    identity_providers: list[dict[str, Any]] = field(default_factory=list)
    resource_servers: list[dict[str, Any]] = field(default_factory=list)
    target: dict[str, Any] = field(default_factory=dict)  # CreateUserPool's input for the new pool
    scan_seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    snapshot: Snapshot | None = None  # the read's working copy (unmasked), deleted once the records are saved
    read: dict[str, Any] | None = None  # what the read did (Snapshot.summary), kept once the snapshot is deleted
    # Every colliding group, when the findings list only the first (pools read in batches): see assess.
    collision_groups: shared_values.GroupsRecord | None = None

    @property
    def blockers(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "blocker"]


def describe_pool(cognito: Any, pool_id: str) -> dict[str, Any]:
    """DescribeUserPool, with the error an operator can act on when the pool is not there."""
    try:
        pool: dict[str, Any] = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            raise AuditError(
                f"old_user_pool_id: no user pool {pool_id} in this account and Region; check old_user_pool_id, "
                "region and aws_profile"
            ) from exc
        raise
    return pool


def run_audit(cognito: Any, params: Params, limiter: RateLimiter | None = None) -> Audit:
    """Reads everything step 1 looks at (whole-pool reads through ``limiter``) and assesses it."""
    pool_id = params.old_user_pool_id
    pool = describe_pool(cognito, pool_id)
    audit = Audit(
        pool,
        scan.list_clients(cognito, pool_id),
        scan.list_groups(cognito, pool_id, limiter),
        pd.DataFrame(),
        pd.DataFrame(),
        mfa_config=cognito.get_user_pool_mfa_config(UserPoolId=pool_id),
        identity_providers=scan.list_identity_providers(cognito, pool_id),
        resource_servers=scan.list_resource_servers(cognito, pool_id),
    )
    started = time.monotonic()
    groups = [g["GroupName"] for g in audit.groups]
    store = snapshot_store.SnapshotStore.of(params)
    audit.snapshot = scan.read_snapshot(cognito, pool, store, limiter, "old pool users", groups)
    audit.scan_seconds = time.monotonic() - started
    audit.read = audit.snapshot.summary()
    audit.users, audit.memberships = read_users(audit.snapshot)
    audit.target = create_pool_input(cognito, pool, params)
    audit.findings = assess(audit, params)
    return audit


def read_users(snap: Snapshot) -> tuple[Users, Memberships]:
    """The read's users and memberships: in memory when the pool fits (``user_audit.BATCHING``), as they always
    were; otherwise the snapshot itself, which step 1 reads in batches."""
    if snap.rows <= user_audit.BATCHING.in_memory:
        return scan.frame_of(snap), snap.memberships()
    return snap, snap


# --- what the new pool and the trigger will do --------------------------------------------------------------


def custom_name(name: str) -> str:
    """A Schema entry's name as DescribeUserPool shows it: CreateUserPool declares custom ones bare."""
    return name if name in STANDARD_ATTRIBUTES or name.startswith("custom:") else f"custom:{name}"


def target_schema(target: Mapping[str, Any]) -> TargetSchema:
    """What the new pool will accept, from CreateUserPool's Schema (standard attributes it does not declare
    keep Cognito's defaults)."""
    schema = [{**a, "Name": custom_name(a["Name"])} for a in target.get("Schema") or []]
    bounds = {}
    for a in schema:
        number = a.get("NumberAttributeConstraints") or {}
        low, high = number.get("MinValue"), number.get("MaxValue")
        bounds[a["Name"]] = (float(low) if low else None, float(high) if high else None)
    return TargetSchema(
        required=tuple(a["Name"] for a in schema if a.get("Required") and a["Name"] not in NEVER_DECLARED),
        max_length={
            a["Name"]: int(a["StringAttributeConstraints"]["MaxLength"])
            for a in schema
            if (a.get("StringAttributeConstraints") or {}).get("MaxLength")
        },
        types={a["Name"]: a.get("AttributeDataType", "String") for a in schema if a["Name"].startswith("custom:")},
        number_bounds=bounds,
    )


def trigger_environment(params: Params, target: Mapping[str, Any], old_pool: dict[str, Any]) -> dict[str, str]:
    """The environment step 3 will give the trigger, for the new pool as step 2 will create it (CreateUserPool's
    input shaped as DescribeUserPool's answer)."""
    described = {
        **target,
        "SchemaAttributes": [{**a, "Name": custom_name(a["Name"])} for a in target.get("Schema") or []],
    }
    return deploy.function_environment(params, described, old_pool)


def unsendable_finding(params: Params, target: Mapping[str, Any]) -> Finding | None:
    """Attributes the parameters tell the trigger to send that the new pool, as step 2 will create it, will not
    have: every migration would fail. Named by the parameter that sets them (the trigger's own check, run
    next, can only name its environment variable)."""
    schema = {custom_name(a["Name"]) for a in target.get("Schema") or []} | set(STANDARD_ATTRIBUTES)
    legacy_sub = [params.legacy_sub_attribute] if params.legacy_sub_attribute else []
    set_by = {"attribute_map": list(params.attribute_map), "attribute_defaults": list(params.attribute_defaults),
              "legacy_sub_attribute": legacy_sub}  # fmt: skip
    missing = [(key, name) for key, names in set_by.items() for name in names if name not in schema]
    if not missing:
        return None
    fixes = [
        f"{key} sets {name}, which the new pool's schema will not have: declare it in target_custom_attributes "
        f"({{{name.removeprefix('custom:')}: String}}) before step 2 creates the pool (AddCustomAttributes once "
        f"it exists), or remove it from {key}"
        for key, name in missing
    ]
    return Finding("trigger_configuration", "blocker", len(missing), "; ".join(fixes), facts={"missing": missing})


# --- findings -------------------------------------------------------------------------------------------------


def assess(audit: Audit, params: Params, batching: Batching | None = None) -> list[Finding]:
    """Every finding for this pool, these parameters and the new pool in ``audit.target``. A pool of more than
    ``batching.in_memory`` users (``user_audit.BATCHING``) is read in batches; its collision findings then
    list their first groups, and ``audit.collision_groups`` keeps every group."""
    show = params.masker()
    n_read = user_audit.count(audit.users)
    found: list[Finding | None] = [pool_findings.migration_client_finding(audit.clients, params)]
    if not n_read:
        found.append(Finding("empty_pool", "blocker", 0, f"{audit.pool.get('EstimatedNumberOfUsers')} estimated"))
    settings: migration_trigger.Settings | None = None
    unsendable = unsendable_finding(params, audit.target)
    try:
        if unsendable is None:
            settings = migration_trigger.load_settings(trigger_environment(params, audit.target, audit.pool))
    except (migration_trigger.ConfigurationError, deploy.DeployError) as exc:
        found.append(Finding("trigger_configuration", "blocker", 1, str(exc)))
    found.append(unsendable)
    found += pool_findings.client_findings(audit.clients, params)
    pool_mfa = audit.pool.get("MfaConfiguration") or "OFF"
    context = user_audit.Context(
        params, audit.target, target_schema(audit.target), pool_mfa, pool_findings.mfa_factors(audit.mfa_config),
        settings, show,
    )  # fmt: skip
    users = user_audit.find(audit.users, context, batching) if n_read else user_audit.UserFindings([], 0)
    audit.collision_groups = users.groups
    found.append(pool_findings.reset_required_finding(audit.clients, params, users.arriving_reset_required, pool_mfa))
    found += users.findings
    found.append(pool_findings.sub_finding(settings.legacy_sub_attribute if settings else None, n_read))
    n_users = max(n_read, int(audit.pool.get("EstimatedNumberOfUsers") or 0))
    found += pool_findings.carry_findings(
        audit.pool, audit.target, audit.mfa_config, audit.identity_providers, audit.resource_servers, n_read, params
    )
    found += pool_findings.time_findings(n_users, group_sizes(audit), params.list_rate_limit, audit.scan_seconds)
    return [f for f in found if f is not None]


def membership_files(memberships: Path | Snapshot) -> list[Path]:
    return memberships.membership_files() if isinstance(memberships, Snapshot) else [memberships]


def membership_batches(memberships: Memberships, rows: int = 500_000) -> Iterator[pd.DataFrame]:
    if isinstance(memberships, pd.DataFrame):
        yield memberships
        return
    for path in membership_files(memberships):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()


def membership_count(memberships: Memberships) -> int:
    if isinstance(memberships, pd.DataFrame):
        return len(memberships)
    return sum(int(pq.ParquetFile(path).metadata.num_rows) for path in membership_files(memberships))


def group_sizes(audit: Audit) -> dict[str, int]:
    """Members per group, counted batch by batch (0 for an empty group)."""
    sizes: Counter[str] = Counter()
    for batch in membership_batches(audit.memberships):
        sizes.update(pool_findings.group_sizes(audit.groups, batch))
    return {g["GroupName"]: sizes[g["GroupName"]] for g in audit.groups}


# --- tables for the notebook ---------------------------------------------------------------------------------


def pool_overview(audit: Audit) -> pd.DataFrame:
    """The configuration an operator reads first, as (setting, value) rows."""
    pool = audit.pool
    rows = {
        "pool id": pool.get("Id"),
        "name": pool.get("Name"),
        "estimated users": pool.get("EstimatedNumberOfUsers"),
        "users read": user_audit.count(audit.users),
        "groups": len(audit.groups),
        "memberships": membership_count(audit.memberships),
        "app clients": len(audit.clients),
        "MFA": pool.get("MfaConfiguration"),
        "Lambda triggers": ", ".join(sorted(k for k, v in (pool.get("LambdaConfig") or {}).items() if v)) or "none",
        "identity providers": len(audit.identity_providers),
        "resource servers": len(audit.resource_servers),
        "deletion protection": pool.get("DeletionProtection", "INACTIVE"),
        "domain": pool.get("Domain") or "none",
        "scan time": pool_findings.duration(audit.scan_seconds),
    }
    return pd.DataFrame({"setting": list(rows), "value": [str(v) for v in rows.values()]})


def clients_table(audit: Audit) -> pd.DataFrame:
    """App clients and whether a password flow lets the migration trigger fire (it never fires under SRP)."""
    rows = [
        {
            "client": c.get("ClientName"),
            "client id": c.get("ClientId"),
            "auth flows": ", ".join(sorted(c.get("ExplicitAuthFlows") or [])),
            "password flow": pool_findings.has_password_flow(c),
            "secret": bool(c.get("ClientSecret")),
            "user existence errors": c.get("PreventUserExistenceErrors", "LEGACY"),
        }
        for c in audit.clients
    ]
    columns = ["client", "client id", "auth flows", "password flow", "secret", "user existence errors"]
    return pd.DataFrame(rows, columns=columns)


def users_by_status(users: Users) -> pd.DataFrame:
    """User counts by status and enabled flag (counted batch by batch)."""
    counts = [b.groupby(["status", "enabled"]).size() for b in user_audit.batches(users, ["status", "enabled"])]
    if not any(len(c) for c in counts):
        return pd.DataFrame(columns=["status", "enabled", "users"])
    return pd.concat(counts).groupby(level=[0, 1]).sum().rename("users").reset_index()


def required_attributes(audit: Audit) -> pd.DataFrame:
    """For each attribute the new pool requires: old users lacking it, and still lacking it once the trigger
    has applied its mapping (attribute_defaults): only the latter fail to migrate."""
    found = {f.id: f for f in audit.findings}
    after = found["missing_required_attributes"].facts if "missing_required_attributes" in found else {}
    required = target_schema(audit.target).required
    held = [name for name in required if name in user_audit.columns(audit.users)]
    lacking: Counter[str] = Counter()
    for batch in user_audit.batches(audit.users, ["username", *held]):
        lacking.update({name: int((user_findings.text(batch, name) == "").sum()) for name in required})
    rows = [
        {
            "attribute": name,
            "old users lacking it": lacking[name],
            "lacking it after the trigger's mapping": int(after.get(name, 0)),
        }
        for name in required
    ]
    return pd.DataFrame(rows, columns=["attribute", "old users lacking it", "lacking it after the trigger's mapping"])


def collisions(audit: Audit) -> Styler:
    """Every group of users colliding by case or sharing a verified address, one row per group (masked
    unless mask_pii is false). A pool read in batches lists its first groups per finding here; the caption
    then says how many there are, and the record that holds every one."""
    rows = [
        {"finding": f.id, "severity": f.severity, "users": len(group), "who": " / ".join(group)}
        for f in audit.findings
        for group in f.groups
    ]
    table = findings.escaped_style(pd.DataFrame(rows, columns=["finding", "severity", "users", "who"]))
    record = audit.collision_groups
    if record is None or not record.truncated:
        return table
    shown = "; ".join(f"{kind_id}: the first {record.listed:,} of {n:,}" for kind_id, n in record.truncated.items())
    return table.set_caption(f"Groups shown: {shown}. Every group is in {shared_values.RECORD} (save the records).")


def fixed_settings(audit: Audit) -> pd.DataFrame:
    """Every setting fixed at pool creation (seed 001), old value beside the new pool's as step 2 will create
    it; ``differs`` marks the reasons for the new pool."""
    pool, target = audit.pool, audit.target
    old_schema = pool.get("SchemaAttributes") or []
    new_schema = [{**a, "Name": custom_name(a["Name"])} for a in target.get("Schema") or []]

    def required(schema: list[dict[str, Any]]) -> list[str]:
        return sorted(a["Name"] for a in schema if a.get("Required") and a["Name"] not in NEVER_DECLARED)

    def custom(schema: list[dict[str, Any]]) -> list[str]:
        return sorted(
            f"{a['Name']} ({a.get('AttributeDataType', 'String')})" for a in schema if a["Name"].startswith("custom:")
        )

    secrets = sorted(c["ClientName"] for c in audit.clients if c.get("ClientSecret"))
    rows = [
        ("PoolName", pool.get("Name"), target.get("PoolName")),
        (
            "UsernameAttributes",
            sorted(pool.get("UsernameAttributes") or []),
            sorted(target.get("UsernameAttributes") or []),
        ),
        ("AliasAttributes", sorted(pool.get("AliasAttributes") or []), sorted(target.get("AliasAttributes") or [])),
        (
            "UsernameConfiguration.CaseSensitive",
            (pool.get("UsernameConfiguration") or {}).get("CaseSensitive", True),
            (target.get("UsernameConfiguration") or {}).get("CaseSensitive", True),
        ),
        ("Schema: required attributes", required(old_schema), required(new_schema)),
        ("Schema: custom attributes", custom(old_schema), custom(new_schema)),
        ("App client secrets (GenerateSecret)", secrets, [f"{name} (new secret)" for name in secrets]),
        ("SMS configuration activated", bool(pool.get("SmsConfiguration")), bool(target.get("SmsConfiguration"))),
    ]
    frame = pd.DataFrame(rows, columns=["setting", "old pool", "new pool"])
    frame["differs"] = [str(a) != str(b) for a, b in zip(frame["old pool"], frame["new pool"], strict=True)]
    frame["old pool"] = frame["old pool"].map(str)
    frame["new pool"] = frame["new pool"].map(str)
    return frame


def style_fixed_settings(frame: pd.DataFrame) -> Styler:
    """The fixed settings with the differing rows highlighted: the reasons for the new pool stand out."""
    highlight = "background-color: #fff3cd; font-weight: bold"
    return findings.escaped_style(frame).apply(lambda row: [highlight if row["differs"] else ""] * len(row), axis=1)


def findings_table(audit: Audit, params: Params) -> Styler:
    """Every finding, blockers first, coloured by severity."""
    return findings.styled_table(findings.table(audit.findings, params.accept_findings))


def gate_checks(audit: Audit, params: Params) -> list[Check]:
    """Blockers fail the gate unless ``accept_findings`` names them; warnings are shown."""
    return findings.gate_checks(audit.findings, params.accept_findings)


def save_records(audit: Audit, params: Params) -> list[str]:
    """The run's record of step 1: findings.json, audit.json (with what the read resumed, if it did), and the
    snapshot the report compares against later (users and memberships as Parquet, personal data masked unless
    mask_pii is false), written batch by batch for the largest pools, with every colliding group when the
    findings list only the first. The read's own unmasked snapshot is deleted once they are written."""
    run_dir = params.records_dir
    if isinstance(audit.users, Snapshot) and not audit.users.folder.exists():
        raise AuditError(
            f"the old pool's read ({audit.users.folder.name}) was deleted when this step's records were saved in "
            f"{run_dir}: they are there; to save them again, run this step again from the top"
        )
    mask = params.masker()
    paths = [
        save_users(run_dir, audit.users, mask),
        save_memberships(run_dir, audit.memberships, mask),
        records.save_json(run_dir, "findings", findings.to_records(audit.findings, params.accept_findings)),
    ]
    summary = {
        "pool_id": audit.pool.get("Id"),
        "users": user_audit.count(audit.users),
        "groups": len(audit.groups),
        "memberships": membership_count(audit.memberships),
        "scan_seconds": round(audit.scan_seconds, 3),
        "read": audit.read,
        "fixed_settings": fixed_settings(audit).to_dict("records"),
        "findings": {f.id: {"severity": f.severity, "count": f.count} for f in audit.findings},
        "checks": [c.__dict__ for c in gate_checks(audit, params)],
    }
    if audit.collision_groups is not None:
        record = audit.collision_groups
        summary["collision_groups"] = {"record": shared_values.RECORD, "groups": record.groups, "listed": record.listed}
        paths.append(records.copy_file(record.path, run_dir / shared_values.RECORD))
    paths.append(records.save_json(run_dir, "audit", summary))
    snapshot_store.release(audit.snapshot)
    return [str(p) for p in paths]


def save_users(run_dir: Path, users: Users, mask: records.Masker) -> Path:
    """old_users.parquet: every user but their `sub`, masked; batch by batch when the pool is read so."""
    frame = user_audit.whole(users)
    if frame is not None:
        return records.save_frame(run_dir, "old_users", mask.frame(_without_sub(frame), SNAPSHOT_PII))
    schema = user_audit.arrow_schema(users)
    kept = mask.frame(pd.DataFrame(columns=schema.names), SNAPSHOT_PII).columns  # masking leaves names out
    schema = pa.schema([schema.field(name) for name in kept if name != "sub"])
    batches = user_audit.batches(users)
    return records.save_frames(
        run_dir, "old_users", (mask.frame(_without_sub(b), SNAPSHOT_PII) for b in batches), schema
    )


def _without_sub(users: pd.DataFrame) -> pd.DataFrame:
    return users.drop(columns=["sub"], errors="ignore")


def save_memberships(run_dir: Path, memberships: Memberships, mask: records.Masker) -> Path:
    if isinstance(memberships, pd.DataFrame):
        return records.save_frame(run_dir, "old_memberships", mask.frame(memberships, SNAPSHOT_PII))
    schema = pa.schema([("group", pa.string()), ("username", pa.string())])
    masked = (mask.frame(b, SNAPSHOT_PII) for b in membership_batches(memberships))
    return records.save_frames(run_dir, "old_memberships", masked, schema)
