"""Step 2: create the new pool from the old pool's configuration plus the declared changes.

Plan, then apply: ``plan`` reads both sides and returns what would be created; ``apply`` writes only what
is missing. The new pool is found again by its name and the tag naming the old pool, so a re-run creates
nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import scan
from .aws import paginate
from .checks import Check
from .params import Params

SOURCE_TAG = "cognito-migration:source-pool"
ENV_TAG = "cognito-migration:env"
MIGRATION_FLOWS = ("ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH")
# Attributes every pool has; Cognito manages these itself and they are never re-declared.
NEVER_DECLARED = {"sub", "identities"}
STANDARD_ATTRIBUTES = (
    "address birthdate email email_verified family_name gender given_name locale middle_name name nickname "
    "phone_number phone_number_verified picture preferred_username profile updated_at website zoneinfo"
).split()


class PoolError(RuntimeError):
    """The new pool cannot be created or found as declared; the message names the fix."""


def input_members(cognito: Any, operation: str) -> set[str]:
    """The parameters an operation accepts, from botocore's service model (the API's own contract)."""
    return set(cognito.meta.service_model.operation_model(operation).input_shape.members)


def create_pool_input(cognito: Any, old_pool: dict[str, Any], params: Params) -> dict[str, Any]:
    """CreateUserPool's input: the old pool's DescribeUserPool with the declared changes.

    Renames Name->PoolName and SchemaAttributes->Schema, drops read-only fields, re-declares custom
    attributes without their ``custom:`` prefix, and leaves the old pool's triggers behind (step 3 attaches
    the migration trigger).
    """
    source = dict(old_pool)
    source["PoolName"] = params.new_pool_name
    source["Schema"] = schema_for_create(old_pool.get("SchemaAttributes") or [], params.target_required_attributes)
    source["UsernameConfiguration"] = {"CaseSensitive": params.target_case_sensitive}
    source["UserPoolTags"] = {
        **(old_pool.get("UserPoolTags") or {}),
        SOURCE_TAG: old_pool["Id"],
        ENV_TAG: params.env,
    }
    source.pop("LambdaConfig", None)
    accepted = input_members(cognito, "CreateUserPool")
    return {key: value for key, value in source.items() if key in accepted and value not in (None, {}, [])}


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


def client_input(cognito: Any, old_client: dict[str, Any], pool_id: str) -> dict[str, Any]:
    """CreateUserPoolClient's input from an old client: same settings, a new secret where it had one, and the
    password flow the migration trigger needs."""
    accepted = input_members(cognito, "CreateUserPoolClient") - {"ClientSecret"}
    source = {k: v for k, v in old_client.items() if k in accepted and v not in (None, [], {})}
    flows = [f for f in old_client.get("ExplicitAuthFlows") or [] if f.startswith("ALLOW_")]
    source["ExplicitAuthFlows"] = sorted(set(flows) | set(MIGRATION_FLOWS))
    source["GenerateSecret"] = bool(old_client.get("ClientSecret"))
    source["UserPoolId"] = pool_id
    return source


def group_input(old_group: dict[str, Any], pool_id: str) -> dict[str, Any]:
    keys = ("GroupName", "Description", "Precedence", "RoleArn")
    return {"UserPoolId": pool_id, **{k: old_group[k] for k in keys if old_group.get(k) is not None}}


@dataclass
class Plan:
    """What step 2 would create; ``actions`` is the table shown before anything is written."""

    old_pool: dict[str, Any]
    new_pool: dict[str, Any] | None
    pool_input: dict[str, Any]
    old_clients: list[dict[str, Any]]
    old_groups: list[dict[str, Any]]
    existing_clients: set[str] = field(default_factory=set)
    existing_groups: set[str] = field(default_factory=set)

    @property
    def actions(self) -> pd.DataFrame:
        rows = [
            (
                "user pool",
                self.pool_input["PoolName"],
                "exists" if self.new_pool else "create",
                f"case sensitive: {self.pool_input['UsernameConfiguration']['CaseSensitive']}; required: "
                + ", ".join(a["Name"] for a in self.pool_input["Schema"] if a.get("Required")),
            )
        ]
        rows += [
            (
                "app client",
                c["ClientName"],
                "exists" if c["ClientName"] in self.existing_clients else "create",
                "flows + " + ", ".join(MIGRATION_FLOWS),
            )
            for c in self.old_clients
        ]
        rows += [
            (
                "group",
                g["GroupName"],
                "exists" if g["GroupName"] in self.existing_groups else "create",
                g.get("Description") or "",
            )
            for g in self.old_groups
        ]
        return pd.DataFrame(rows, columns=["resource", "name", "action", "detail"])

    @property
    def changes(self) -> int:
        return int((self.actions["action"] != "exists").sum())


def plan(cognito: Any, params: Params, old_pool: dict[str, Any]) -> Plan:
    """Reads the old pool's clients and groups and what already exists of the new pool."""
    new_pool = find_new_pool(cognito, params)
    result = Plan(
        old_pool=old_pool,
        new_pool=new_pool,
        pool_input=create_pool_input(cognito, old_pool, params),
        old_clients=scan.list_clients(cognito, old_pool["Id"]),
        old_groups=scan.list_groups(cognito, old_pool["Id"]),
    )
    if new_pool is not None:
        result.existing_clients = {c["ClientName"] for c in scan.list_clients(cognito, new_pool["Id"])}
        result.existing_groups = {g["GroupName"] for g in scan.list_groups(cognito, new_pool["Id"])}
    return result


