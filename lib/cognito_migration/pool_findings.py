"""Findings about the old pool's configuration: app clients, the `sub` change, what the new pool must carry
or deliberately drop, and how long a scan and the lazy window take. Pure: takes what ``audit`` read."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from .findings import KINDS, Finding
from .params import Params

PASSWORD_FLOWS = {
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_ADMIN_USER_PASSWORD_AUTH",
    "USER_PASSWORD_AUTH",
    "ADMIN_NO_SRP_AUTH",
}
# Default quotas (AWS-FACTS.md): a scan is bounded by UserList, a migrating sign-in by UserAuthentication
# (2 requests: the new pool's sign-in and the trigger's AdminInitiateAuth on the old pool), forgot-password
# by UserAccountRecovery.
USER_LIST_RPS, PAGE_SIZE = 30, 60
USER_AUTHENTICATION_RPS, AUTH_REQUESTS_PER_MIGRATION = 120, 2
USER_ACCOUNT_RECOVERY_RPS = 30
COGNITO_DEFAULT_EMAILS_PER_DAY = 50  # Cognito's own sender (EmailSendingAccount COGNITO_DEFAULT)

Clients = Sequence[dict[str, Any]]


def has_password_flow(client: dict[str, Any]) -> bool:
    return bool(set(client.get("ExplicitAuthFlows") or []) & PASSWORD_FLOWS)


def migration_client_finding(clients: Clients, params: Params) -> Finding | None:
    """The client the trigger checks passwords through: it must exist, allow ADMIN_USER_PASSWORD_AUTH and
    have no secret (the trigger sends no SECRET_HASH)."""
    client = {c["ClientId"]: c for c in clients}.get(params.old_client_id)
    if client is None:
        problem = f"old_client_id {params.old_client_id} is not a client of the old pool"
    elif "ALLOW_ADMIN_USER_PASSWORD_AUTH" not in (client.get("ExplicitAuthFlows") or []):
        problem = f"{client['ClientName']} allows only {sorted(client.get('ExplicitAuthFlows') or [])}"
    elif client.get("ClientSecret"):
        problem = f"{client['ClientName']} has a secret: the trigger signs in without SECRET_HASH"
    else:
        return None
    return Finding("migration_client", "blocker", 1, problem, examples=(params.old_client_id,))


def _about_clients(kind_id: str, selected: Clients, detail: str) -> Finding | None:
    names = tuple(f"{c['ClientName']} ({c['ClientId']})" for c in selected)
    return Finding(kind_id, KINDS[kind_id].severity, len(names), detail, examples=names) if names else None


def client_findings(clients: Clients, params: Params) -> list[Finding | None]:
    """The apps' clients (the trigger's own client aside): password flows, secrets, user existence errors."""
    apps = [c for c in clients if c["ClientId"] != params.old_client_id]
    no_password = [c for c in apps if not has_password_flow(c)]
    return [
        _about_clients(
            "clients_without_password_flow",
            no_password,
            f"{len(no_password)} of {len(apps)} app clients sign in without a password flow (SRP or custom): "
            "THE MIGRATION TRIGGER NEVER FIRES UNDER SRP. Their users will not migrate until the apps use "
            "USER_PASSWORD_AUTH on the new pool",
        ),
        _about_clients(
            "client_secrets",
            [c for c in apps if c.get("ClientSecret")],
            "the new pool's copies get new secrets; apps must be given them at cutover",
        ),
        _about_clients(
            "prevent_user_existence_errors",
            [c for c in apps if c.get("PreventUserExistenceErrors", "LEGACY") != "ENABLED"],
            "PreventUserExistenceErrors is LEGACY: sign-in errors tell callers whether a user exists",
        ),
    ]


def reset_required_finding(clients: Clients, params: Params, arriving: int, pool_mfa: str) -> Finding | None:
    """What the apps' password sign-in answers a user who arrives RESET_REQUIRED, by each client's
    PreventUserExistenceErrors (step 2 copies it): with ENABLED, AWS hides the required reset behind
    NotAuthorizedException (developer guide, "Requiring imported users to reset their passwords").
    ``arriving``: FORCE_CHANGE_PASSWORD and RESET_REQUIRED users; a warning when an ENABLED client meets them
    or MFA users under mfa_policy reset_required, else info (only the stragglers, at cutover)."""
    apps = [c for c in clients if c["ClientId"] != params.old_client_id and has_password_flow(c)]
    if not apps:
        return None
    hidden = [c for c in apps if c.get("PreventUserExistenceErrors") == "ENABLED"]
    mfa_resets = params.mfa_policy == "reset_required" and pool_mfa not in ("", "OFF")
    names = tuple(
        f"{c['ClientName']} ({c['ClientId']}): {c.get('PreventUserExistenceErrors') or 'LEGACY'}" for c in apps
    )
    detail = (
        f"{arriving} users are FORCE_CHANGE_PASSWORD or RESET_REQUIRED in the old pool"
        + (", MFA users migrate RESET_REQUIRED (mfa_policy reset_required)" if mfa_resets else "")
        + ", and every straggler step 6 imports arrives RESET_REQUIRED. "
        + f"{len(hidden)} of {len(apps)} password-flow app clients have PreventUserExistenceErrors ENABLED: "
        "their sign-in answers these users NotAuthorizedException, as for a wrong password; the others answer "
        "PasswordResetRequiredException (until set to ENABLED, as prevent_user_existence_errors recommends)"
    )
    facts = {"clients_enabled": len(hidden), "clients_legacy": len(apps) - len(hidden), "arriving": arriving}
    severity = "warning" if hidden and (arriving or mfa_resets) else "info"
    return Finding("reset_required_sign_in", severity, len(apps), detail, examples=names, facts=facts)


def sub_finding(legacy_sub_attribute: str | None, n_users: int) -> Finding:
    """Every migrated user gets a new sub; a warning unless the trigger carries the old one."""
    if legacy_sub_attribute:
        return Finding("sub_changes", "info", n_users, f"the trigger carries the old sub in {legacy_sub_attribute}")
    return Finding(
        "sub_changes",
        "warning",
        n_users,
        "every migrated user gets a new sub and the old one is not carried: if apps or data are keyed on sub, set "
        "legacy_sub_attribute (the trigger's LEGACY_SUB_ATTRIBUTE, e.g. custom:legacy_sub, declared in the new "
        "schema)",
    )


def triggers_finding(pool: dict[str, Any], carry: Sequence[str]) -> Finding | None:
    """The old pool's Lambda triggers: step 2 carries those ``carry_triggers`` names, drops the others."""
    triggers = tuple(sorted(k for k, v in (pool.get("LambdaConfig") or {}).items() if v))
    if not triggers:
        return None
    dropped = [t for t in triggers if t not in carry]
    detail = f"attached: {', '.join(triggers)}; " + (
        f"dropped unless carry_triggers names them: {', '.join(dropped)}" if dropped else "all in carry_triggers"
    )
    return Finding("lambda_triggers", "warning" if dropped else "info", len(triggers), detail, examples=triggers)


