"""Rules AWS enforces that moto skips, played by the local AWS over HTTP with AWS's error code and message, and
the runbook meeting them: a read-modify-write of an older pool, step 2 cloning it."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections.abc import Callable
from importlib import resources
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cognito_migration import attachment, deploy, pool, pool_settings
from cognito_migration.local import pool_rules
from cognito_migration.local.legacy import UNUSED_ACCOUNT_VALIDITY_DAYS, seed_legacy_pool
from cognito_migration.local.pool_rules import UNUSED_ACCOUNT_VALIDITY_MESSAGE
from cognito_migration.params import Params
from step_support import step_params, unique

REGION = "us-east-1"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:123456789012:function:migration"
BOTH = {
    "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False, "UnusedAccountValidityDays": 7},
    "Policies": {"PasswordPolicy": {"MinimumLength": 8, "TemporaryPasswordValidityDays": 7}},
}


def error_of(exc_info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc_info.value.response["Error"]
    return error["Code"], error["Message"]


def zip_of(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("handler.py", source)
    return buffer.getvalue()


def without_deprecated_field(described: dict[str, Any]) -> dict[str, Any]:
    """A description compared before and after a read-modify-write: the field the runbook drops on purpose
    and the modification date aside."""
    kept = pool_settings.without_deprecated(described)
    return {k: v for k, v in kept.items() if k not in ("LambdaConfig", "LastModifiedDate")}


# --- the rule, over HTTP --------------------------------------------------------------------------------


def test_create_user_pool_refuses_unused_account_validity_days_beside_temporary_password_validity_days(cognito):
    with pytest.raises(ClientError) as refused:
        cognito.create_user_pool(PoolName=unique("both"), **BOTH)

    assert error_of(refused) == ("InvalidParameterException", UNUSED_ACCOUNT_VALIDITY_MESSAGE)
    assert UNUSED_ACCOUNT_VALIDITY_MESSAGE == (
        "Please use TemporaryPasswordValidityDays in PasswordPolicy instead of UnusedAccountValidityDays"
    )
    assert unique("both") not in {p["Name"] for p in cognito.list_user_pools(MaxResults=60)["UserPools"]}


def test_update_user_pool_refuses_unused_account_validity_days_beside_temporary_password_validity_days(cognito):
    pool_id = cognito.create_user_pool(PoolName=unique("update"))["UserPool"]["Id"]

    with pytest.raises(ClientError) as refused:
        cognito.update_user_pool(UserPoolId=pool_id, **BOTH)

    assert error_of(refused) == ("InvalidParameterException", UNUSED_ACCOUNT_VALIDITY_MESSAGE)


@pytest.mark.parametrize("alone", ["AdminCreateUserConfig", "Policies"])
def test_either_field_alone_is_accepted(cognito, alone):
    """Never stricter than the sources say: only the two together are refused."""
    pool_id = cognito.create_user_pool(PoolName=unique("alone"), **{alone: BOTH[alone]})["UserPool"]["Id"]
    cognito.update_user_pool(UserPoolId=pool_id, **{alone: BOTH[alone]})


def test_threat_protection_is_refused_on_the_essentials_plan_and_allowed_on_plus(cognito):
    enforced = {"UserPoolAddOns": {"AdvancedSecurityMode": "ENFORCED"}}
    for tier in ({}, {"UserPoolTier": "ESSENTIALS"}):  # ESSENTIALS is a new pool's default
        with pytest.raises(ClientError) as refused:
            cognito.create_user_pool(PoolName=unique("essentials"), **enforced, **tier)
        assert error_of(refused) == ("FeatureUnavailableInTierException", pool_rules.THREAT_PROTECTION_MESSAGE)
    pool_id = cognito.create_user_pool(PoolName=unique("plus"), UserPoolTier="PLUS", **enforced)["UserPool"]["Id"]
    cognito.update_user_pool(UserPoolId=pool_id, **enforced)  # the pool's own plan stands when none is named
    with pytest.raises(ClientError) as refused:
        cognito.update_user_pool(UserPoolId=pool_id, UserPoolTier="ESSENTIALS", **enforced)
    assert error_of(refused)[0] == "FeatureUnavailableInTierException"
    cognito.create_user_pool(PoolName=unique("off"), UserPoolAddOns={"AdvancedSecurityMode": "OFF"})


# --- the runbook against an older pool -----------------------------------------------------------------


@pytest.fixture
def legacy_pool(cognito) -> dict[str, Any]:
    legacy = seed_legacy_pool(users=20, seed=5, region=REGION)
    return dict(cognito.describe_user_pool(UserPoolId=legacy.pool_id)["UserPool"])


def test_the_local_legacy_pool_is_an_older_pool_describing_both_fields(legacy_pool):
    assert legacy_pool["AdminCreateUserConfig"]["UnusedAccountValidityDays"] == UNUSED_ACCOUNT_VALIDITY_DAYS
    assert legacy_pool["Policies"]["PasswordPolicy"]["TemporaryPasswordValidityDays"] == 7
    assert pool_settings.deprecated_fields(legacy_pool) == [pool_settings.UNUSED_ACCOUNT_VALIDITY]


def test_without_deprecated_drops_only_the_deprecated_field():
    assert pool_settings.without_deprecated(BOTH) == {
        "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False},
        "Policies": BOTH["Policies"],
    }
    alone = {"AdminCreateUserConfig": {"UnusedAccountValidityDays": 7}}
    assert pool_settings.without_deprecated(alone) == alone  # accepted alone: kept
    only = {**BOTH, "AdminCreateUserConfig": {"UnusedAccountValidityDays": 7}}
    assert pool_settings.without_deprecated(only) == {"Policies": BOTH["Policies"]}


def test_step_2_clones_the_older_pool_and_its_plan_says_what_it_left_out(cognito, legacy_pool):
    params = step_params(legacy_pool["Id"], target_deletion_protection="INACTIVE")

    the_plan = pool.plan(cognito, params, legacy_pool, environ={})
    new_pool = pool.apply(cognito, the_plan, dry_run=False)

    dropped = [i for i in the_plan.items if i.resource == pool_settings.DEPRECATED]
    assert [(i.name, i.action) for i in dropped] == [(pool_settings.UNUSED_ACCOUNT_VALIDITY, pool_settings.DROP)]
    assert "instead of UnusedAccountValidityDays" in dropped[0].detail
    assert "UnusedAccountValidityDays" not in (new_pool.get("AdminCreateUserConfig") or {})
    assert new_pool["Policies"]["PasswordPolicy"]["TemporaryPasswordValidityDays"] == 7


def test_attach_and_detach_keep_every_setting_of_the_older_pool(cognito, legacy_pool):
    pool_id = legacy_pool["Id"]
    triggers = {"UserMigration": FUNCTION_ARN, "PreSignUp": FUNCTION_ARN}

    previous = attachment.attach_triggers(cognito, pool_id, triggers)
    attached = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    attachment.detach(cognito, pool_id, previous, dry_run=False)
    detached = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]

    assert attached["LambdaConfig"] == {**previous, **triggers}
    assert detached.get("LambdaConfig", {}) == previous
    assert without_deprecated_field(attached) == without_deprecated_field(legacy_pool)
    assert without_deprecated_field(detached) == without_deprecated_field(legacy_pool)


# --- Lambda's function states, over HTTP -----------------------------------------------------------------

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
HANDLER = """
def handler(event, context):
    event["response"] = {"userAttributes": {"email": "x@example.com", "email_verified": "true"},
                         "finalUserStatus": "CONFIRMED", "messageAction": "SUPPRESS"}
    return event
