"""Rolling back steps 2 and 3: ``python -m cognito_migration rollback --env ENV [--run RUN_ID] [--delete] [--apply]``.

Without ``--delete``: detach the trigger, i.e. restore the new pool's LambdaConfig exactly as step 3 found it
(``previous_lambda_config`` in the deploy.json of the run that attached it), every other setting kept.
With ``--delete`` (never in a protected environment, never a pool with deletion protection on): delete what
steps 2 and 3 (and step 6's import jobs) created, found by the same names and tags they use, except what
another environment uses; the plan counts the users only the new pool has, who would be lost with it. Both
show the table first and write only with ``--apply``; an applied rollback is recorded in
``outputs/<env>/<run-id>-rollback-<mode>/rollback.json``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from . import (
    attachment,
    aws,
    comparison,
    deploy,
    identity,
    ownership,
    pool,
    pool_resources,
    records,
    scan,
    signup_index,
    snapshot_store,
    user_import,
)
from .aws import absent_as_none, error_code
from .params import Params

COLUMNS = ["resource", "name", "action", "detail"]


class RollbackError(RuntimeError):
    """There is nothing saved to roll back to; the message says where to look."""


@dataclass
class Rollback:
    """What a rollback did (or, unless ``applied``, would do)."""

    rows: pd.DataFrame
    applied: bool
    source_run: str | None = None
    record: Path | None = None


def saved_lambda_config(outputs: Path, env: str, pool_id: str, run_id: str | None = None) -> tuple[str, dict[str, Any]]:
    """The pool's LambdaConfig before step 3 attached the trigger, and the run whose deploy.json saved it.

    Without ``run_id``: the newest run that changed the attachment. A re-run of step 3 changes nothing, so its
    'previous' config already holds the trigger and restoring it would restore nothing: it is skipped.
    """
    base = outputs / env
    if run_id is not None:
        return run_id, _previous_of(base / run_id, pool_id, strict=True) or {}
    runs = sorted((p for p in base.iterdir() if p.is_dir()), reverse=True) if base.is_dir() else []
    for run in runs:
        previous = _previous_of(run, pool_id, strict=False)
        if previous is not None:
            return run.name, previous
    raise RollbackError(
        f"no deploy.json under {base} records step 3 attaching the trigger to {pool_id}: pass --outputs with the "
        "directory where the runs are kept, or --run RUN_ID"
    )


def _previous_of(run: Path, pool_id: str, strict: bool) -> dict[str, Any] | None:
    path = run / "deploy.json"
    problem = ""
    if not path.is_file():
        problem = "has no deploy.json (step 3 did not run there)"
    else:
        record = json.loads(path.read_text())
        previous = record.get("previous_lambda_config") or {}
        if record.get("dry_run"):
            problem = "was a dry run"
        elif record.get("new_pool_id", pool_id) != pool_id:
            problem = f"deployed to pool {record['new_pool_id']}, not {pool_id}"
        elif previous == record.get("lambda_config"):
            problem = "attached nothing (the trigger was already attached): name the run that attached it"
        else:
            return dict(previous)
    if strict:
        raise RollbackError(f"run {run.name} {problem}; choose another --run, or omit it to take the newest one")
    return None


def trigger_rows(result: dict[str, Any]) -> pd.DataFrame:
    """What ``attachment.detach`` changes, one row per LambdaConfig key."""
    current, restored = result["current_lambda_config"], result["restored_lambda_config"]
    rows = []
    for key in sorted(set(current) | set(restored)):
        before, after = current.get(key), restored.get(key)
        if before == after:
            action = "unchanged"
        else:
            action = "remove" if after is None else "restore"
        rows.append((f"trigger {key}", result["pool_id"], action, f"{before} -> {after}"))
    return pd.DataFrame(rows, columns=COLUMNS)


def delete_created(
    cognito: Any,
    iam: Any,
    lam: Any,
    params: Params,
    dry_run: bool = True,
    logs: Any = None,
    limiter: Any = None,
    *,
    dynamodb: Any,
) -> pd.DataFrame:
    """Deletes what steps 2 and 3 created, found by the names and tags they use: the new pool's domain, the pool
    (its clients, groups, identity providers, resource servers and users go with it), the trigger function, its
    role, the sign-up index table, the import jobs' role and both log groups. Keeps, and says why, what was not
    made by the runbook or is used by another environment (by its tags, or a pool whose LambdaConfig still
    names the function).
    Refuses (RollbackRefused) a protected environment and a pool whose deletion protection is ACTIVE. Returns
    the table of what it deletes; under ``dry_run`` deletes nothing. ``limiter`` paces the two pools' reads
    that count the users only the new pool has."""
    refuse_protected(params)
    logs = logs if logs is not None else aws.client(aws.session(params), "logs")
    new = pool.find_new_pool(cognito, params)
    pool_rows = delete_pool(cognito, params, new, dry_run, limiter)
    deleted_pool = next((r[1] for r in pool_rows if r[0] == pool.POOL and r[2] == "delete"), None)
    pool_deleted = deleted_pool is not None
    trigger = delete_trigger(cognito, iam, lam, params, dry_run, deleted_pool, dynamodb=dynamodb)
    function_row = trigger.iloc[0]
    groups = [
        _delete_log_group(
            logs, f"/aws/lambda/{params.migration_function_name}", function_row["action"], dry_run, "the function's"
        )
    ]
    if new is not None:
        pool_log = f"/aws/cognito/userpools/{new['Id']}/{new['Name']}"
        groups.append(_delete_log_group(logs, pool_log, "delete" if pool_deleted else "keep", dry_run, "import jobs'"))
    return pd.concat(
        [pd.DataFrame(pool_rows, columns=COLUMNS), trigger, pd.DataFrame(groups, columns=COLUMNS)], ignore_index=True
    )


def refuse_protected(params: Params) -> None:
    """Deleting is opt-in per environment: ``protected: false`` in its params file (sandbox names default to it)."""
    if params.is_protected:
        why = "its params file says protected: true" if params.protected else "only sandbox-named ones are not"
        raise pool.RollbackRefused(
            f"protected: env {params.env} is protected ({why}): nothing is deleted there. Detach the trigger "
            f"instead (rollback without --delete); if this environment really is disposable, set protected: false "
            f"in params/{params.env}.yaml"
        )


Row = tuple[str, str, str, str]


def delete_pool(
    cognito: Any, params: Params, new: dict[str, Any] | None, dry_run: bool, limiter: Any = None
) -> list[Row]:
    """The new pool's rows (domains, users only it has, the pool last) and, unless ``dry_run``, their deletion."""
    if new is None:
        return [
            (pool.POOL, params.new_pool_name, "absent", f"no pool of that name made from {params.old_user_pool_id}")
        ]
    owner = ownership.other_owner(new.get("UserPoolTags") or {}, params)
    if owner:
        return [(pool.POOL, new["Id"], "keep", f"tagged {owner}: that environment's rollback deletes it")]
    if new.get("DeletionProtection") == "ACTIVE":
        raise pool.RollbackRefused(
            f"pool {new['Id']} ({params.new_pool_name}) has deletion protection ACTIVE: turn it off first (Cognito "
            "console: the pool's Settings > Deletion protection), then run the rollback again"
        )
    domains = [d for d in (new.get("CustomDomain"), new.get("Domain")) if d]
    parts = pool_resources.read_parts(cognito, new)
    contents = (
        f"{len(parts.clients)} client(s), {len(parts.groups)} group(s), {len(parts.providers)} identity "
        f"provider(s), {len(parts.resource_servers)} resource server(s), ~{new.get('EstimatedNumberOfUsers', 0)} "
        "user(s)"
    )
    rows: list[Row] = [("domain", d, "delete", "") for d in domains]
    rows += [new_only_row(cognito, params, new, limiter), (pool.POOL, new["Id"], "delete", contents)]
    if not dry_run:
        for domain in domains:  # Cognito refuses to delete a pool that still has a domain
            cognito.delete_user_pool_domain(Domain=domain, UserPoolId=new["Id"])
        cognito.delete_user_pool(UserPoolId=new["Id"])
    return rows