def mfa_factors(mfa_config: dict[str, Any]) -> list[str]:
    """The second factors a pool offers, from GetUserPoolMfaConfig."""
    factors = ["SMS"] if mfa_config.get("SmsMfaConfiguration") else []
    return factors + (["TOTP"] if (mfa_config.get("SoftwareTokenMfaConfiguration") or {}).get("Enabled") else [])


def mfa_configuration_finding(
    pool: dict[str, Any], target: dict[str, Any], mfa_config: dict[str, Any]
) -> Finding | None:
    old, new = pool.get("MfaConfiguration") or "OFF", target.get("MfaConfiguration") or "OFF"
    if old == new == "OFF":
        return None
    factors = mfa_factors(mfa_config)
    sms, totp = ("on" if factor in factors else "off" for factor in ("SMS", "TOTP"))
    detail = f"old pool: MfaConfiguration {old}, SMS factor {sms}, TOTP factor {totp}; new pool: {new}" + (
        " (step 2 copies the factors)" if old == new else ": users change how they sign in"
    )
    return Finding("mfa_configuration", "info" if old == new else "warning", 1, detail)


def auto_verified_finding(pool: dict[str, Any], target: dict[str, Any], n_users: int) -> Finding | None:
    """A new pool without an auto-verified contact attribute strands every user who needs a code."""
    new = target.get("AutoVerifiedAttributes") or []
    if any(a in ("email", "phone_number") for a in new):
        return None
    old = pool.get("AutoVerifiedAttributes") or []
    detail = (
        f"AutoVerifiedAttributes: old pool {', '.join(old) or 'none'}, new pool {', '.join(new) or 'none'}; "
        f"{n_users:,} users: none can receive a forgot-password code, RESET_REQUIRED migrations cannot finish, "
        "and no user import job starts (step 6 imports nobody and keeps the migration trigger)"
    )
    return Finding("no_auto_verified_attribute", "blocker", n_users, detail)