def apply(cognito: Any, the_plan: Plan, dry_run: bool) -> dict[str, Any]:
    """Creates what the plan marks 'create'; returns the new pool (None under dry_run if it did not exist)."""
    if dry_run:
        return the_plan.new_pool or {}
    pool = the_plan.new_pool
    if pool is None:
        created = cognito.create_user_pool(**the_plan.pool_input)["UserPool"]
        pool = cognito.describe_user_pool(UserPoolId=created["Id"])["UserPool"]
    for old_client in the_plan.old_clients:
        if old_client["ClientName"] not in the_plan.existing_clients:
            cognito.create_user_pool_client(**client_input(cognito, old_client, pool["Id"]))
    for old_group in the_plan.old_groups:
        if old_group["GroupName"] not in the_plan.existing_groups:
            cognito.create_group(**group_input(old_group, pool["Id"]))
    return pool


def password_client(cognito: Any, pool_id: str) -> dict[str, Any]:
    """An app client of the pool that allows USER_PASSWORD_AUTH (the flow that fires the migration)."""
    clients = [
        c
        for c in scan.list_clients(cognito, pool_id)
        if "ALLOW_USER_PASSWORD_AUTH" in (c.get("ExplicitAuthFlows") or [])
    ]
    if not clients:
        raise PoolError(f"pool {pool_id} has no app client allowing ALLOW_USER_PASSWORD_AUTH: run step 2 again")
    return sorted(clients, key=lambda c: (bool(c.get("ClientSecret")), c["ClientName"]))[0]


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
    """What step 2 promises, read back from AWS: the pool with the declared settings, clients, groups."""
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
    new = find_new_pool(cognito, params)
    if new is None:
        return [Check("new pool exists", False, "blocker", "not found by name and tag", "re-run this step")]
    required = sorted(a["Name"] for a in new.get("SchemaAttributes") or [] if a.get("Required") and a["Name"] != "sub")
    case = (new.get("UsernameConfiguration") or {}).get("CaseSensitive", True)
    clients = {c["ClientName"]: c for c in scan.list_clients(cognito, new["Id"])}
    groups = {g["GroupName"] for g in scan.list_groups(cognito, new["Id"])}
    missing_clients = sorted({c["ClientName"] for c in the_plan.old_clients} - set(clients))
    no_password_flow = sorted(
        n for n, c in clients.items() if "ALLOW_USER_PASSWORD_AUTH" not in (c.get("ExplicitAuthFlows") or [])
    )
    missing_groups = sorted({g["GroupName"] for g in the_plan.old_groups} - groups)
    return [
        Check("new pool exists", True, "blocker", new["Id"]),
        Check(
            "case sensitivity as declared",
            case == params.target_case_sensitive,
            "blocker",
            f"CaseSensitive={case}",
            "delete the new pool and re-run: this setting is fixed at creation",
        ),
        Check(
            "required attributes as declared",
            set(params.target_required_attributes) <= set(required),
            "blocker",
            f"required: {required}",
            "delete the new pool and re-run: required attributes are fixed at creation",
        ),
        Check(
            "every app client copied",
            not missing_clients,
            "blocker",
            f"missing: {missing_clients or 'none'}",
            "re-run this step",
        ),
        Check(
            "clients allow USER_PASSWORD_AUTH",
            not no_password_flow,
            "blocker",
            f"without it: {no_password_flow or 'none'}",
            "the migration trigger only fires on password sign-ins",
        ),
        Check(
            "every group copied",
            not missing_groups,
            "blocker",
            f"missing: {missing_groups or 'none'}",
            "re-run this step",
        ),
    ]