def new_only_row(cognito: Any, params: Params, new: dict[str, Any], limiter: Any = None) -> Row:
    """How many new-pool users have no old-pool counterpart (they signed up in the new pool, or the old user is
    gone): deleting the pool loses them. A count only: their names are personal data."""
    count = count_new_only(cognito, params.old_user_pool_id, new, limiter, snapshot_store.SnapshotStore.of(params))
    if count == 0:
        return ("users only in the new pool", new["Id"], "none", "every new-pool user is also in the old pool")
    return (
        "users only in the new pool",
        new["Id"],
        "delete",
        f"{count} user(s) exist nowhere else (signed up in the new pool): lost with it; export them first",
    )


def count_new_only(
    cognito: Any,
    old_pool_id: str,
    new: dict[str, Any],
    limiter: Any = None,
    store: snapshot_store.SnapshotStore | None = None,
) -> int:
    """ListUsers over both pools (paced by ``limiter``; each read in ``store``, resuming there, its snapshot
    deleted once compared), compared as the new pool matches its users: by its sign-in attributes, folded as
    it folds names. Pools too large for memory are compared from their snapshots, a bucket at a time."""
    with scan.read_once(cognito, new["Id"], limiter, f"ListUsers {new['Id']} (new)", store) as new_read:
        if new_read.rows == 0:
            return 0  # the old pool, possibly large, need not be read
        try:
            with scan.read_once(cognito, old_pool_id, limiter, f"ListUsers {old_pool_id} (old)", store) as old_read:
                case_sensitive = (new.get("UsernameConfiguration") or {}).get("CaseSensitive", True)
                sign_in = identity.sign_in_attributes(new)
                return comparison.sign_ups(
                    comparison.users_of(old_read), comparison.users_of(new_read), case_sensitive, sign_in
                )
        except ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            return new_read.rows  # the old pool is gone: nobody has a counterpart