def email_finding(pool: dict[str, Any], target: dict[str, Any], n_users: int) -> Finding:
    """The new pool sends the codes of the migration (RESET_REQUIRED users, forgot-password): its sender counts."""

    def sender(config: dict[str, Any]) -> str:
        return (config.get("EmailConfiguration") or {}).get("EmailSendingAccount") or "COGNITO_DEFAULT"

    default = sender(target) == "COGNITO_DEFAULT"
    detail = (
        f"EmailSendingAccount: old pool {sender(pool)}, new pool {sender(target)}"
        + (f" (at most {COGNITO_DEFAULT_EMAILS_PER_DAY} emails a day) for {n_users:,} users" if default else "")
        + "; the trigger answers messageAction SUPPRESS, so migrating sends no welcome message, but every "
        "RESET_REQUIRED migration and forgot-password sends a code, and re-creating users with AdminCreateUser "
        "without SUPPRESS sends each of them the invitation"
    )
    severity = "warning" if default and n_users > COGNITO_DEFAULT_EMAILS_PER_DAY else "info"
    return Finding("email_configuration", severity, n_users, detail)


def sms_finding(pool: dict[str, Any], target: dict[str, Any]) -> Finding | None:
    old = pool.get("SmsConfiguration") or {}
    if not old:
        return None
    new = target.get("SmsConfiguration") or {}
    detail = f"old pool: SNS role {old.get('SnsCallerArn')}; new pool: {new.get('SnsCallerArn') or 'none'}"
    return Finding("sms_configuration", "info", 1, detail)


def domain_finding(pool: dict[str, Any], new_prefix: str | None) -> Finding | None:
    domains = tuple(d for d in (pool.get("Domain"), pool.get("CustomDomain")) if d)
    if not domains:
        return None
    detail = f"old pool: {', '.join(domains)}; new pool: " + (
        f"prefix {new_prefix}" if new_prefix else "none (new_domain_prefix is not set)"
    )
    if pool.get("CustomDomain"):
        detail += "; the custom domain moves by hand at cutover (certificate and DNS)"
    handled = bool(new_prefix) and not pool.get("CustomDomain")
    return Finding("domain", "info" if handled else "warning", len(domains), detail, examples=domains)


def named_finding(kind_id: str, names: Sequence[str], detail: str, severity: str | None = None) -> Finding | None:
    if not names:
        return None
    severity = severity or KINDS[kind_id].severity
    return Finding(kind_id, severity, len(names), f"{detail}: {', '.join(names)}", examples=tuple(names[:3]))


def deletion_protection_finding(pool: dict[str, Any], target: dict[str, Any]) -> Finding:
    old, new = pool.get("DeletionProtection") or "INACTIVE", target.get("DeletionProtection") or "INACTIVE"
    detail = f"old pool: {old}; new pool: {new}" + (
        "" if old == "ACTIVE" else "; turn it on for the old pool now (UpdateUserPool, read-modify-write)"
    )
    return Finding("deletion_protection", "info" if old == new == "ACTIVE" else "warning", 1, detail)


