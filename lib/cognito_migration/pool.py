"""Step 2: create the new pool from the old pool's configuration plus the declared changes.

Plan, then apply: ``plan`` reads both sides and returns one row per resource: create, exists (already right),
drift (exists but differs: shown, never overwritten), manual (the operator's part), carry/drop (the old
pool's triggers), warn. ``apply`` writes only the 'create' rows. The new pool is found again by its name and
the tag naming the old pool, its clients and groups by name, so a re-run creates nothing twice.
``rollback.delete_created`` undoes steps 2 and 3 in an environment that is not protected.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import pool_resources, scan
from . import pool_settings as settings
from .aws import paginate
from .checks import Check
from .params import Params
from .pool_resources import MIGRATION_FLOWS  # noqa: F401  (re-exported: pool.MIGRATION_FLOWS)
from .pool_settings import (
    CARRY,
    CHANGE,
    CREATE,
    DRIFT,
    EXISTS,
    MANUAL,
    REPAIR,
    WARN,
    Item,
    PoolError,
    input_members,
)
from .snapshot import STANDARD_ATTRIBUTES  # Cognito's standard attributes (the snapshot's columns need them too)
from .trigger.migration_trigger import GROUPS_MARKER

SOURCE_TAG = "cognito-migration:source-pool"
ENV_TAG = "cognito-migration:env"
# Attributes every pool has; Cognito manages these itself and they are never re-declared.
NEVER_DECLARED = {"sub", "identities"}
POOL, MFA = "user pool", "MFA"
ATTENTION = (DRIFT, REPAIR, MANUAL, WARN, CARRY, CHANGE)


class RollbackRefused(RuntimeError):
    """A rollback would delete what must stay; the message names the fix."""


def create_pool_input(cognito: Any, old_pool: dict[str, Any], params: Params) -> dict[str, Any]:
    """CreateUserPool's input: the old pool's DescribeUserPool with the declared changes.

    Renames Name->PoolName and SchemaAttributes->Schema, drops read-only fields and the deprecated ones AWS
    refuses back (``pool_settings.without_deprecated``), re-declares custom attributes without their
    ``custom:`` prefix, and carries only the triggers ``carry_triggers`` names (step 3 attaches the migration
    trigger).
    """
    old_schema = old_pool.get("SchemaAttributes") or []
    source = dict(old_pool)
    source["PoolName"] = params.new_pool_name
    source["Schema"] = schema_for_create(old_schema, params.target_required_attributes) + new_custom_attributes(
        old_schema, params.target_custom_attributes
    )
    # The trigger's own attributes: the old sub (immutable: no app may rewrite who a user was) and the marker
    # of users whose groups are not copied yet (mutable: the trigger deletes it after the copy).
    declared = {a["Name"].removeprefix("custom:") for a in source["Schema"]}
    source["Schema"] += [
        {
            "Name": name,
            "AttributeDataType": "String",
            "Mutable": mutable,
            "StringAttributeConstraints": {"MaxLength": "64"},
        }
        for name, mutable in (
            ((params.legacy_sub_attribute or "").removeprefix("custom:"), False),
            (GROUPS_MARKER.removeprefix("custom:"), True),
        )
        if name and name not in declared
    ]
    source["UsernameConfiguration"] = {"CaseSensitive": params.target_case_sensitive}
    source.update(settings.sign_in_attributes(old_pool, params))
    source["Policies"] = settings.merged(old_pool.get("Policies"), params.target_policies)
    source["EmailConfiguration"] = settings.merged(
        old_pool.get("EmailConfiguration"), params.target_email_configuration
    )
    source["SmsConfiguration"] = settings.merged(old_pool.get("SmsConfiguration"), params.target_sms_configuration)
    source["DeletionProtection"] = params.target_deletion_protection or old_pool.get("DeletionProtection")
    source["MfaConfiguration"] = params.target_mfa_configuration or old_pool.get("MfaConfiguration")
    source["AutoVerifiedAttributes"] = settings.auto_verified(old_pool, params)
    source["UserPoolTags"] = {
        **(old_pool.get("UserPoolTags") or {}),
        SOURCE_TAG: old_pool["Id"],
        ENV_TAG: params.env,
    }
    source["LambdaConfig"] = settings.carried_triggers(old_pool.get("LambdaConfig") or {}, params.carry_triggers)
    accepted = input_members(cognito, "CreateUserPool")
    wanted = {key: value for key, value in source.items() if key in accepted and value not in (None, {}, [])}
    return settings.without_deprecated(wanted)


def schema_for_create(old_schema: list[dict[str, Any]], required: tuple[str, ...]) -> list[dict[str, Any]]:
    """Custom attributes (prefix removed, never required) and the standard attributes the target requires."""
    by_name = {a["Name"]: a for a in old_schema}
    schema = []
    for attribute in old_schema:
        if attribute["Name"].startswith("custom:"):
            entry = {k: v for k, v in attribute.items() if k != "Required"}
            entry["Name"] = attribute["Name"][len("custom:") :]
            schema.append(entry)
    for name in required:
        if name in NEVER_DECLARED or name.startswith("custom:"):
            raise PoolError(f"target_required_attributes: {name} cannot be required; remove it")
        if name not in STANDARD_ATTRIBUTES:
            raise PoolError(f"target_required_attributes: {name} is not a standard attribute; check the spelling")
        old = by_name.get(name, {})
        entry = {"Name": name, "AttributeDataType": "String", "Mutable": old.get("Mutable", True), "Required": True}
        if old.get("StringAttributeConstraints"):
            entry["StringAttributeConstraints"] = old["StringAttributeConstraints"]
        schema.append(entry)
    return schema


def new_custom_attributes(old_schema: list[dict[str, Any]], declared: Mapping[str, str]) -> list[dict[str, Any]]:
    """Schema entries for the declared custom attributes (mutable, optional: Cognito refuses required ones)."""
    existing = {a["Name"] for a in old_schema}
    clashes = sorted(name for name in declared if f"custom:{name}" in existing)
    if clashes:
        raise PoolError(
            f"target_custom_attributes: {', '.join(clashes)} already exist in the old pool and are copied; remove them"
        )
    return [{"Name": name, "AttributeDataType": kind, "Mutable": True} for name, kind in declared.items()]


def find_new_pool(cognito: Any, params: Params) -> dict[str, Any] | None:
    """The new pool, found by name and by the tag naming the old pool; None when it does not exist yet."""
    candidates = [
        p
        for p in paginate(cognito, "list_user_pools", "UserPools", PaginationConfig={"PageSize": 60})
        if p.get("Name") == params.new_pool_name
    ]
    matches = []
    for candidate in candidates:
        described = cognito.describe_user_pool(UserPoolId=candidate["Id"])["UserPool"]
        if (described.get("UserPoolTags") or {}).get(SOURCE_TAG) == params.old_user_pool_id:
            matches.append(described)
    if len(matches) > 1:
        ids = ", ".join(m["Id"] for m in matches)
        raise PoolError(
            f"new_pool_name: {len(matches)} pools named {params.new_pool_name} come from this old pool "
            f"({ids}); delete the extra ones or choose another new_pool_name"
        )
    if not matches and candidates:
        raise PoolError(
            f"new_pool_name: a pool named {params.new_pool_name} exists but was not made from "
            f"{params.old_user_pool_id}; choose another new_pool_name"
        )
    return matches[0] if matches else None


@dataclass
class Plan:
    """What step 2 would do; ``actions`` is the table shown before anything is written."""

    old_pool: dict[str, Any]
    new_pool: dict[str, Any] | None
    pool_input: dict[str, Any]
    mfa_input: dict[str, Any]
    items: list[Item] = field(default_factory=list)
    old_clients: list[dict[str, Any]] = field(default_factory=list)
    old_groups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def actions(self) -> pd.DataFrame:
        rows = [(i.resource, i.name, i.action, i.detail) for i in self.items]
        return pd.DataFrame(rows, columns=["resource", "name", "action", "detail"])

    @property
    def attention(self) -> pd.DataFrame:
        """The rows that need the operator: drift, manual steps, warnings, carried triggers."""
        frame = self.actions
        return frame[frame["action"].isin(ATTENTION)].reset_index(drop=True)

    @property
    def changes(self) -> int:
        return len(self.rows(CREATE))

    def rows(self, *actions: str) -> list[Item]:
        return [i for i in self.items if i.action in actions]


def plan(cognito: Any, params: Params, old_pool: dict[str, Any], environ: Mapping[str, str] | None = None) -> Plan:
    """Reads the old pool's configuration and contents and what already exists of the new pool."""
    new_pool = find_new_pool(cognito, params)
    pool_input = create_pool_input(cognito, old_pool, params)
    old_mfa = cognito.get_user_pool_mfa_config(UserPoolId=old_pool["Id"])
    mfa_input = settings.mfa_input(
        input_members(cognito, "SetUserPoolMfaConfig"), old_mfa, params, pool_input.get("SmsConfiguration")
    )
    old_parts = pool_resources.read_parts(cognito, old_pool)
    new_parts = pool_resources.read_parts(cognito, new_pool) if new_pool else pool_resources.no_parts()
    items = [_pool_item(pool_input, new_pool), _mfa_item(cognito, mfa_input, new_pool)]
    items += settings.trigger_items(old_pool, pool_input, params) + settings.policy_items(old_pool, pool_input)
    items += settings.deprecated_items(old_pool) + settings.auto_verified_items(old_pool, pool_input)
    items += pool_resources.domain_items(cognito, old_pool, old_parts.domain, new_pool, params.new_domain_prefix)
    items += pool_resources.resource_server_items(old_parts.resource_servers, new_parts.resource_servers)
    providers = pool_resources.provider_items(old_parts.providers, new_parts.providers, environ)
    available = {i.name for i in providers if i.action in (CREATE, EXISTS, DRIFT)}
    items += providers + pool_resources.client_items(cognito, old_parts.clients, new_parts.clients, available)
    items += pool_resources.group_items(old_parts.groups, new_parts.groups)
    return Plan(old_pool, new_pool, pool_input, mfa_input, items, old_parts.clients, old_parts.groups)