def delete_trigger(
    cognito: Any,
    iam: Any,
    lam: Any,
    params: Params,
    dry_run: bool = True,
    deleted_pool: str | None = None,
    *,
    dynamodb: Any,
) -> pd.DataFrame:
    """Deletes step 3's function (its invoke permission goes with it), its role, its sign-up index table and
    the import jobs' role, each only when it carries the runbook's tag and no other environment uses it: a
    same-named resource made by someone else, or one another environment's pool calls, is kept and shown.
    ``deleted_pool`` is this environment's new pool, deleted by the same rollback: its LambdaConfig does not
    keep the function."""
    function_name = params.migration_function_name
    function = _function(lam, function_name)
    in_use = _used_elsewhere(cognito, params, function, deleted_pool) if function else None
    if function is None:
        row: Row = ("Lambda function", function_name, "absent", "")
    elif not _function_is_ours(function):
        row = ("Lambda function", function_name, "keep", f"no {deploy.OWNER_TAG} tag: not made by step 3")
    elif in_use:
        row = ("Lambda function", function_name, "keep", in_use)
    else:
        row = ("Lambda function", function_name, "delete", "with its invoke permission")
        if not dry_run:
            lam.delete_function(FunctionName=function_name)
    rows = [row]
    for role_name, what in (
        (deploy.role_name_for(function_name), "step 3"),
        (user_import.logs_role_name(params), "step 6"),
    ):
        rows.append(_delete_role_row(iam, params, role_name, what, in_use, dry_run))
    if in_use:  # the function's index serves it too
        rows.append(("DynamoDB table", signup_index.table_name_for(function_name), "keep", in_use))
    else:
        rows += signup_index.delete_rows(dynamodb, function_name, dry_run)
    return pd.DataFrame(rows, columns=COLUMNS)


def _used_elsewhere(cognito: Any, params: Params, function: dict[str, Any], deleted_pool: str | None) -> str | None:
    """Why another environment still needs the function (its tags, or a pool calling it), or None."""
    variables = (function.get("Configuration", {}).get("Environment") or {}).get("Variables") or {}
    owner = ownership.other_owner(function.get("Tags") or {}, params, variables.get("OLD_USER_POOL_ID"))
    if owner:
        return f"used by {owner}: that environment's rollback deletes it"
    callers = ownership.pools_naming(cognito, function["Configuration"]["FunctionArn"], exclude=deleted_pool)
    if callers:
        return f"pool(s) {', '.join(callers)} still call it (LambdaConfig): detach it there first"
    return None