def carry_findings(
    pool: dict[str, Any],
    target: dict[str, Any],
    mfa_config: dict[str, Any],
    identity_providers: Sequence[dict[str, Any]],
    resource_servers: Sequence[dict[str, Any]],
    n_users: int,
    params: Params,
) -> list[Finding | None]:
    """What the old pool has that the new one (``target``: step 2's CreateUserPool input) must carry or
    deliberately drop."""
    return [
        triggers_finding(pool, params.carry_triggers),
        mfa_configuration_finding(pool, target, mfa_config),
        auto_verified_finding(pool, target, n_users),
        email_finding(pool, target, n_users),
        sms_finding(pool, target),
        domain_finding(pool, params.new_domain_prefix),
        named_finding(
            "identity_providers",
            [f"{p['ProviderName']} ({p.get('ProviderType')})" for p in identity_providers],
            "step 2 recreates them once their secrets are supplied",
        ),
        named_finding("resource_servers", [r["Identifier"] for r in resource_servers], "step 2 recreates them", "info"),
        deletion_protection_finding(pool, target),
    ]


def duration(seconds: float) -> str:
    """A duration an operator reads at a glance: '42 s', '9.3 min', '5.5 h', '3.2 days'."""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


def time_findings(
    n_users: int, group_sizes: dict[str, int], list_rate_limit: float, scan_seconds: float
) -> list[Finding]:
    """The time a full scan and the lazy window take at this pool's size under the default quotas."""
    user_pages = max(1, math.ceil(n_users / PAGE_SIZE))
    group_pages = sum(max(1, math.ceil(size / PAGE_SIZE)) for size in group_sizes.values())
    requests = user_pages + group_pages
    at_quota, at_budget = requests / USER_LIST_RPS, requests / list_rate_limit
    scan_detail = (
        f"{n_users:,} users = {user_pages:,} ListUsers pages + {group_pages:,} ListUsersInGroup pages "
        f"({len(group_sizes)} groups) = {requests:,} UserList requests: at least {duration(at_quota)} at the "
        f"default quota (UserList {USER_LIST_RPS} RPS x {PAGE_SIZE} users/page = {USER_LIST_RPS * PAGE_SIZE:,} "
        f"users/s, shared by every pool of the account and Region), at least {duration(at_budget)} at "
        f"list_rate_limit {list_rate_limit:g}; this audit read it in {duration(scan_seconds)}"
    )
    per_s = USER_AUTHENTICATION_RPS / AUTH_REQUESTS_PER_MIGRATION
    window_detail = (
        f"users migrate when they sign in. If all {n_users:,} signed in at once: at least "
        f"{duration(n_users / per_s)} (UserAuthentication {USER_AUTHENTICATION_RPS} RPS, "
        f"{AUTH_REQUESTS_PER_MIGRATION} requests per migrating sign-in = {per_s:.0f} migrations/s, shared with "
        f"production); through forgot-password at least {duration(n_users / USER_ACCOUNT_RECOVERY_RPS)} "
        f"(UserAccountRecovery {USER_ACCOUNT_RECOVERY_RPS} RPS). In practice the window lasts as long as your "
        "users take to come back: plan its end"
    )
    facts = {"users": n_users, "requests": requests, "seconds_at_quota": at_quota, "seconds_at_budget": at_budget}
    return [
        Finding("full_scan_time", "info", requests, scan_detail, facts=facts),
        Finding("lazy_window_time", "info", n_users, window_detail, facts={"migrations_per_s": per_s}),
    ]


def group_sizes(groups: Sequence[dict[str, Any]], memberships: pd.DataFrame) -> dict[str, int]:
    """Members per group (0 for an empty group: it still costs a ListUsersInGroup request)."""
    counts = memberships.groupby("group").size() if not memberships.empty else pd.Series(dtype=int)
    return {g["GroupName"]: int(counts.get(g["GroupName"], 0)) for g in groups}
