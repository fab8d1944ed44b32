"""Triggers on a user pool, changed without losing anything else: read-modify-write UpdateUserPool.

UpdateUserPool resets every setting it is not given (triggers included), so each change here reads
DescribeUserPool, changes only LambdaConfig and sends every accepted setting back. ``deploy`` attaches the
migration trigger with ``attach_triggers``; ``detach`` restores a saved LambdaConfig exactly (rollback).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .pool_settings import input_members, without_deprecated


def update_pool_input(cognito: Any, described: dict[str, Any]) -> dict[str, Any]:
    """UpdateUserPool's input that changes nothing: every accepted setting, read back from DescribeUserPool,
    less the deprecated ones AWS refuses back (an older pool describes UnusedAccountValidityDays beside
    TemporaryPasswordValidityDays, and echoing both fails)."""
    accepted = input_members(cognito, "UpdateUserPool")
    update = {k: v for k, v in described.items() if k in accepted}
    update["UserPoolId"] = described["Id"]
    update["PoolName"] = described.get("Name")
    return without_deprecated({k: v for k, v in update.items() if v is not None})


def attach_triggers(
    cognito: Any,
    pool_id: str,
    triggers: dict[str, Any],
    before_write: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Sets the named triggers and keeps every other setting and trigger. Returns the previous LambdaConfig.
    ``before_write`` receives it first: what a rollback needs is recorded before the write it undoes, so a
    step killed right after UpdateUserPool can still be rolled back."""
    described = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    previous = dict(described.get("LambdaConfig") or {})
    update = update_pool_input(cognito, described)
    update["LambdaConfig"] = {**previous, **triggers}
    if before_write is not None:
        before_write(previous)
    cognito.update_user_pool(**update)
    return previous


def detach(cognito: Any, pool_id: str, previous: dict[str, Any], dry_run: bool = True) -> dict[str, Any]:
    """Restores the pool's LambdaConfig to ``previous`` exactly (the config saved before step 3 attached the
    trigger, see ``rollback.saved_lambda_config``), keeping every other setting. Writes nothing under
    ``dry_run``; returns what it found and what it restores."""
    described = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    current = dict(described.get("LambdaConfig") or {})
    result = {
        "pool_id": pool_id,
        "current_lambda_config": current,
        "restored_lambda_config": dict(previous),
        "changes": current != previous,
        "dry_run": dry_run,
    }
    if dry_run or current == previous:
        return result
    update = update_pool_input(cognito, described)
    update["LambdaConfig"] = dict(previous)  # replaced whole: a merge would keep the triggers being removed
    cognito.update_user_pool(**update)
    return result