def _delete_role_row(iam: Any, params: Params, role_name: str, made_by: str, in_use: str | None, dry_run: bool) -> Row:
    tags = ownership.role_tags(iam, role_name)
    owner = ownership.other_owner(tags or {}, params)
    if tags is None:
        return ("IAM role", role_name, "absent", "")
    if deploy.OWNER_TAG not in tags:
        return ("IAM role", role_name, "keep", f"no {deploy.OWNER_TAG} tag: not made by {made_by}")
    if owner or in_use:
        return ("IAM role", role_name, "keep", f"used by {owner}" if owner else f"its function is kept: {in_use}")
    if not dry_run:
        _delete_role(iam, role_name)
    return ("IAM role", role_name, "delete", "with its inline policies")


def _delete_log_group(logs: Any, name: str, owner_action: str, dry_run: bool, whose: str) -> Row:
    """A log group goes with what writes to it: kept while its function or pool is kept."""
    found = any(
        g["logGroupName"] == name
        for g in aws.paginate(logs, "describe_log_groups", "logGroups", logGroupNamePrefix=name)
    )
    if not found:
        return ("log group", name, "absent", "")
    if owner_action == "keep":
        return ("log group", name, "keep", f"{whose} log: what writes to it is kept")
    if not dry_run:
        logs.delete_log_group(logGroupName=name)
    return ("log group", name, "delete", f"{whose} log")


def _function(lam: Any, name: str) -> dict[str, Any] | None:
    found = absent_as_none(lambda: lam.get_function(FunctionName=name), "ResourceNotFoundException")
    return None if found is None else dict(found)


def _function_is_ours(function: dict[str, Any]) -> bool:
    # Functions deployed before the tag existed are recognised by the description step 3 gives them.
    description = function.get("Configuration", {}).get("Description", "")
    return deploy.OWNER_TAG in (function.get("Tags") or {}) or description.startswith(deploy.FUNCTION_DESCRIPTION)


def _delete_role(iam: Any, name: str) -> None:
    for policy in aws.paginate(iam, "list_role_policies", "PolicyNames", RoleName=name):
        iam.delete_role_policy(RoleName=name, PolicyName=policy)
    for attached in aws.paginate(iam, "list_attached_role_policies", "AttachedPolicies", RoleName=name):
        iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
    iam.delete_role(RoleName=name)


def roll_back(
    params: Params, outputs: Path, run_id: str | None = None, delete: bool = False, apply: bool = False
) -> Rollback:
    """The CLI's rollback: detach (default) or delete, planned, and written only when ``apply``."""
    if delete:
        refuse_protected(params)  # before any AWS call: a protected environment is refused whatever AWS holds
    mode = "delete" if delete else "detach"
    run_dir = outputs / params.env / f"{records.new_run_id()}-rollback-{mode}"
    # its records go there, and its reads' snapshots beside the environment's runs (outputs/<env>/.snapshots)
    params = dataclasses.replace(params, run_dir=str(run_dir))
    conn = aws.connect(params)
    caller = aws.caller_identity(conn.session)  # fails with what to set before any call that could write
    source_run = None
    if delete:
        logs = aws.client(conn.session, "logs")
        rows = delete_created(
            conn.cognito, conn.iam, conn.lam, params, not apply, logs, conn.list_limiter, dynamodb=conn.dynamodb
        )
    else:
        new_pool = pool.require_new_pool(conn.cognito, params)
        source_run, previous = saved_lambda_config(outputs, params.env, new_pool["Id"], run_id)
        rows = trigger_rows(attachment.detach(conn.cognito, new_pool["Id"], previous, dry_run=not apply))
    result = Rollback(rows, apply, source_run)
    if apply:
        record = {
            "env": params.env,
            "params_digest": params.digest(),
            "mode": mode,
            "caller_identity": caller,
            "lambda_config_from_run": source_run,
            "at": records.now_iso(),
            "rows": rows.to_dict("records"),
        }
        result.record = records.save_json(run_dir, "rollback", record)
    return result
