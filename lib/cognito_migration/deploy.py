"""Step 3: deploy the migration trigger and attach it to the new pool.

A deterministic zip of ``trigger/migration_trigger.py``, the sign-up index (a DynamoDB table the PreSignUp guard
reads, filled from a whole-pool read of the old pool: ``signup_index``), an IAM role whose policy names only the
Cognito actions the trigger calls on the two pool ARNs and GetItem on the index, the Lambda function (created or
updated), Cognito's invoke permission (SourceArn + SourceAccount), and the attachment: a read-modify-write
UpdateUserPool, because UpdateUserPool resets every setting it is not given.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError, WaiterError

from . import ownership, records, signup_index, snapshot_store
from .attachment import attach_triggers
from .aws import RateLimiter, absent_as_none, retry_while_role_propagates
from .checks import Check
from .params import Params
from .pool import NEVER_DECLARED, STANDARD_ATTRIBUTES
from .trigger import migration_trigger

TRIGGER_MODULE = "migration_trigger.py"
HANDLER = "migration_trigger.handler"
RUNTIME = "python3.12"
TIMEOUT_S = 5  # Cognito waits 5 s for any trigger, whatever the function's own timeout
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
STATEMENT_ID = "cognito-migration-invoke"
POLICY_NAME = "cognito-migration"
OWNER_TAG = "cognito-migration"  # on the role and the function: rollback deletes only what carries it
FUNCTION_DESCRIPTION = "Cognito user migration trigger"
OLD_POOL_ACTIONS = (
    "cognito-idp:AdminInitiateAuth",
    "cognito-idp:AdminGetUser",
    "cognito-idp:AdminListGroupsForUser",
    "cognito-idp:ListUsers",  # aliases the old pool does not know (the sign-up guard reads the index instead)
)
NEW_POOL_ACTIONS = (
    "cognito-idp:AdminListGroupsForUser",
    "cognito-idp:AdminAddUserToGroup",
    "cognito-idp:AdminDeleteUserAttributes",  # removes custom:groups_pending once the groups are copied
)
TRIGGERS = ("UserMigration", "PostAuthentication", "PreSignUp")
ROLE_RETRY_DELAYS_S = (1, 2, 3, 5, 8)  # a new role may not be assumable by Lambda for ~10 s
# A new function is Pending, an updated one InProgress, for a while; Lambda refuses another update meanwhile
# (ResourceConflictException) and Cognito cannot run a Pending function. botocore's waiters poll GetFunction;
# bounded at a minute each (their default is 5 minutes), then an error naming the fix.
FUNCTION_WAIT = {"Delay": 1, "MaxAttempts": 60}
FUNCTION_WAIT_MAX_S = FUNCTION_WAIT["Delay"] * FUNCTION_WAIT["MaxAttempts"]
WAIT_GOAL = {"function_active_v2": "Active", "function_updated_v2": "updated (LastUpdateStatus Successful)"}


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


def role_name_for(function_name: str) -> str:
    """The trigger's role: found again (and deleted by a rollback) by this name."""
    return f"{function_name}-role"


