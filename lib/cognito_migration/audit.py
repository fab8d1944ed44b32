"""Step 1: audit the old pool before anything is created.

Reads the pool's configuration, app clients, groups and users (quota-aware, see ``scan``), predicts the new
pool (``pool.create_pool_input``) and what the trigger will send for every user (the trigger's own pure
functions), and returns findings: each with a severity, an exact count, masked examples and a remedy. The
gate fails while a blocker remains that ``accept_findings`` does not name. Returns data; the notebook
displays it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from botocore.exceptions import ClientError
from pandas.io.formats.style import Styler

from . import deploy, findings, pool_findings, records, report, scan, snapshot_store, user_findings
from .aws import RateLimiter, error_code
from .checks import Check
from .findings import Finding
from .params import Params
from .pool import NEVER_DECLARED, STANDARD_ATTRIBUTES, create_pool_input
from .snapshot import Snapshot
from .trigger import migration_trigger
from .user_findings import TargetSchema

# Personal data in the snapshot made pseudonymous; records.NAME_COLUMNS are left out, `sub` altogether.
SNAPSHOT_PII = records.PII_COLUMNS


class AuditError(RuntimeError):
    """The old pool cannot be audited as configured; the message names the parameter to fix."""


@dataclass
class Audit:
    pool: dict[str, Any]
    clients: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    users: pd.DataFrame
    memberships: pd.DataFrame
    mfa_config: dict[str, Any] = field(default_factory=dict)
    identity_providers: list[dict[str, Any]] = field(default_factory=list)
    resource_servers: list[dict[str, Any]] = field(default_factory=list)
    target: dict[str, Any] = field(default_factory=dict)  # CreateUserPool's input for the new pool
    scan_seconds: float = 0.0
    findings: list[Finding] = field(default_factory=list)
    snapshot: Snapshot | None = None  # the read's working copy (unmasked), deleted once the records are saved

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
    audit.users, audit.memberships = scan.frame_of(audit.snapshot), audit.snapshot.memberships()
    audit.target = create_pool_input(cognito, pool, params)
    audit.findings = assess(audit, params)
    return audit


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


def is_attribute(column: str) -> bool:
    return column in STANDARD_ATTRIBUTES or column in NEVER_DECLARED or column.startswith(("custom:", "dev:"))


def old_attributes(users: pd.DataFrame) -> list[dict[str, str]]:
    """Each user's attributes as ListUsers returned them (the trigger reads the same through AdminGetUser)."""
    columns = [c for c in users.columns if is_attribute(c)]
    return [
        {c: v for c, v in zip(columns, row, strict=True) if isinstance(v, str) and v}
        for row in users[columns].itertuples(index=False, name=None)
    ]


def predictor(settings: migration_trigger.Settings) -> Callable[[str, Mapping[str, str]], Mapping[str, str]]:
    """What the trigger would send for a user (old username, old attributes), by its own pure function."""

    def predict(username: str, attributes: Mapping[str, str]) -> Mapping[str, str]:
        return migration_trigger.build_user_attributes(
            [{"Name": k, "Value": v} for k, v in attributes.items()],
            settings.allowed_attributes,
            settings.attribute_defaults,
            settings.legacy_sub_attribute,
            attribute_map=settings.attribute_map,
            username=username,
        )

    return predict


# --- findings -------------------------------------------------------------------------------------------------


def assess(audit: Audit, params: Params) -> list[Finding]:
    """Every finding for this pool, these parameters and the new pool in ``audit.target``."""
    show = params.masker()
    users = audit.users
    found: list[Finding | None] = [pool_findings.migration_client_finding(audit.clients, params)]
    if users.empty:
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
    found.append(
        pool_findings.reset_required_finding(
            audit.clients, params, arriving_reset_required(users), audit.pool.get("MfaConfiguration") or "OFF"
        )
    )
    if not users.empty:
        found += user_side_findings(audit, params, settings, show)
    found.append(pool_findings.sub_finding(settings.legacy_sub_attribute if settings else None, len(users)))
    n_users = max(len(users), int(audit.pool.get("EstimatedNumberOfUsers") or 0))
    found += pool_findings.carry_findings(
        audit.pool, audit.target, audit.mfa_config, audit.identity_providers, audit.resource_servers, len(users), params
    )
    found += pool_findings.time_findings(
        n_users, pool_findings.group_sizes(audit.groups, audit.memberships), params.list_rate_limit, audit.scan_seconds
    )
    return [f for f in found if f is not None]


def arriving_reset_required(users: pd.DataFrame) -> int:
    """Users the trigger will create RESET_REQUIRED whatever mfa_policy says: their old password is not theirs
    (FORCE_CHANGE_PASSWORD) or must be reset (RESET_REQUIRED)."""
    if users.empty or "status" not in users.columns:
        return 0
    return int(users["status"].isin(["FORCE_CHANGE_PASSWORD", "RESET_REQUIRED"]).sum())


def sign_in_attributes(target: Mapping[str, Any]) -> set[str]:
    return set(target.get("UsernameAttributes") or []) | set(target.get("AliasAttributes") or [])