"""
FAST = {"Delay": 0.1, "MaxAttempts": 100}  # the waiters' own poll, quicker than their default for the tests
FAST_BOUNDED = {"Delay": 0.1, "MaxAttempts": 3}


@pytest.fixture
def settle(local_aws):
    """Transitions long enough that the calls made meanwhile surely meet them."""
    saved = local_aws.lambda_states.settle_s
    local_aws.lambda_states.settle_s = 1.5
    yield local_aws.lambda_states.settle_s
    local_aws.lambda_states.settle_s = saved


@pytest.fixture
def new_function(iam, lam) -> tuple[str, str]:
    role = iam.create_role(RoleName=unique("states-role"), AssumeRolePolicyDocument=json.dumps(TRUST))["Role"]["Arn"]
    name = unique("states")
    created = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="handler.handler",
        Code={"ZipFile": zip_of(HANDLER)},
        Timeout=5,
    )
    assert created["State"] == "Pending"
    return name, created["FunctionArn"]


def test_a_new_function_is_pending_refuses_updates_then_becomes_active(lam, settle, new_function):
    name, _ = new_function
    assert lam.get_function(FunctionName=name)["Configuration"]["State"] == "Pending"
    assert lam.get_function_configuration(FunctionName=name)["StateReasonCode"] == "Creating"

    with pytest.raises(ClientError) as refused:
        lam.update_function_configuration(FunctionName=name, Timeout=6)

    assert error_of(refused) == (
        "ResourceConflictException",
        "The operation cannot be performed at this time. The function is currently in the following state: Pending",
    )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)
    assert lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active"


def test_a_second_update_while_one_is_in_progress_is_a_resource_conflict(lam, settle, new_function):
    name, arn = new_function
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)

    updated = lam.update_function_code(FunctionName=name, ZipFile=zip_of(HANDLER + "\n# changed\n"))
    with pytest.raises(ClientError) as refused:
        lam.update_function_configuration(FunctionName=name, Timeout=6)

    assert updated["LastUpdateStatus"] == "InProgress"
    assert lam.get_function(FunctionName=name)["Configuration"]["LastUpdateStatus"] == "InProgress"
    assert lam.get_function(FunctionName=name)["Configuration"]["State"] == "Active"
    assert error_of(refused) == (
        "ResourceConflictException",
        f"The operation cannot be performed at this time. An update is in progress for resource: {arn}",
    )
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=FAST)
    lam.update_function_configuration(FunctionName=name, Timeout=6)  # accepted once the update is done


def test_cognito_does_not_run_a_pending_function(cognito, lam, settle, new_function):
    name, arn = new_function
    pool = cognito.create_user_pool(PoolName=unique("pending"))["UserPool"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]
    lam.add_permission(
        FunctionName=name,
        StatementId="cognito",
        Action="lambda:InvokeFunction",
        Principal="cognito-idp.amazonaws.com",
        SourceArn=pool["Arn"],
    )
    cognito.update_user_pool(UserPoolId=pool["Id"], LambdaConfig={"UserMigration": arn})
    auth = {"USERNAME": "someone", "PASSWORD": "Passw0rd!x"}

    with pytest.raises(ClientError) as refused:
        cognito.initiate_auth(ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters=auth)

    assert error_of(refused) == (
        "UnexpectedLambdaException",
        "UserMigration invocation failed due to error ResourceConflictException.",
    )
    lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=FAST)
    tokens = cognito.initiate_auth(ClientId=client["ClientId"], AuthFlow="USER_PASSWORD_AUTH", AuthParameters=auth)
    assert "AuthenticationResult" in tokens


# --- step 3 against Lambda's states ------------------------------------------------------------------------


def changed_plan(the_plan: deploy.DeployPlan) -> deploy.DeployPlan:
    """The same deployment with other code and another environment: a re-deploy updates both."""
    source = resources.files("cognito_migration.trigger").joinpath(deploy.TRIGGER_MODULE).read_text()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(deploy.TRIGGER_MODULE, source + "\n# changed\n")
    environment = {**the_plan.environment, "ATTRIBUTE_DEFAULTS": '{"name": "Changed"}'}
    return dataclasses.replace(the_plan, package=deploy.Package(buffer.getvalue()), environment=environment)


@pytest.fixture
def step_3(
    cognito, iam, lam, dynamodb, settle, legacy_pool
) -> Callable[[], tuple[Params, deploy.DeployPlan, dict[str, Any]]]:
    """Step 2 then step 3 against the legacy pool: the function created (Pending, then Active)."""

    def deploy_it() -> tuple[Params, deploy.DeployPlan, dict[str, Any]]:
        params = step_params(legacy_pool["Id"], target_deletion_protection="INACTIVE")
        new_pool = pool.apply(cognito, pool.plan(cognito, params, legacy_pool, environ={}), dry_run=False)
        the_plan = deploy.plan(iam, lam, params, legacy_pool, new_pool, dynamodb=dynamodb)
        return params, the_plan, deploy.apply(cognito, iam, lam, the_plan, params, dry_run=False, dynamodb=dynamodb)

    return deploy_it


def test_step_3_deploys_then_redeploys_changed_code_and_configuration(cognito, iam, lam, dynamodb, step_3):
    params, the_plan, first = step_3()
    name = params.migration_function_name
    changed = changed_plan(the_plan)

    again = deploy.apply(cognito, iam, lam, changed, params, dry_run=False, dynamodb=dynamodb)

    configuration = lam.get_function_configuration(FunctionName=name)
    assert configuration["CodeSha256"] == changed.package.lambda_sha256
    assert configuration["Environment"]["Variables"] == changed.environment
    assert (configuration["State"], configuration["LastUpdateStatus"]) == ("Active", "Successful")
    assert [w["after"] for w in first["function_waits"]] == ["CreateFunction"]
    assert [w["after"] for w in again["function_waits"]] == ["UpdateFunctionCode", "UpdateFunctionConfiguration"]
    for wait in first["function_waits"] + again["function_waits"]:
        assert wait["outcome"] == "ready" and 0 < wait["seconds"] < deploy.FUNCTION_WAIT_MAX_S
    assert all(c.passed for c in deploy.verify(cognito, iam, lam, changed, params, dynamodb=dynamodb))


def test_step_3_without_its_waiters_fails_as_it_would_on_aws(cognito, iam, lam, dynamodb, step_3, monkeypatch):
    params, the_plan, _ = step_3()
    monkeypatch.setattr(deploy, "wait_for_function", lambda *args, **kwargs: None)

    with pytest.raises(ClientError) as refused:
        deploy.apply(cognito, iam, lam, changed_plan(the_plan), params, dry_run=False, dynamodb=dynamodb)

    code, message = error_of(refused)
    assert code == "ResourceConflictException"
    assert message.endswith(f"An update is in progress for resource: {the_plan.function_arn}")


def test_a_function_that_never_settles_stops_step_3_boundedly_and_says_why(lam, local_aws, new_function):
    name, _ = new_function
    saved, local_aws.lambda_states.settle_s = local_aws.lambda_states.settle_s, 3600
    local_aws.lambda_states.begin(new_function[1], "Pending")  # stuck in Pending
    waits: list[dict[str, Any]] = []
    try:
        with pytest.raises(deploy.DeployError, match="not Active after CreateFunction") as stopped:
            deploy.wait_for_function(lam, "function_active_v2", name, waits, "CreateFunction", FAST_BOUNDED)
    finally:
        local_aws.lambda_states.settle_s = saved
        local_aws.lambda_states.begin(new_function[1], "Pending")  # ends at once with settle_s back

    assert "GetFunction" in str(stopped.value)
    assert waits == [
        {
            "after": "CreateFunction",
            "waiter": "function_active_v2",
            "seconds": waits[0]["seconds"],
            "outcome": "timed out",
        }
    ]


# The migration answer's username ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "aliases, typed, returned, accepted",
    [
        ([], "ALICE", None, "ALICE"),  # omitted: the user is created as typed
        ([], "ALICE", "ALICE", "ALICE"),  # the same, exactly
        ([], "ALICE", "alice", None),  # another spelling of what was typed: refused
        ([], "ally", "alice", None),  # another name, no alias: refused
        (["email"], "alice@example.com", "alice", "alice"),  # an alias was typed: the username is required
        (["preferred_username"], "ally", "alice", "alice"),  # anything may be a preferred_username
    ],
)
def test_a_migration_answer_naming_another_spelling_is_refused(cognito, aliases, typed, returned, accepted):
    from moto.cognitoidp.models import cognitoidp_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    from cognito_migration.local import cognito_triggers

    created = cognito.create_user_pool(
        PoolName=unique("rename"), UsernameConfiguration={"CaseSensitive": False}, AliasAttributes=aliases
    )["UserPool"]
    moto_pool = cognitoidp_backends[DEFAULT_ACCOUNT_ID][REGION].user_pools[created["Id"]]
    if accepted is None:
        with pytest.raises(cognito_triggers.CognitoError) as refused:
            cognito_triggers._migrated_username(moto_pool, typed, returned)
        assert refused.value.code == "UserLambdaValidationException"
        assert refused.value.message.startswith("UserMigration failed with error userAttributes.username must be")
    else:
        assert cognito_triggers._migrated_username(moto_pool, typed, returned) == accepted
