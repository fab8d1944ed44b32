"""Step 1: audit the old pool before anything is created.

Reads the pool's configuration, app clients, groups and users (quota-aware, see ``scan``), compares the
settings fixed at creation with the target, and returns checks that gate the run. Returns data; the
notebook displays it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from . import records, scan
from .aws import RateLimiter, error_code
from .checks import Check
from .params import Params

PASSWORD_FLOWS = {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH"}


class AuditError(RuntimeError):
    """The old pool cannot be audited as configured; the message names the parameter to fix."""


@dataclass
class Audit:
    pool: dict[str, Any]
    clients: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    users: pd.DataFrame
    memberships: pd.DataFrame
    checks: list[Check] = field(default_factory=list)

    @property
    def blockers(self) -> list[Check]:
        return [c for c in self.checks if not c.passed and c.severity == "blocker"]


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
    """Reads everything step 1 looks at; whole-pool reads go through ``limiter``."""
    pool = describe_pool(cognito, params.old_user_pool_id)
    clients = scan.list_clients(cognito, params.old_user_pool_id)
    groups = scan.list_groups(cognito, params.old_user_pool_id, limiter)
    users = scan.scan_users(
        cognito, params.old_user_pool_id, limiter, pool.get("EstimatedNumberOfUsers"), "old pool users"
    )
    memberships = scan.scan_memberships(cognito, params.old_user_pool_id, [g["GroupName"] for g in groups], limiter)
    audit = Audit(pool, clients, groups, users, memberships)
    audit.checks = checks(audit, params)
    return audit


def pool_overview(audit: Audit) -> pd.DataFrame:
    """The configuration an operator reads first, as (setting, value) rows."""
    pool = audit.pool
    rows = {
        "pool id": pool.get("Id"),
        "name": pool.get("Name"),
        "estimated users": pool.get("EstimatedNumberOfUsers"),
        "users read": len(audit.users),
        "groups": len(audit.groups),
        "app clients": len(audit.clients),
        "MFA": pool.get("MfaConfiguration"),
        "Lambda triggers": ", ".join(sorted(pool.get("LambdaConfig") or {})) or "none",
        "deletion protection": pool.get("DeletionProtection", "INACTIVE"),
        "domain": pool.get("Domain") or "none",
    }
    return pd.DataFrame({"setting": list(rows), "value": [str(v) for v in rows.values()]})


def clients_table(audit: Audit) -> pd.DataFrame:
    """App clients and whether a password flow lets the migration trigger fire (it never fires under SRP)."""
    rows = []
    for client in audit.clients:
        flows = set(client.get("ExplicitAuthFlows") or [])
        rows.append(
            {
                "client": client.get("ClientName"),
                "client id": client.get("ClientId"),
                "auth flows": ", ".join(sorted(flows)),
                "password flow": bool(flows & PASSWORD_FLOWS),
                "secret": bool(client.get("ClientSecret")),
            }
        )
    return pd.DataFrame(rows, columns=["client", "client id", "auth flows", "password flow", "secret"])


def users_by_status(users: pd.DataFrame) -> pd.DataFrame:
    """User counts by status and enabled flag."""
    if users.empty:
        return pd.DataFrame(columns=["status", "enabled", "users"])
    return users.groupby(["status", "enabled"]).size().rename("users").reset_index()


def required_attribute_gaps(users: pd.DataFrame, required: tuple[str, ...]) -> pd.DataFrame:
    """For each attribute the new pool requires: how many old users lack it."""
    rows = []
    for attribute in required:
        column = users[attribute] if attribute in users.columns else pd.Series([None] * len(users))
        rows.append({"attribute": attribute, "users missing it": int(column.isna().sum() + (column == "").sum())})
    return pd.DataFrame(rows, columns=["attribute", "users missing it"])


def case_collisions(users: pd.DataFrame, mask: bool = False) -> pd.DataFrame:
    """Usernames that differ only by case, one row per group (each username masked when ``mask``): only one
    of each group can exist in a case-insensitive pool."""
    if users.empty:
        return pd.DataFrame(columns=["users", "usernames"])
    keys = users["username"].str.casefold()
    dupes = users[keys.duplicated(keep=False)].assign(key=keys)
    shown = dupes["username"].map(records.mask_text) if mask else dupes["username"]
    groups = shown.groupby(dupes["key"]).agg(lambda s: ", ".join(sorted(s)))
    return pd.DataFrame({"users": dupes.groupby("key").size().values, "usernames": groups.values})


def fixed_settings(pool: dict[str, Any], clients: list[dict[str, Any]], params: Params) -> pd.DataFrame:
    """The settings fixed at pool creation, old value beside target value; ``differs`` marks the reasons for
    the new pool."""
    schema = pool.get("SchemaAttributes") or []
    old_required = sorted(a["Name"] for a in schema if a.get("Required") and a["Name"] != "sub")
    custom = sorted(a["Name"] for a in schema if a["Name"].startswith("custom:"))
    old_case = (pool.get("UsernameConfiguration") or {}).get("CaseSensitive", True)
    rows = [
        ("PoolName", pool.get("Name"), params.new_pool_name),
        ("UsernameConfiguration.CaseSensitive", old_case, params.target_case_sensitive),
        ("UsernameAttributes", pool.get("UsernameAttributes") or [], pool.get("UsernameAttributes") or []),
        ("AliasAttributes", pool.get("AliasAttributes") or [], pool.get("AliasAttributes") or []),
        ("Required attributes", old_required, sorted(params.target_required_attributes)),
        ("Custom attributes", custom, custom),
        (
            "Client secrets",
            sorted(c["ClientName"] for c in clients if c.get("ClientSecret")),
            sorted(c["ClientName"] for c in clients if c.get("ClientSecret")),
        ),
        ("SMS configuration", bool(pool.get("SmsConfiguration")), bool(pool.get("SmsConfiguration"))),
    ]
    frame = pd.DataFrame(rows, columns=["setting", "old pool", "target"])
    frame["differs"] = [str(a) != str(b) for a, b in zip(frame["old pool"], frame["target"], strict=True)]
    frame["old pool"] = frame["old pool"].map(str)
    frame["target"] = frame["target"].map(str)
    return frame


def checks(audit: Audit, params: Params) -> list[Check]:
    """The conditions that gate step 1."""
    by_id = {c["ClientId"]: c for c in audit.clients}
    migration_client = by_id.get(params.old_client_id)
    flows = set((migration_client or {}).get("ExplicitAuthFlows") or [])
    gaps = required_attribute_gaps(audit.users, params.target_required_attributes)
    undefaulted = gaps[(gaps["users missing it"] > 0) & ~gaps["attribute"].isin(list(params.attribute_defaults))]
    collisions = case_collisions(audit.users) if not params.target_case_sensitive else pd.DataFrame()
    password_clients = clients_table(audit)["password flow"].sum() if audit.clients else 0
    return [
        Check(
            "migration client allows ADMIN_USER_PASSWORD_AUTH",
            "ALLOW_ADMIN_USER_PASSWORD_AUTH" in flows,
            "blocker",
            f"old_client_id {params.old_client_id}: "
            + ("not a client of the old pool" if migration_client is None else f"flows {sorted(flows)}"),
            "name an old-pool client that allows ALLOW_ADMIN_USER_PASSWORD_AUTH (the trigger checks passwords with it)",
        ),
        Check(
            "every user has the attributes the new pool requires",
            undefaulted.empty,
            "blocker",
            "; ".join(f"{r.attribute}: {r._2} users missing" for r in undefaulted.itertuples()) or "none missing",
            "add a default for each listed attribute to attribute_defaults",
        ),
        Check(
            "no usernames differ only by case",
            collisions.empty,
            "warning",
            f"{len(collisions)} groups of usernames differ only by case",
            "only the first of each group to sign in migrates; decide for the others before cutover",
        ),
        Check(
            "apps sign in with a password flow",
            bool(password_clients),
            "warning",
            f"{password_clients} of {len(audit.clients)} app clients allow a password flow",
            "the migration trigger never fires under SRP: apps must use USER_PASSWORD_AUTH during the migration",
        ),
        Check(
            "users were read",
            not audit.users.empty,
            "blocker",
            f"{len(audit.users)} users read, {audit.pool.get('EstimatedNumberOfUsers')} estimated",
            "check old_user_pool_id: an empty pool has nothing to migrate",
        ),
    ]


def save_records(audit: Audit, params: Params) -> list[str]:
    """The snapshot the report compares against later: users and memberships (masked), checks, overview."""
    run_dir = params.records_dir
    users = audit.users.drop(columns=["sub"], errors="ignore")
    paths = [
        records.save_frame(run_dir, "old_users", records.mask_frame(users, params.mask_pii)),
        records.save_frame(run_dir, "old_memberships", records.mask_frame(audit.memberships, params.mask_pii)),
        records.save_json(
            run_dir,
            "audit",
            {
                "pool_id": audit.pool.get("Id"),
                "users": len(audit.users),
                "groups": len(audit.groups),
                "checks": [c.__dict__ for c in audit.checks],
            },
        ),
    ]
    return [str(p) for p in paths]
