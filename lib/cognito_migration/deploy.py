"""Step 3: deploy the migration trigger and attach it to the new pool.

A deterministic zip of ``trigger/migration_trigger.py``, an IAM role whose policy names only the Cognito
actions the trigger calls on the two pool ARNs, the Lambda function (created or updated), Cognito's invoke
permission (SourceArn + SourceAccount), and the attachment: a read-modify-write UpdateUserPool, because
UpdateUserPool resets every setting it is not given.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import zipfile
from dataclasses import dataclass
from importlib import resources
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from .aws import error_code
from .checks import Check
from .params import Params
from .pool import NEVER_DECLARED, STANDARD_ATTRIBUTES, input_members

TRIGGER_MODULE = "migration_trigger.py"
HANDLER = "migration_trigger.handler"
RUNTIME = "python3.12"
TIMEOUT_S = 5  # Cognito waits 5 s for any trigger, whatever the function's own timeout
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
STATEMENT_ID = "cognito-migration-invoke"
OLD_POOL_ACTIONS = ("cognito-idp:AdminInitiateAuth", "cognito-idp:AdminGetUser", "cognito-idp:AdminListGroupsForUser")
NEW_POOL_ACTIONS = ("cognito-idp:AdminListGroupsForUser", "cognito-idp:AdminAddUserToGroup")
ROLE_RETRY_DELAYS_S = (1, 2, 3, 5, 8)  # a new role may not be assumable by Lambda for ~10 s


class DeployError(RuntimeError):
    """A deployment step failed; the message names the resource and the fix."""


@dataclass(frozen=True)
class Package:
    zip_bytes: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.zip_bytes).hexdigest()

    @property
    def lambda_sha256(self) -> str:
        """The form Lambda reports as CodeSha256: base64 of the digest."""
        return base64.b64encode(hashlib.sha256(self.zip_bytes).digest()).decode()


def build_package() -> Package:
    """The trigger's zip: same source, same bytes (fixed timestamps and permissions)."""
    source = resources.files("cognito_migration.trigger").joinpath(TRIGGER_MODULE).read_bytes()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(TRIGGER_MODULE, date_time=ZIP_DATE)
        info.external_attr = 0o644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, source)
    return Package(buffer.getvalue())


def account_of(arn: str) -> str:
    return arn.split(":")[4]


def role_policy(old_pool_arn: str, new_pool_arn: str, function_name: str) -> dict[str, Any]:
    """Only what the trigger calls, on only the two pools, plus its own log group."""
    region, account = new_pool_arn.split(":")[3], account_of(new_pool_arn)
    log_group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{function_name}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadOldPool", "Effect": "Allow", "Action": list(OLD_POOL_ACTIONS), "Resource": [old_pool_arn]},
            {"Sid": "CopyGroups", "Effect": "Allow", "Action": list(NEW_POOL_ACTIONS), "Resource": [new_pool_arn]},
            {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogGroup"], "Resource": [log_group]},
            {
                "Sid": "LogStreams",
                "Effect": "Allow",
                "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [f"{log_group}:*"],
            },
        ],
    }


TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def function_environment(params: Params, new_pool: dict[str, Any]) -> dict[str, str]:
    """The trigger's configuration (its README contract)."""
    schema_names = {a["Name"] for a in new_pool.get("SchemaAttributes") or []}
    allowed = sorted((schema_names | set(STANDARD_ATTRIBUTES)) - NEVER_DECLARED)
    return {
        "OLD_USER_POOL_ID": params.old_user_pool_id,
        "OLD_CLIENT_ID": params.old_client_id,
        "OLD_REGION": params.region,
        "MFA_POLICY": params.mfa_policy,
        "ALLOWED_ATTRIBUTES": ",".join(allowed),
        "ATTRIBUTE_DEFAULTS": json.dumps(params.attribute_defaults, sort_keys=True),
    }


@dataclass
class DeployPlan:
    role_name: str
    policy: dict[str, Any]
    package: Package
    environment: dict[str, str]
    existing_function: dict[str, Any] | None
    role_exists: bool
    lambda_config: dict[str, str]
    new_pool: dict[str, Any]

    @property
    def actions(self) -> pd.DataFrame:
        fn = self.existing_function
        if fn is None:
            fn_action = "create"
        elif (
            fn.get("CodeSha256") != self.package.lambda_sha256
            or fn.get("Environment", {}).get("Variables") != self.environment
        ):
            fn_action = "update"
        else:
            fn_action = "unchanged"
        wanted = self.lambda_config
        current = self.new_pool.get("LambdaConfig") or {}
        rows = [
            ("IAM role", self.role_name, "exists (policy re-applied)" if self.role_exists else "create"),
            ("Lambda function", wanted["UserMigration"].rsplit(":", 1)[-1], fn_action),
            ("invoke permission", STATEMENT_ID, "ensure"),
            (
                "trigger UserMigration",
                self.new_pool["Id"],
                "unchanged" if current.get("UserMigration") == wanted["UserMigration"] else "attach",
            ),
            (
                "trigger PostAuthentication",
                self.new_pool["Id"],
                "unchanged" if current.get("PostAuthentication") == wanted["PostAuthentication"] else "attach",
            ),
        ]
        return pd.DataFrame(rows, columns=["resource", "name", "action"])


