"""Rolling back steps 2 and 3: ``python -m cognito_migration rollback --env ENV [--run RUN_ID] [--delete] [--apply]``.

Without ``--delete``: detach the trigger, i.e. restore the new pool's LambdaConfig exactly as step 3 found it
(``previous_lambda_config`` in the deploy.json of the run that attached it), every other setting kept.
With ``--delete`` (never in production, never a pool with deletion protection on): delete what steps 2 and 3
created, found by the same names and tags they use. Both show the table first and write only with ``--apply``;
an applied rollback is recorded in ``outputs/<env>/<run-id>-rollback-<mode>/rollback.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from . import aws, deploy, pool, records, signup_index
from .aws import error_code
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
    """What ``deploy.detach`` changes, one row per LambdaConfig key."""
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


def delete_trigger(iam: Any, lam: Any, dynamodb: Any, params: Params, dry_run: bool = True) -> pd.DataFrame:
    """Deletes step 3's function (its invoke permission goes with it), role and sign-up index table, each only
    when it carries the runbook's tag: a same-named resource made by someone else is kept and shown."""
    function_name, role_name = params.migration_function_name, deploy.role_name_for(params.migration_function_name)
    function, role_tags = _function(lam, function_name), _role_tags(iam, role_name)
    rows = []
    if function is None:
        rows.append(("Lambda function", function_name, "absent", ""))
    elif not _function_is_ours(function):
        rows.append(("Lambda function", function_name, "keep", f"no {deploy.OWNER_TAG} tag: not made by step 3"))
    else:
        rows.append(("Lambda function", function_name, "delete", "with its invoke permission"))
        if not dry_run:
            lam.delete_function(FunctionName=function_name)
    if role_tags is None:
        rows.append(("IAM role", role_name, "absent", ""))
    elif deploy.OWNER_TAG not in role_tags:
        rows.append(("IAM role", role_name, "keep", f"no {deploy.OWNER_TAG} tag: not made by step 3"))
    else:
        rows.append(("IAM role", role_name, "delete", "with its inline policies"))
        if not dry_run:
            _delete_role(iam, role_name)
    rows += signup_index.delete_rows(dynamodb, function_name, dry_run)
    return pd.DataFrame(rows, columns=COLUMNS)


def _function(lam: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(lam.get_function(FunctionName=name))
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _function_is_ours(function: dict[str, Any]) -> bool:
    # Functions deployed before the tag existed are recognised by the description step 3 gives them.
    description = function.get("Configuration", {}).get("Description", "")
    return deploy.OWNER_TAG in (function.get("Tags") or {}) or description.startswith(deploy.FUNCTION_DESCRIPTION)


def _role_tags(iam: Any, name: str) -> dict[str, str] | None:
    try:
        tags = iam.list_role_tags(RoleName=name)["Tags"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise
    return {t["Key"]: t["Value"] for t in tags}


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
    conn = aws.connect(params)
    caller = aws.caller_identity(conn.session)  # fails with what to set before any call that could write
    source_run = None
    if delete:
        rows = pool.delete_created(conn.cognito, conn.iam, conn.lam, params, dry_run=not apply, dynamodb=conn.dynamodb)
    else:
        new_pool = pool.require_new_pool(conn.cognito, params)
        source_run, previous = saved_lambda_config(outputs, params.env, new_pool["Id"], run_id)
        rows = trigger_rows(deploy.detach(conn.cognito, new_pool["Id"], previous, dry_run=not apply))
    result = Rollback(rows, apply, source_run)
    if apply:
        mode = "delete" if delete else "detach"
        record = {
            "env": params.env,
            "params_digest": params.digest(),
            "mode": mode,
            "caller_identity": caller,
            "lambda_config_from_run": source_run,
            "at": records.now_iso(),
            "rows": rows.to_dict("records"),
        }
        run_dir = outputs / params.env / f"{records.new_run_id()}-rollback-{mode}"
        result.record = records.save_json(run_dir, "rollback", record)
    return result