def role_policy(
    old_pool_arn: str, new_pool_arn: str, function_name: str, old_role_arn: str | None = None
) -> dict[str, Any]:
    """Only what the trigger calls, on only the two pools, plus its own log group. With `old_role_arn` the
    old pool is reached through that role (another account): the trigger may only assume it."""
    region, account = new_pool_arn.split(":")[3], account_of(new_pool_arn)
    log_group = f"arn:aws:logs:{region}:{account}:log-group:/aws/lambda/{function_name}"
    index_arn = signup_index.table_arn(region, account, signup_index.table_name_for(function_name))
    old_access = (
        {"Sid": "AssumeOldPoolRole", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": [old_role_arn]}
        if old_role_arn
        else {"Sid": "ReadOldPool", "Effect": "Allow", "Action": list(OLD_POOL_ACTIONS), "Resource": [old_pool_arn]}
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            old_access,
            {"Sid": "CopyGroups", "Effect": "Allow", "Action": list(NEW_POOL_ACTIONS), "Resource": [new_pool_arn]},
            {"Sid": "ReadSignUpIndex", "Effect": "Allow", "Action": ["dynamodb:GetItem"], "Resource": [index_arn]},
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


def function_environment(
    params: Params, new_pool: dict[str, Any], old_pool: dict[str, Any] | None = None, index_key: str = ""
) -> dict[str, str]:
    """The trigger's configuration (its contract: docs/trigger.md), checked by the trigger's own loader. Without
    ``index_key`` (the sign-up index's HMAC key) the deployed guard refuses every sign-up."""
    schema_names = {a["Name"] for a in new_pool.get("SchemaAttributes") or []}
    allowed = sorted((schema_names | set(STANDARD_ATTRIBUTES)) - NEVER_DECLARED)
    old_sign_in = (old_pool or {}).get("UsernameAttributes") or (old_pool or {}).get("AliasAttributes") or []
    environment = {
        "OLD_USER_POOL_ID": params.old_user_pool_id,
        "OLD_CLIENT_ID": params.old_client_id,
        "OLD_REGION": params.region,
        "MFA_POLICY": params.mfa_policy,
        "ALLOWED_ATTRIBUTES": ",".join(allowed),
        "ATTRIBUTE_DEFAULTS": json.dumps(params.attribute_defaults, sort_keys=True),
        # A pool created without UsernameConfiguration is case-sensitive.
        "NEW_CASE_SENSITIVE": str((new_pool.get("UsernameConfiguration") or {}).get("CaseSensitive", True)).lower(),
        signup_index.TABLE_VARIABLE: signup_index.table_name_for(params.migration_function_name),
    }
    optional = {
        "ATTRIBUTE_MAP": json.dumps(params.attribute_map, sort_keys=True) if params.attribute_map else "",
        "LEGACY_SUB_ATTRIBUTE": params.legacy_sub_attribute or "",
        "OLD_ROLE_ARN": params.old_role_arn or "",
        "OLD_EXTERNAL_ID": params.old_external_id or "",
        "OLD_SIGN_IN_ATTRIBUTES": ",".join(sorted(old_sign_in)),
        # Who mfa_policy refuse refuses without a sign-in (forgot-password); unset when the old pool is out of sight.
        "OLD_MFA_CONFIGURATION": str((old_pool or {}).get("MfaConfiguration") or ""),
        "NEW_USERNAME_ATTRIBUTES": ",".join(sorted(new_pool.get("UsernameAttributes") or [])),
        "NEW_ALIAS_ATTRIBUTES": ",".join(sorted(new_pool.get("AliasAttributes") or [])),
        signup_index.KEY_VARIABLE: index_key,
    }
    environment.update({name: value for name, value in optional.items() if value})
    try:
        migration_trigger.load_settings(environment)
    except migration_trigger.ConfigurationError as exc:
        # Deployed as is, every sign-in would fail: say so before anything is written.
        raise DeployError(
            f"the trigger would refuse this configuration: {exc}. Fix the parameter, or add the attribute to "
            f"the new pool {new_pool.get('Id')} (AddCustomAttributes) and re-run"
        ) from None
    return environment


def wanted_triggers(new_pool: dict[str, Any], function_arn: str) -> dict[str, str]:
    """The triggers the function takes on. A PreSignUp the new pool already has (carried from the old pool)
    is kept: replacing it would silently drop its checks; the squatting guard is then not attached."""
    current = (new_pool.get("LambdaConfig") or {}).get("PreSignUp")
    return {t: function_arn for t in TRIGGERS if t != "PreSignUp" or current in (None, function_arn)}


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
    current_policy: dict[str, Any] | None = None  # the role's inline policy as it is now
    permission: dict[str, Any] | None = None  # the function's invoke statement for Cognito as it is now
    old_pool: dict[str, Any] = field(default_factory=dict)
    index_table: dict[str, Any] | None = None  # the sign-up index's DescribeTable as it is now
    tags: dict[str, str] | None = None  # what the function and role must carry: this env and its two pools
    current_tags: dict[str, str] | None = None  # the existing function's tags
    refusal: ownership.Refusal | None = None  # why the existing function must not be taken over

    @property
    def index_name(self) -> str:
        return self.environment[signup_index.TABLE_VARIABLE]

    @property
    def actions(self) -> pd.DataFrame:
        fn = self.existing_function
        if fn is None:
            fn_action = "create"
        elif self.refusal:
            fn_action = self.refusal.action
        elif fn.get("CodeSha256") != self.package.lambda_sha256:
            fn_action = "update code and configuration"
        elif fn.get("Environment", {}).get("Variables") != self.environment:
            fn_action = "update configuration"
        else:
            fn_action = "unchanged"
        if not self.role_exists:
            role_action = "create"
        else:
            role_action = "unchanged" if self.current_policy == self.policy else "update policy"
        if self.permission is None:
            permission_action = "add"
        else:
            permission_action = "unchanged" if permission_matches(self.permission, self.new_pool["Arn"]) else "replace"
        current = self.new_pool.get("LambdaConfig") or {}
        rows = [
            *signup_index.plan_rows(self.index_table, self.index_name, self.old_pool),
            ("IAM role", self.role_name, role_action),
            ("Lambda function", self.function_name, fn_action),
            ("invoke permission", STATEMENT_ID, permission_action),
            ("tags", f"{self.role_name}, {self.function_name}", self._tags_action),
        ]
        for trigger, arn in self.lambda_config.items():
            if current.get(trigger) == arn:
                action = "unchanged"
            else:
                action = f"replace {current[trigger]}" if current.get(trigger) else "attach"
            rows.append((f"trigger {trigger}", self.new_pool["Id"], action))
        return pd.DataFrame(rows, columns=["resource", "name", "action"])

    @property
    def _tags_action(self) -> str:
        wanted = self.tags or {}
        if self.existing_function is None:
            return "create"
        missing = sorted(k for k, v in wanted.items() if (self.current_tags or {}).get(k) != v)
        return f"add {', '.join(missing)}" if missing else "unchanged"

    @property
    def function_name(self) -> str:
        return self.function_arn.rsplit(":", 1)[-1]

    @property
    def function_arn(self) -> str:
        """The function the plan attaches (every trigger of lambda_config names it)."""
        return self.lambda_config.get("UserMigration") or next(iter(self.lambda_config.values()))


def require_sms_mfa_possible(params: Params, new_pool: dict[str, Any]) -> None:
    """mfa_policy sms answers enableSMSMFA, which Cognito refuses (failing every such migration) unless the new
    pool's MFA is not OFF and SMS is configured with its role: say so before anything is deployed."""
    if params.mfa_policy != "sms":
        return
    problems = []
    if (new_pool.get("MfaConfiguration") or "OFF") == "OFF":
        problems.append("its MfaConfiguration is OFF (set target_mfa_configuration: OPTIONAL or ON)")
    if not (new_pool.get("SmsConfiguration") or {}).get("SnsCallerArn"):
        problems.append("it has no SmsConfiguration with an SnsCallerArn (set target_sms_configuration)")
    if problems:
        raise DeployError(
            f"mfa_policy: sms cannot work on the new pool {new_pool.get('Id')}: "
            + "; ".join(problems)
            + ". Fix the pool in step 2's parameters and re-create it, or choose mfa_policy: reset_required"
        )


def plan(
    iam: Any, lam: Any, params: Params, old_pool: dict[str, Any], new_pool: dict[str, Any], *, dynamodb: Any
) -> DeployPlan:
    require_sms_mfa_possible(params, new_pool)
    role_name = role_name_for(params.migration_function_name)
    function_arn = (
        f"arn:aws:lambda:{params.region}:{account_of(new_pool['Arn'])}:function:{params.migration_function_name}"
    )
    existing = _get_function(lam, params.migration_function_name)
    # A re-run keeps the deployed key: a new one would orphan every key already in the index.
    key = ((existing or {}).get("Environment") or {}).get("Variables", {}).get(signup_index.KEY_VARIABLE)
    index_name = signup_index.table_name_for(params.migration_function_name)
    current_tags = ownership.function_tags(lam, existing["FunctionArn"]) if existing else None
    return DeployPlan(
        role_name=role_name,
        policy=role_policy(old_pool["Arn"], new_pool["Arn"], params.migration_function_name, params.old_role_arn),
        package=build_package(),
        environment=function_environment(params, new_pool, old_pool, key or signup_index.new_key()),
        existing_function=existing,
        old_pool=old_pool,
        index_table=signup_index.describe_table(dynamodb, index_name),
        role_exists=_role_arn(iam, role_name) is not None,
        current_policy=_role_policy_document(iam, role_name),
        permission=_permission_statement(lam, params.migration_function_name),
        lambda_config=wanted_triggers(new_pool, function_arn),
        new_pool=new_pool,
        tags={OWNER_TAG: "trigger", **ownership.runbook_tags(params, new_pool["Id"])},
        current_tags=current_tags,
        refusal=_takeover_refusal(params, existing, current_tags),
    )


def _takeover_refusal(
    params: Params, existing: dict[str, Any] | None, tags: dict[str, str] | None
) -> ownership.Refusal | None:
    """Step 3 takes over an existing function only when it is this runbook's, for this environment."""
    if existing is None:
        return None
    name = params.migration_function_name
    if OWNER_TAG not in (tags or {}) and not existing.get("Description", "").startswith(FUNCTION_DESCRIPTION):
        return ownership.Refusal(
            "a function not made by this runbook",
            f"migration_function_name: the function {name} already exists and was not made by this runbook; "
            f"nothing was written: {ownership.FIX}, then re-run this step",
        )
    return ownership.takeover_refusal(params, name, tags or {}, existing)


def apply(
    cognito: Any,
    iam: Any,
    lam: Any,
    the_plan: DeployPlan,
    params: Params,
    dry_run: bool,
    *,
    dynamodb: Any,
    limiter: RateLimiter | None = None,
) -> dict[str, Any]:
    """Writes the plan; returns the summary deploy.json keeps: the code's sha256, the function, the pool's
    LambdaConfig before and after (``attachment.detach`` restores the former), the role-propagation retries, and
    the sign-up index's counts. The index is filled before anything is attached, so the guard never runs
    against a missing or empty table; ``limiter`` paces the old pool's read (ListUsers). Refuses
    (DeployError) a plan that would take over another environment's function, dry run or not."""
    if the_plan.refusal:
        raise DeployError(the_plan.refusal.message)
    summary: dict[str, Any] = {
        "code_sha256": the_plan.package.sha256,
        "function_arn": the_plan.function_arn,
        "role_name": the_plan.role_name,
        "new_pool_id": the_plan.new_pool["Id"],
        "previous_lambda_config": the_plan.new_pool.get("LambdaConfig") or {},
        "lambda_config": {**(the_plan.new_pool.get("LambdaConfig") or {}), **the_plan.lambda_config},
        "role_retries": [],
        "function_waits": [],
        "dry_run": dry_run,
        "signup_index": {"table": the_plan.index_name, "exists": the_plan.index_table is not None},
    }
    if dry_run:
        return summary
    secret = the_plan.environment[signup_index.KEY_VARIABLE]
    store = snapshot_store.SnapshotStore.of(params)
    counts = signup_index.build(cognito, dynamodb, params.old_user_pool_id, the_plan.index_name, secret, limiter, store)
    summary["signup_index"] = counts.as_dict()
    role_arn = ensure_role(iam, the_plan.role_name, the_plan.policy)
    function_arn = ensure_function(
        lam, params.migration_function_name, role_arn, the_plan, summary["role_retries"], summary["function_waits"]
    )
    ensure_permission(lam, params.migration_function_name, the_plan.new_pool["Arn"])
    ensure_tags(iam, lam, the_plan.role_name, function_arn, the_plan.tags or {})
    # The plan names the function by its expected ARN; attach the ARN Lambda actually gave it.
    triggers = {k: function_arn if v == the_plan.function_arn else v for k, v in the_plan.lambda_config.items()}
    summary["previous_lambda_config"] = attach_triggers(
        cognito,
        the_plan.new_pool["Id"],
        triggers,
        lambda previous: _record_attaching(params, summary, previous, triggers),
    )
    summary["lambda_config"] = {**summary["previous_lambda_config"], **triggers}
    summary["function_arn"] = function_arn
    return summary


def _record_attaching(
    params: Params, summary: dict[str, Any], previous: dict[str, Any], triggers: dict[str, Any]
) -> None:
    """deploy.json as it stands just before the attachment: the LambdaConfig a rollback restores. The notebook
    saves the whole summary over it once the step ends."""
    attaching = {**summary, "previous_lambda_config": previous, "lambda_config": {**previous, **triggers}}
    records.save_json(params.records_dir, "deploy", {**attaching, "attaching": True})


def ensure_tags(iam: Any, lam: Any, role_name: str, function_arn: str, tags: dict[str, str]) -> None:
    """Tags the role and the function with the environment and pools they serve (adding them to resources
    deployed before the tags existed): the next environment's step 3 and every rollback read them."""
    if any(ownership.function_tags(lam, function_arn).get(k) != v for k, v in tags.items()):
        lam.tag_resource(Resource=function_arn, Tags=tags)
    if any((ownership.role_tags(iam, role_name) or {}).get(k) != v for k, v in tags.items()):
        iam.tag_role(RoleName=role_name, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def _role_arn(iam: Any, role_name: str) -> str | None:
    found = absent_as_none(lambda: iam.get_role(RoleName=role_name), "NoSuchEntity")
    return None if found is None else str(found["Role"]["Arn"])


def ensure_role(iam: Any, role_name: str, policy: dict[str, Any]) -> str:
    """Creates the role, or rewrites its policy where it differs from ``policy``."""
    arn = _role_arn(iam, role_name)
    if arn is None:
        arn = iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description="Cognito user migration trigger",
            Tags=[{"Key": OWNER_TAG, "Value": "trigger"}],
        )["Role"]["Arn"]
    if _role_policy_document(iam, role_name) != policy:
        iam.put_role_policy(RoleName=role_name, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(policy))
    return str(arn)


def _role_policy_document(iam: Any, role_name: str) -> dict[str, Any] | None:
    found = absent_as_none(lambda: iam.get_role_policy(RoleName=role_name, PolicyName=POLICY_NAME), "NoSuchEntity")
    if found is None:
        return None
    document = found["PolicyDocument"]
    # boto3 decodes the URL-encoded JSON into a dict; some endpoints answer the JSON text.
    return json.loads(document) if isinstance(document, str) else dict(document)


def _get_function(lam: Any, name: str) -> dict[str, Any] | None:
    found = absent_as_none(lambda: lam.get_function_configuration(FunctionName=name), "ResourceNotFoundException")
    return None if found is None else dict(found)


def ensure_function(
    lam: Any,
    name: str,
    role_arn: str,
    the_plan: DeployPlan,
    retries: list[dict[str, Any]] | None = None,
    waits: list[dict[str, Any]] | None = None,
) -> str:
    """Creates the function, or updates its code and configuration where they differ. Waits for a new role
    to become assumable, appending each wait to ``retries``, and after each change for the function to settle
    (Active, or its update done), appending each to ``waits`` (deploy.json shows both)."""
    config = {
        "Role": role_arn,
        "Handler": HANDLER,
        "Runtime": RUNTIME,
        "Timeout": TIMEOUT_S,
        "MemorySize": 256,
        "Environment": {"Variables": the_plan.environment},
        "Description": f"{FUNCTION_DESCRIPTION} {the_plan.package.sha256[:12]}",
    }
    retries = [] if retries is None else retries
    waits = [] if waits is None else waits
    existing = _get_function(lam, name)
    if existing is None:
        created = _retry_while_role_propagates(
            lambda: lam.create_function(
                FunctionName=name,
                Code={"ZipFile": the_plan.package.zip_bytes},
                Tags={OWNER_TAG: "trigger"},
                **config,
            ),
            retries,
        )
        wait_for_function(lam, "function_active_v2", name, waits, "CreateFunction")
        return str(created["FunctionArn"])
    _settle_before_changing(lam, existing, waits)
    if existing.get("CodeSha256") != the_plan.package.lambda_sha256:
        lam.update_function_code(FunctionName=name, ZipFile=the_plan.package.zip_bytes)
        wait_for_function(lam, "function_updated_v2", name, waits, "UpdateFunctionCode")
    current = {key: existing.get(key) for key in config}
    if current != config:
        _retry_while_role_propagates(lambda: lam.update_function_configuration(FunctionName=name, **config), retries)
        wait_for_function(lam, "function_updated_v2", name, waits, "UpdateFunctionConfiguration")
    return str(existing["FunctionArn"])


def _settle_before_changing(lam: Any, existing: dict[str, Any], waits: list[dict[str, Any]]) -> None:
    """A function found mid-change (another deployment a moment ago) would refuse the update: wait first."""
    name = str(existing["FunctionName"])
    if existing.get("State") == "Pending":
        wait_for_function(lam, "function_active_v2", name, waits, "a change found in progress")
    elif existing.get("LastUpdateStatus") == "InProgress":
        wait_for_function(lam, "function_updated_v2", name, waits, "a change found in progress")


def wait_for_function(
    lam: Any,
    waiter: str,
    name: str,
    waits: list[dict[str, Any]],
    after: str,
    config: Mapping[str, float] | None = None,
) -> None:
    """botocore's ``waiter`` (function_active_v2 or function_updated_v2), bounded by ``config`` (FUNCTION_WAIT);
    appends ``{after, waiter, seconds, outcome}`` to ``waits``. A function that does not settle stops the step
    with what to look at."""
    config = FUNCTION_WAIT if config is None else config
    started = time.monotonic()
    try:
        lam.get_waiter(waiter).wait(FunctionName=name, WaiterConfig=config)
    except WaiterError as exc:
        waits.append(_wait_record(after, waiter, started, "timed out" if "Max attempts" in str(exc) else "failed"))
        limit = config["Delay"] * config["MaxAttempts"]
        raise DeployError(
            f"function {name}: not {WAIT_GOAL[waiter]} after {after} within {limit:g} s ({exc}); read its State, "
            "StateReason and LastUpdateStatusReason with GetFunction, fix what they name, then re-run"
        ) from exc
    waits.append(_wait_record(after, waiter, started, "ready"))


def _wait_record(after: str, waiter: str, started: float, outcome: str) -> dict[str, Any]:
    return {"after": after, "waiter": waiter, "seconds": round(time.monotonic() - started, 2), "outcome": outcome}


def _retry_while_role_propagates(
    call: Any, retries: list[dict[str, Any]], delays: tuple[float, ...] = ROLE_RETRY_DELAYS_S
) -> Any:
    """Bounded: ``delays`` then the error, which names the fix; each retry is recorded in ``retries``."""

    def record(attempt: int, delay: float, exc: ClientError) -> None:
        retries.append({"attempt": attempt, "waited_s": delay, "error": str(exc)})

    def still_refused(exc: ClientError, attempts: int) -> DeployError:
        return DeployError(
            f"the function's role is still not assumable by Lambda after {attempts} attempts over "
            f"{sum(delays):g} s ({exc}); check its trust policy names lambda.amazonaws.com, then re-run"
        )

    return retry_while_role_propagates(
        call, "InvalidParameterValueException", delays, on_retry=record, give_up=still_refused
    )


def _permission_statement(lam: Any, name: str) -> dict[str, Any] | None:
    """The function's statement letting Cognito invoke it; None without a function or a statement."""
    found = absent_as_none(lambda: lam.get_policy(FunctionName=name), "ResourceNotFoundException")
    if found is None:
        return None
    statements = json.loads(found["Policy"]).get("Statement", [])
    return next((s for s in statements if s.get("Sid") == STATEMENT_ID), None)


def permission_matches(statement: dict[str, Any], pool_arn: str) -> bool:
    """Scoped to this pool and to its account, as Cognito's confused-deputy guidance asks."""
    condition = statement.get("Condition") or {}
    return condition.get("ArnLike", {}).get("AWS:SourceArn") == pool_arn and condition.get("StringEquals", {}).get(
        "AWS:SourceAccount"
    ) == account_of(pool_arn)


def ensure_permission(lam: Any, name: str, pool_arn: str) -> None:
    """Lets Cognito (only for this pool, only in this account) invoke the function."""
    current = _permission_statement(lam, name)
    if current is not None:
        if permission_matches(current, pool_arn):
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


def verify(cognito: Any, iam: Any, lam: Any, the_plan: DeployPlan, params: Params, *, dynamodb: Any) -> list[Check]:
    """Step 3's promises read back from AWS: code, configuration, least privilege, the sign-up index,
    permission, attachment, and every other setting of the pool unchanged."""
    if params.dry_run:
        return [Check("dry run", True, "info", "nothing written", "set dry_run: false to deploy")]
    name = params.migration_function_name
    function = _get_function(lam, name) or {}
    policy = _role_policy_document(iam, the_plan.role_name) or {"Statement": []}
    cognito_resources = {
        r for s in policy["Statement"] if any(a.startswith("cognito-idp:") for a in s["Action"]) for r in s["Resource"]
    }
    pool_arns = {  # the old pool is absent when it is reached through an assumed role
        r
        for s in the_plan.policy["Statement"]
        if any(a.startswith("cognito-idp:") for a in s["Action"])
        for r in s["Resource"]
    }
    permission = _permission_statement(lam, name) or {}
    after = cognito.describe_user_pool(UserPoolId=the_plan.new_pool["Id"])["UserPool"]
    changed = sorted(
        k
        for k in set(after) | set(the_plan.new_pool)
        if k not in ("LambdaConfig", "LastModifiedDate") and after.get(k) != the_plan.new_pool.get(k)
    )
    lambda_config = after.get("LambdaConfig") or {}
    tags = ownership.function_tags(lam, function["FunctionArn"]) if function else {}
    return signup_index.checks(dynamodb, the_plan.index_name, policy) + [
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
            permission_matches(permission, the_plan.new_pool["Arn"]),
            "blocker",
            f"condition: {permission.get('Condition')}",
            "re-run this step",
        ),
        Check(
            "function tagged with this environment and its pools",
            all(tags.get(k) == v for k, v in (the_plan.tags or {}).items()),
            "blocker",
            ", ".join(f"{k}={tags.get(k)}" for k in ownership.runbook_tags(params, the_plan.new_pool["Id"])),
            "re-run this step: the next environment's step 3 and every rollback read these tags",
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
            "compare with the pool before this step; `python -m cognito_migration rollback` restores the triggers",
        ),
    ]