def _pool_item(pool_input: dict[str, Any], new_pool: dict[str, Any] | None) -> Item:
    if new_pool is not None:
        drift = settings.pool_drift(pool_input, new_pool)
        if drift:
            return Item(POOL, new_pool["Id"], DRIFT, "differs: " + ", ".join(drift), pool_input)
        return Item(POOL, new_pool["Id"], EXISTS, pool_input["PoolName"], pool_input)
    schema = pool_input["Schema"]
    custom = [a["Name"] for a in schema if a["Name"] not in STANDARD_ATTRIBUTES]
    detail = "; ".join(
        [
            f"case sensitive: {pool_input['UsernameConfiguration']['CaseSensitive']}",
            "sign-in: " + (", ".join(pool_input.get("UsernameAttributes", [])) or "username"),
            "aliases: " + (", ".join(pool_input.get("AliasAttributes", [])) or "none"),
            "required: " + ", ".join(a["Name"] for a in schema if a.get("Required")),
            "custom: " + (", ".join(custom) or "none"),
            f"deletion protection: {pool_input.get('DeletionProtection', 'INACTIVE')}",
        ]
    )
    return Item(POOL, pool_input["PoolName"], CREATE, detail, pool_input)


def _mfa_item(cognito: Any, mfa_input: dict[str, Any], new_pool: dict[str, Any] | None) -> Item:
    factors = [f for f in settings.MFA_FACTORS if f in mfa_input]
    detail = f"{mfa_input['MfaConfiguration']}; factors: {', '.join(factors) or 'none'}"
    if new_pool is None:
        return Item(MFA, "SetUserPoolMfaConfig", CREATE, detail, mfa_input)
    actual = cognito.get_user_pool_mfa_config(UserPoolId=new_pool["Id"])
    drift = settings.differences(mfa_input, actual, set(mfa_input) | (set(actual) & set(settings.MFA_FACTORS)))
    if drift:
        # Step 2 sets the MFA factors with a call of their own, after CreateUserPool: a step that failed between
        # the two leaves the pool without them. They are the runbook's own setting: repaired, not only shown.
        return Item(MFA, "SetUserPoolMfaConfig", REPAIR, "differs, set again: " + ", ".join(drift), mfa_input)
    return Item(MFA, "SetUserPoolMfaConfig", EXISTS, detail, mfa_input)