def user_side_findings(
    audit: Audit, params: Params, settings: migration_trigger.Settings | None, show: records.Masker
) -> list[Finding | None]:
    users, sign_in = audit.users, sign_in_attributes(audit.target)
    found: list[Finding | None] = []
    if not params.target_case_sensitive:
        found += [
            user_findings.collision_finding("username_case_collisions", users, "username", "blocker", show),
            user_findings.collision_finding(
                "email_case_collisions", users, "email", "blocker" if "email" in sign_in else "warning", show
            ),
            user_findings.collision_finding(
                "preferred_username_case_collisions",
                users,
                "preferred_username",
                "blocker" if "preferred_username" in sign_in else "info",
                show,
            ),
        ]
    found.append(user_findings.alias_conflict_finding(users, params.target_case_sensitive, sign_in, show))
    if "email" in (audit.target.get("AliasAttributes") or []):
        is_email, _ = report.alias_refusals(users, np.zeros(len(users), dtype=bool), ("email",), True)
        found.append(
            user_findings.user_finding(
                "usernames_are_emails",
                users,
                pd.Series(is_email, index=users.index),
                show,
                "the new pool takes email aliases: the trigger refuses a username that is an email address",
            )
        )
    if settings is not None:
        found += user_findings.attribute_findings(
            list(users["username"]), old_attributes(users), predictor(settings), target_schema(audit.target), show
        )
    found.append(user_findings.unused_map_sources(users, migration_trigger.parse_attribute_map(params.attribute_map)))
    found += user_findings.status_findings(users, show)
    mfa = audit.pool.get("MfaConfiguration") or "OFF"
    found.append(user_findings.mfa_finding(users, mfa, pool_findings.mfa_factors(audit.mfa_config), params.mfa_policy))
    found.append(user_findings.mfa_refused_finding(users, mfa, params.mfa_policy, params.target_case_sensitive, show))
    return found


# --- tables for the notebook ---------------------------------------------------------------------------------


def pool_overview(audit: Audit) -> pd.DataFrame:
    """The configuration an operator reads first, as (setting, value) rows."""
    pool = audit.pool
    rows = {
        "pool id": pool.get("Id"),
        "name": pool.get("Name"),
        "estimated users": pool.get("EstimatedNumberOfUsers"),
        "users read": len(audit.users),
        "groups": len(audit.groups),
        "memberships": len(audit.memberships),
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


def users_by_status(users: pd.DataFrame) -> pd.DataFrame:
    """User counts by status and enabled flag."""
    if users.empty:
        return pd.DataFrame(columns=["status", "enabled", "users"])
    return users.groupby(["status", "enabled"]).size().rename("users").reset_index()


def required_attributes(audit: Audit) -> pd.DataFrame:
    """For each attribute the new pool requires: old users lacking it, and still lacking it once the trigger
    has applied its mapping (attribute_defaults): only the latter fail to migrate."""
    found = {f.id: f for f in audit.findings}
    after = found["missing_required_attributes"].facts if "missing_required_attributes" in found else {}
    rows = [
        {
            "attribute": name,
            "old users lacking it": int((user_findings.text(audit.users, name) == "").sum()),
            "lacking it after the trigger's mapping": int(after.get(name, 0)),
        }
        for name in target_schema(audit.target).required
    ]
    return pd.DataFrame(rows, columns=["attribute", "old users lacking it", "lacking it after the trigger's mapping"])


def collisions(audit: Audit) -> pd.DataFrame:
    """Every group of users colliding by case or sharing a verified address, one row per group (masked
    unless mask_pii is false)."""
    rows = [
        {"finding": f.id, "severity": f.severity, "users": len(group), "who": " / ".join(group)}
        for f in audit.findings
        for group in f.groups
    ]
    return pd.DataFrame(rows, columns=["finding", "severity", "users", "who"])


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
    mask_pii is false). The read's own unmasked snapshot is deleted once they are written."""
    run_dir = params.records_dir
    users = audit.users.drop(columns=["sub"], errors="ignore")
    mask = params.masker()
    paths = [
        records.save_frame(run_dir, "old_users", mask.frame(users, SNAPSHOT_PII)),
        records.save_frame(run_dir, "old_memberships", mask.frame(audit.memberships, SNAPSHOT_PII)),
        records.save_json(run_dir, "findings", findings.to_records(audit.findings, params.accept_findings)),
        records.save_json(
            run_dir,
            "audit",
            {
                "pool_id": audit.pool.get("Id"),
                "users": len(audit.users),
                "groups": len(audit.groups),
                "memberships": len(audit.memberships),
                "scan_seconds": round(audit.scan_seconds, 3),
                "read": audit.snapshot.summary() if audit.snapshot is not None else None,
                "fixed_settings": fixed_settings(audit).to_dict("records"),
                "findings": {f.id: {"severity": f.severity, "count": f.count} for f in audit.findings},
                "checks": [c.__dict__ for c in gate_checks(audit, params)],
            },
        ),
    ]
    snapshot_store.release(audit.snapshot)
    return [str(p) for p in paths]