def plan(iam: Any, lam: Any, params: Params, old_pool: dict[str, Any], new_pool: dict[str, Any]) -> DeployPlan:
    role_name = f"{params.migration_function_name}-role"
    function_arn = (
        f"arn:aws:lambda:{params.region}:{account_of(new_pool['Arn'])}:function:{params.migration_function_name}"
    )
    return DeployPlan(
        role_name=role_name,
        policy=role_policy(old_pool["Arn"], new_pool["Arn"], params.migration_function_name),
        package=build_package(),
        environment=function_environment(params, new_pool),
        existing_function=_get_function(lam, params.migration_function_name),
        role_exists=_role_arn(iam, role_name) is not None,
        lambda_config={"UserMigration": function_arn, "PostAuthentication": function_arn},
        new_pool=new_pool,
    )


def apply(cognito: Any, iam: Any, lam: Any, the_plan: DeployPlan, params: Params, dry_run: bool) -> dict[str, Any]:
    """Writes the plan; returns a summary (function ARN, code sha256, previous LambdaConfig)."""
    summary = {
        "code_sha256": the_plan.package.sha256,
        "function_arn": the_plan.lambda_config["UserMigration"],
        "previous_lambda_config": the_plan.new_pool.get("LambdaConfig") or {},
        "dry_run": dry_run,
    }
    if dry_run:
        return summary
    role_arn = ensure_role(iam, the_plan.role_name, the_plan.policy)
    function_arn = ensure_function(lam, params.migration_function_name, role_arn, the_plan)
    ensure_permission(lam, params.migration_function_name, the_plan.new_pool["Arn"])
    attach_triggers(
        cognito, the_plan.new_pool["Id"], {"UserMigration": function_arn, "PostAuthentication": function_arn}
    )
    summary["function_arn"] = function_arn
    return summary


def _role_arn(iam: Any, role_name: str) -> str | None:
    try:
        return str(iam.get_role(RoleName=role_name)["Role"]["Arn"])
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise


def ensure_role(iam: Any, role_name: str, policy: dict[str, Any]) -> str:
    arn = _role_arn(iam, role_name)
    if arn is None:
        arn = iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description="Cognito user migration trigger",
            Tags=[{"Key": "cognito-migration", "Value": "trigger"}],
        )["Role"]["Arn"]
    iam.put_role_policy(RoleName=role_name, PolicyName="cognito-migration", PolicyDocument=json.dumps(policy))
    return str(arn)


def _get_function(lam: Any, name: str) -> dict[str, Any] | None:
    try:
        return dict(lam.get_function_configuration(FunctionName=name))
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def ensure_function(lam: Any, name: str, role_arn: str, the_plan: DeployPlan) -> str:
    """Creates the function, or updates its code and configuration where they differ."""
    config = {
        "Role": role_arn,
        "Handler": HANDLER,
        "Runtime": RUNTIME,
        "Timeout": TIMEOUT_S,
        "MemorySize": 256,
        "Environment": {"Variables": the_plan.environment},
        "Description": f"Cognito user migration trigger {the_plan.package.sha256[:12]}",
    }
    existing = _get_function(lam, name)
    if existing is None:
        created = _retry_while_role_propagates(
            lambda: lam.create_function(FunctionName=name, Code={"ZipFile": the_plan.package.zip_bytes}, **config)
        )
        return str(created["FunctionArn"])
    if existing.get("CodeSha256") != the_plan.package.lambda_sha256:
        lam.update_function_code(FunctionName=name, ZipFile=the_plan.package.zip_bytes)
    _retry_while_role_propagates(lambda: lam.update_function_configuration(FunctionName=name, **config))
    return str(existing["FunctionArn"])


def _retry_while_role_propagates(call: Any) -> Any:
    for delay in (*ROLE_RETRY_DELAYS_S, None):
        try:
            return call()
        except ClientError as exc:
            if error_code(exc) != "InvalidParameterValueException" or "role" not in str(exc).lower() or delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")


