"""Which environment a trigger function, its roles and its pool belong to: the tags step 3 puts on them, and
the pools whose LambdaConfig names the function.

Two environments in one account may share a function name (the name is a parameter). Step 3 must not take
over a function another environment's pool calls, and a rollback must not delete it: both ask here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .aws import absent_as_none, paginate
from .params import Params
from .pool import ENV_TAG, SOURCE_TAG

TARGET_TAG = "cognito-migration:target-pool"
FIX = "choose another migration_function_name for this environment (e.g. cognito-user-migration-<env>)"


@dataclass(frozen=True)
class Refusal:
    """Step 3 must not take over the function: ``owner`` is who it serves, ``message`` the error with the fix."""

    owner: str
    message: str

    @property
    def action(self) -> str:
        """The plan's row: short enough for a table cell, naming the owner and the fix."""
        return f"refuse: serves {self.owner}; set another migration_function_name"


def runbook_tags(params: Params, new_pool_id: str) -> dict[str, str]:
    """The tags naming what the function and its role serve: this environment, its old pool, its new pool."""
    return {ENV_TAG: params.env, SOURCE_TAG: params.old_user_pool_id, TARGET_TAG: new_pool_id}


def function_tags(lam: Any, function_arn: str) -> dict[str, str]:
    return dict(lam.list_tags(Resource=function_arn).get("Tags") or {})


def role_tags(iam: Any, name: str) -> dict[str, str] | None:
    """The role's tags; None when there is no such role."""
    found = absent_as_none(lambda: iam.list_role_tags(RoleName=name), "NoSuchEntity")
    return None if found is None else {t["Key"]: t["Value"] for t in found["Tags"]}


def other_owner(tags: Mapping[str, str], params: Params, old_pool_id: str | None = None) -> str | None:
    """Who else the tags (or, for a function deployed before the tags existed, its OLD_USER_POOL_ID) say the
    resource serves: 'env prodx' or 'old pool ...', or None when it is this environment's or says nothing."""
    env, source = tags.get(ENV_TAG), tags.get(SOURCE_TAG) or old_pool_id
    if env not in (None, params.env):
        return f"env {env}"
    if source not in (None, params.old_user_pool_id):
        return f"old pool {source}"
    return None


def pools_naming(cognito: Any, function_arn: str, exclude: str | None = None) -> list[str]:
    """The pools (but ``exclude``) whose LambdaConfig still names the function, each as 'id (env X)'.
    ListUserPools carries each pool's LambdaConfig: one call per 60 pools."""
    named = []
    for summary in paginate(cognito, "list_user_pools", "UserPools", PaginationConfig={"PageSize": 60}):
        if summary["Id"] == exclude or function_arn not in _arns(summary.get("LambdaConfig") or {}):
            continue
        tags = cognito.describe_user_pool(UserPoolId=summary["Id"])["UserPool"].get("UserPoolTags") or {}
        named.append(f"{summary['Id']} (env {tags.get(ENV_TAG, 'unknown')})")
    return named


def _arns(lambda_config: Mapping[str, Any]) -> set[str]:
    # Most keys hold an ARN; the versioned ones (PreTokenGenerationConfig, CustomSMSSender...) a mapping.
    arns = {v for v in lambda_config.values() if isinstance(v, str)}
    versioned = (v.get("LambdaArn") for v in lambda_config.values() if isinstance(v, dict))
    return arns | {arn for arn in versioned if arn is not None}


def takeover_refusal(
    params: Params, function_name: str, tags: Mapping[str, str], configuration: Mapping[str, Any]
) -> Refusal | None:
    """Why step 3 must not take over the existing function, or None: it serves another environment or
    another old pool (by its tags, or by its OLD_USER_POOL_ID when it predates them)."""
    variables = (configuration.get("Environment") or {}).get("Variables") or {}
    source = tags.get(SOURCE_TAG) or variables.get("OLD_USER_POOL_ID")
    other = other_owner(tags, params, source)
    if other is None:
        return None
    serves = f"env {tags.get(ENV_TAG, 'unknown')}, old pool {source or 'unknown'}"
    return Refusal(
        other,
        f"migration_function_name: the function {function_name} already serves {serves}, not env {params.env} "
        f"(old pool {params.old_user_pool_id}); taking it over would repoint that environment's sign-ins. "
        f"Nothing was written: {FIX}, then re-run this step",
    )