def apply(cognito: Any, the_plan: Plan, dry_run: bool, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Writes the plan's 'create' rows; returns the new pool ({} under dry_run if it does not exist yet)."""
    if dry_run:
        return the_plan.new_pool or {}
    pool_id = the_plan.new_pool["Id"] if the_plan.new_pool else None
    if pool_id is None:
        pool_id = cognito.create_user_pool(**the_plan.pool_input)["UserPool"]["Id"]
        # DescribeUserPool does not show the MFA factors (TOTP, SMS): they are copied with their own call.
        cognito.set_user_pool_mfa_config(UserPoolId=pool_id, **the_plan.mfa_input)
    elif the_plan.rows(REPAIR):
        cognito.set_user_pool_mfa_config(UserPoolId=pool_id, **the_plan.mfa_input)
    for item in the_plan.rows(CREATE):
        if item.resource in pool_resources.CREATE_CALLS:
            pool_resources.create(cognito, item, pool_id, environ)
    return dict(cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"])


def password_clients(cognito: Any, pool_id: str) -> list[dict[str, Any]]:
    """The pool's app clients that allow USER_PASSWORD_AUTH (the flow that fires the migration), as configured,
    those without a secret first, then by name."""
    clients = [
        c
        for c in scan.list_clients(cognito, pool_id)
        if "ALLOW_USER_PASSWORD_AUTH" in (c.get("ExplicitAuthFlows") or [])
    ]
    if not clients:
        raise PoolError(f"pool {pool_id} has no app client allowing ALLOW_USER_PASSWORD_AUTH: run step 2 again")
    return sorted(clients, key=lambda c: (bool(c.get("ClientSecret")), c["ClientName"]))


def password_client(cognito: Any, pool_id: str) -> dict[str, Any]:
    """An app client of the pool that allows USER_PASSWORD_AUTH: one without a secret if there is one."""
    return password_clients(cognito, pool_id)[0]


def require_new_pool(cognito: Any, params: Params) -> dict[str, Any]:
    """The new pool for the later steps; a clear error when step 2 has not created it."""
    found = find_new_pool(cognito, params)
    if found is None:
        raise PoolError(
            f"no pool named {params.new_pool_name} made from {params.old_user_pool_id}: "
            "run step 2 (02_create_new_pool) with dry_run: false first"
        )
    return found


def verify(cognito: Any, params: Params, the_plan: Plan) -> list[Check]:
    """What step 2 promises, read back from AWS by planning again: the pool with the declared fixed settings,
    everything planned in place, drift and manual steps shown."""
    if params.dry_run:
        return [
            Check(
                "dry run",
                True,
                "info",
                f"{the_plan.changes} change(s) planned, nothing written",
                "set dry_run: false to create them",
            )
        ]
    after = plan(cognito, params, the_plan.old_pool)
    new = after.new_pool
    if new is None:
        return [Check("new pool exists", False, "blocker", "not found by name and tag", "re-run this step")]
    return [
        Check("new pool exists", True, "blocker", new["Id"]),
        *_fixed_checks(new, after, params),
        *_row_checks(cognito, after, new),
    ]


def _fixed_checks(new: dict[str, Any], after: Plan, params: Params) -> list[Check]:
    recreate = "delete the new pool (python -m cognito_migration rollback --delete) and re-run: fixed at creation"
    required = sorted(a["Name"] for a in new.get("SchemaAttributes") or [] if a.get("Required") and a["Name"] != "sub")
    case = (new.get("UsernameConfiguration") or {}).get("CaseSensitive", True)
    sign_in = {k: sorted(new.get(k) or []) for k in settings.SIGN_IN_KEYS}
    wanted_sign_in = {k: sorted(after.pool_input.get(k) or []) for k in settings.SIGN_IN_KEYS}
    names = {a["Name"] for a in new.get("SchemaAttributes") or []}
    custom = [f"custom:{a['Name']}" for a in after.pool_input["Schema"] if a["Name"] not in STANDARD_ATTRIBUTES]
    missing_custom = sorted(set(custom) - names)
    return [
        Check(
            "case sensitivity as declared",
            case == params.target_case_sensitive,
            "blocker",
            f"CaseSensitive={case}",
            recreate,
        ),
        Check(
            "required attributes as declared",
            set(params.target_required_attributes) <= set(required),
            "blocker",
            f"required: {required}",
            recreate,
        ),
        Check("sign-in attributes as declared", sign_in == wanted_sign_in, "blocker", str(sign_in), recreate),
        Check(
            "custom attributes present", not missing_custom, "blocker", f"missing: {missing_custom or 'none'}", recreate
        ),
    ]


def _row_checks(cognito: Any, after: Plan, new: dict[str, Any]) -> list[Check]:
    missing = [f"{i.resource} {i.name}" for i in after.rows(CREATE, REPAIR)]
    drift = [f"{i.resource} {i.name} ({i.detail})" for i in after.rows(DRIFT)]
    manual = [f"{i.resource} {i.name}" for i in after.rows(MANUAL, CARRY)]
    warnings = [f"{i.resource} {i.name}: {i.detail}" for i in after.rows(WARN)]
    no_password_flow = sorted(
        c["ClientName"]
        for c in scan.list_clients(cognito, new["Id"])
        if "ALLOW_USER_PASSWORD_AUTH" not in (c.get("ExplicitAuthFlows") or [])
    )
    return [
        Check("everything planned exists", not missing, "blocker", f"missing: {missing or 'none'}", "re-run this step"),
        Check(
            "clients allow USER_PASSWORD_AUTH",
            not no_password_flow,
            "blocker",
            f"without it: {no_password_flow or 'none'}",
            "the migration trigger only fires on password sign-ins: add the flow to these clients",
        ),
        Check(
            "no drift",
            not drift,
            "warning",
            "; ".join(drift) or "none",
            "this step never overwrites: change these by hand, or delete the new pool and re-run",
        ),
        Check("no manual steps left", not manual, "warning", ", ".join(manual) or "none", "see the plan's manual rows"),
        Check(
            "no plan warnings", not warnings, "warning", "; ".join(warnings) or "none", "read them before apps switch"
        ),
    ]