def ensure_permission(lam: Any, name: str, pool_arn: str) -> None:
    """Lets Cognito (only for this pool, only in this account) invoke the function."""
    try:
        statements = json.loads(lam.get_policy(FunctionName=name)["Policy"]).get("Statement", [])
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        statements = []
    current = next((s for s in statements if s.get("Sid") == STATEMENT_ID), None)
    if current is not None:
        if (current.get("Condition") or {}).get("ArnLike", {}).get("AWS:SourceArn") == pool_arn:
            return
        lam.remove_permission(FunctionName=name, StatementId=STATEMENT_ID)
    lam.add_permission(
        FunctionName=name,
        StatementId=STATEMENT_ID,
        Action="lambda:InvokeFunction",
        Principal="cognito-idp.amazonaws.com",
        SourceArn=pool_arn,
        SourceAccount=account_of(pool_arn),
    )


def update_pool_input(cognito: Any, described: dict[str, Any]) -> dict[str, Any]:
    """UpdateUserPool's input that changes nothing: every accepted setting, read back from DescribeUserPool."""
    accepted = input_members(cognito, "UpdateUserPool")
    update = {k: v for k, v in described.items() if k in accepted}
    update["UserPoolId"] = described["Id"]
    update["PoolName"] = described.get("Name")
    return {k: v for k, v in update.items() if v is not None}


def attach_triggers(cognito: Any, pool_id: str, triggers: dict[str, str]) -> dict[str, str]:
    """Read-modify-write: sets the named triggers and keeps every other setting. Returns the previous config."""
    described = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    previous = dict(described.get("LambdaConfig") or {})
    update = update_pool_input(cognito, described)
    update["LambdaConfig"] = {**previous, **triggers}
    cognito.update_user_pool(**update)
    return previous


def verify(cognito: Any, iam: Any, lam: Any, the_plan: DeployPlan, params: Params) -> list[Check]:
    """Step 3's promises read back from AWS: code, configuration, least privilege, permission, attachment,
    and every other setting of the pool unchanged."""
    if params.dry_run:
        return [Check("dry run", True, "info", "nothing written", "set dry_run: false to deploy")]
    name = params.migration_function_name
    function = _get_function(lam, name) or {}
    policy = iam.get_role_policy(RoleName=the_plan.role_name, PolicyName="cognito-migration")["PolicyDocument"]
    policy = json.loads(policy) if isinstance(policy, str) else policy
    cognito_resources = {
        r for s in policy["Statement"] if any(a.startswith("cognito-idp:") for a in s["Action"]) for r in s["Resource"]
    }
    pool_arns = {the_plan.policy["Statement"][0]["Resource"][0], the_plan.new_pool["Arn"]}
    statements = json.loads(lam.get_policy(FunctionName=name)["Policy"])["Statement"]
    permission = next((s for s in statements if s.get("Sid") == STATEMENT_ID), {})
    condition = permission.get("Condition") or {}
    after = cognito.describe_user_pool(UserPoolId=the_plan.new_pool["Id"])["UserPool"]
    changed = sorted(
        k
        for k in set(after) | set(the_plan.new_pool)
        if k not in ("LambdaConfig", "LastModifiedDate") and after.get(k) != the_plan.new_pool.get(k)
    )
    lambda_config = after.get("LambdaConfig") or {}
    return [
        Check(
            "deployed code is this package",
            function.get("CodeSha256") == the_plan.package.lambda_sha256,
            "blocker",
            f"sha256 {the_plan.package.sha256[:16]}…",
            "re-run this step",
        ),
        Check(
            "function configured",
            (function.get("Environment") or {}).get("Variables") == the_plan.environment,
            "blocker",
            f"handler {function.get('Handler')}, timeout {function.get('Timeout')} s",
            "re-run this step",
        ),
        Check(
            "role reaches only the two pools",
            cognito_resources == pool_arns,
            "blocker",
            f"cognito-idp resources: {sorted(cognito_resources)}",
            "re-run this step: the policy is rewritten",
        ),
        Check(
            "invoke permission scoped to the new pool",
            condition.get("ArnLike", {}).get("AWS:SourceArn") == the_plan.new_pool["Arn"]
            and condition.get("StringEquals", {}).get("AWS:SourceAccount") == account_of(the_plan.new_pool["Arn"]),
            "blocker",
            f"condition: {condition}",
            "re-run this step",
        ),
        Check(
            "triggers attached",
            all(lambda_config.get(k) == v for k, v in the_plan.lambda_config.items()),
            "blocker",
            f"LambdaConfig: {sorted(lambda_config)}",
            "re-run this step",
        ),
        Check(
            "no other pool setting changed",
            not changed,
            "blocker",
            f"changed: {changed or 'none'}",
            "compare with the previous LambdaConfig in deploy.json and restore by hand",
        ),
    ]
