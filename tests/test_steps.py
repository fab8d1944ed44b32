"""The step modules: pure transforms on hand-made data, and the writing steps against the local AWS."""

from __future__ import annotations

import dataclasses
import io
import json
import time
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pandas as pd
import pytest

from cognito_migration import attachment, aws, deploy, pool, report, rollback
from cognito_migration.params import ParameterError, Params, load_yaml, validate
from step_support import step_params, unique

REGION = "us-east-1"
ACCOUNT = "123456789012"
OLD_POOL_ARN = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_OldPool01"
NEW_POOL_ARN = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_NewPool01"
READ_ONLY_FIELDS = (
    "Id",
    "Arn",
    "Name",
    "Status",
    "CreationDate",
    "LastModifiedDate",
    "EstimatedNumberOfUsers",
    "SmsConfigurationFailure",
    "EmailConfigurationFailure",
    "Domain",
    "CustomDomain",
    "SchemaAttributes",
    "LambdaConfig",
)


# --- pool.create_pool_input (pure) ---------------------------------------------------------------------

DESCRIBED_OLD_POOL: dict[str, Any] = {
    "Id": f"{REGION}_OldPool01",
    "Arn": OLD_POOL_ARN,
    "Name": "legacy-users",
    "Status": "Enabled",
    "CreationDate": datetime(2019, 5, 1),
    "LastModifiedDate": datetime(2024, 2, 1),
    "EstimatedNumberOfUsers": 1234,
    "SmsConfigurationFailure": "SNS sandbox",
    "EmailConfigurationFailure": "none",
    "Domain": "legacy-users",
    "CustomDomain": "auth.example.com",
    "LambdaConfig": {"PreSignUp": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:old-presignup"},
    "Policies": {
        "PasswordPolicy": {
            "MinimumLength": 12,
            "RequireUppercase": True,
            "RequireLowercase": True,
            "RequireNumbers": True,
            "RequireSymbols": False,
            "TemporaryPasswordValidityDays": 3,
        }
    },
    "AutoVerifiedAttributes": ["email"],
    "MfaConfiguration": "OPTIONAL",
    "UsernameConfiguration": {"CaseSensitive": True},
    "UserPoolTags": {"app": "legacy"},
    "DeletionProtection": "ACTIVE",
    "SchemaAttributes": [
        {
            "Name": "sub",
            "AttributeDataType": "String",
            "Mutable": False,
            "Required": True,
            "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "2048"},
        },
        {
            "Name": "email",
            "AttributeDataType": "String",
            "Mutable": True,
            "Required": False,
            "StringAttributeConstraints": {"MinLength": "0", "MaxLength": "2048"},
        },
        {"Name": "name", "AttributeDataType": "String", "Mutable": True, "Required": False},
        {
            "Name": "custom:tier",
            "AttributeDataType": "String",
            "DeveloperOnlyAttribute": False,
            "Mutable": True,
            "Required": False,
            "StringAttributeConstraints": {"MinLength": "1", "MaxLength": "32"},
        },
        {
            "Name": "custom:signup_year",
            "AttributeDataType": "Number",
            "DeveloperOnlyAttribute": False,
            "Mutable": True,
            "Required": False,
            "NumberAttributeConstraints": {"MinValue": "1990", "MaxValue": "2100"},
        },
    ],
}


@pytest.fixture(scope="module")
def offline_cognito() -> Any:
    """A client used only for its service model: it never sends a request."""
    return boto3.client("cognito-idp", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def test_create_pool_input_drops_read_only_fields_and_redeclares_custom_attributes(offline_cognito):
    params = step_params(target_required_attributes=["email", "name"])

    created = pool.create_pool_input(offline_cognito, DESCRIBED_OLD_POOL, params)

    assert not set(READ_ONLY_FIELDS) & set(created)
    assert set(created) <= pool.input_members(offline_cognito, "CreateUserPool")
    assert created["PoolName"] == params.new_pool_name
    assert created["UsernameConfiguration"] == {"CaseSensitive": False}
    assert created["Policies"] == DESCRIBED_OLD_POOL["Policies"]
    assert created["AutoVerifiedAttributes"] == ["email"]
    assert created["UserPoolTags"] == {
        "app": "legacy",
        pool.SOURCE_TAG: DESCRIBED_OLD_POOL["Id"],
        pool.ENV_TAG: "local",
    }
    schema = {a["Name"]: a for a in created["Schema"]}
    assert set(schema) == {"tier", "signup_year", "email", "name", "groups_pending"}
    assert schema["groups_pending"]["Mutable"] is True  # the trigger deletes it after the group copy
    assert schema["tier"]["StringAttributeConstraints"] == {"MinLength": "1", "MaxLength": "32"}
    assert schema["signup_year"]["AttributeDataType"] == "Number"
    assert "Required" not in schema["tier"]  # "Required custom attributes are not supported."
    assert schema["email"]["Required"] and schema["name"]["Required"]
    assert schema["email"]["StringAttributeConstraints"] == {"MinLength": "0", "MaxLength": "2048"}
    assert DESCRIBED_OLD_POOL["SchemaAttributes"][3]["Name"] == "custom:tier"  # the input is not modified


def test_create_pool_input_refuses_a_required_custom_or_unknown_attribute(offline_cognito):
    # A required custom attribute never gets this far: the parameter check refuses it (test_bad_input).
    for required, fragment in (
        (["email", "sub"], "cannot be required"),
        (["email", "nick_name"], "not a standard attribute"),
    ):
        with pytest.raises(pool.PoolError, match=fragment):
            pool.create_pool_input(
                offline_cognito, DESCRIBED_OLD_POOL, step_params(target_required_attributes=required)
            )


# --- pool.plan / apply against the local AWS -----------------------------------------------------------


@pytest.fixture
def old_pool(cognito) -> dict[str, Any]:
    """A small hand-made old pool: a custom attribute, a client with a secret, one without, three groups."""
    created = cognito.create_user_pool(
        PoolName=unique("old"),
        UsernameConfiguration={"CaseSensitive": True},
        Policies={"PasswordPolicy": {"MinimumLength": 10}},
        Schema=[
            {"Name": "email", "AttributeDataType": "String", "Mutable": True, "Required": True},
            {"Name": "tier", "AttributeDataType": "String", "Mutable": True},
        ],
    )["UserPool"]
    pool_id = created["Id"]
    cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )
    cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="mobile", ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH"])
    for name, precedence in (("admins", 1), ("editors", 10), ("viewers", 100)):
        cognito.create_group(UserPoolId=pool_id, GroupName=name, Description=f"{name} group", Precedence=precedence)
    return dict(cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"])


# Creating, re-running, dry runs, drift: tests/test_pool_deploy.py.


def test_find_new_pool_refuses_a_same_named_pool_without_the_tag(cognito, old_pool):
    params = step_params(old_pool["Id"])
    cognito.create_user_pool(PoolName=params.new_pool_name)

    with pytest.raises(pool.PoolError) as exc_info:
        pool.find_new_pool(cognito, params)

    assert str(exc_info.value).startswith(f"new_pool_name: a pool named {params.new_pool_name} exists but was not made")
    with pytest.raises(pool.PoolError):
        pool.plan(cognito, params, old_pool)


# --- deploy ---------------------------------------------------------------------------------------------


def test_build_package_is_byte_identical_across_calls():
    first, second = deploy.build_package(), deploy.build_package()

    assert first.zip_bytes == second.zip_bytes
    assert first.sha256 == second.sha256
    with zipfile.ZipFile(io.BytesIO(first.zip_bytes)) as archive:
        assert archive.namelist() == [deploy.TRIGGER_MODULE]
        assert archive.getinfo(deploy.TRIGGER_MODULE).date_time == deploy.ZIP_DATE


def test_role_policy_names_only_the_two_pools_and_no_wildcard():
    policy = deploy.role_policy(OLD_POOL_ARN, NEW_POOL_ARN, "migration")

    cognito_statements = [s for s in policy["Statement"] if any(a.startswith("cognito-idp:") for a in s["Action"])]
    assert {r for s in cognito_statements for r in s["Resource"]} == {OLD_POOL_ARN, NEW_POOL_ARN}
    assert {a for s in cognito_statements for a in s["Action"]} == set(deploy.OLD_POOL_ACTIONS) | set(
        deploy.NEW_POOL_ACTIONS
    )
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in statement["Action"])
        # Only a log group's streams may end in ":*" (the form CloudWatch Logs resources take).
        for resource in statement["Resource"]:
            assert resource != "*"
            assert (
                "*" not in resource or resource == f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/migration:*"
            )
    by_pool = {r: set(s["Action"]) for s in cognito_statements for r in s["Resource"]}
    # Alias look-ups read the old pool; only the new pool's marker is deleted.
    assert "cognito-idp:ListUsers" in by_pool[OLD_POOL_ARN] and "cognito-idp:ListUsers" not in by_pool[NEW_POOL_ARN]
    assert "cognito-idp:AdminDeleteUserAttributes" in by_pool[NEW_POOL_ARN]
    assert "cognito-idp:AdminDeleteUserAttributes" not in by_pool[OLD_POOL_ARN]


def test_role_policy_lets_the_sign_up_guard_read_its_index_table_alone():
    policy = deploy.role_policy(OLD_POOL_ARN, NEW_POOL_ARN, "migration")

    grants = [
        (a, r) for s in policy["Statement"] for a in s["Action"] if a.startswith("dynamodb:") for r in s["Resource"]
    ]
    assert grants == [("dynamodb:GetItem", f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/migration-signup-index")]


def test_role_policy_with_an_old_pool_role_may_only_assume_it():
    role_arn = "arn:aws:iam::111122223333:role/old-pool-reader"
    policy = deploy.role_policy(OLD_POOL_ARN, NEW_POOL_ARN, "migration", role_arn)

    resources = {r for s in policy["Statement"] for r in s["Resource"]}
    assert OLD_POOL_ARN not in resources
    [assume] = [s for s in policy["Statement"] if "sts:AssumeRole" in s["Action"]]
    assert assume["Action"] == ["sts:AssumeRole"] and assume["Resource"] == [role_arn]


@pytest.fixture
def pools_for_deploy(cognito, old_pool) -> tuple[Params, dict[str, Any], dict[str, Any]]:
    params = step_params(old_pool["Id"])
    new = pool.apply(cognito, pool.plan(cognito, params, old_pool), dry_run=False)
    return params, old_pool, new


def test_deploy_apply_twice_creates_one_role_function_and_permission(cognito, iam, lam, dynamodb, pools_for_deploy):
    params, old, new = pools_for_deploy

    first = deploy.plan(iam, lam, params, old, new, dynamodb=dynamodb)
    assert list(first.actions["action"]) == [
        "create",
        "fill: ~0 old-pool user(s), whole-pool read",
        "create",
        "create",
        "add",
        "create",
        "attach",
        "attach",
        "attach",
    ]
    deploy.apply(cognito, iam, lam, first, params, dry_run=False, dynamodb=dynamodb)
    new_after = cognito.describe_user_pool(UserPoolId=new["Id"])["UserPool"]
    second = deploy.plan(iam, lam, params, old, new_after, dynamodb=dynamodb)
    summary = deploy.apply(cognito, iam, lam, second, params, dry_run=False, dynamodb=dynamodb)

    roles = [r for r in aws.paginate(iam, "list_roles", "Roles") if r["RoleName"] == first.role_name]
    functions = [
        f
        for f in aws.paginate(lam, "list_functions", "Functions")
        if f["FunctionName"] == params.migration_function_name
    ]
    statements = json.loads(lam.get_policy(FunctionName=params.migration_function_name)["Policy"])["Statement"]
    assert len(roles) == 1
    assert len(functions) == 1
    assert [s["Sid"] for s in statements] == [deploy.STATEMENT_ID]
    assert second.actions.set_index("resource")["action"].to_dict() == {
        "DynamoDB table": "exists",
        "sign-up index": "fill: ~0 old-pool user(s), whole-pool read",
        "IAM role": "unchanged",
        "Lambda function": "unchanged",
        "invoke permission": "unchanged",
        "tags": "unchanged",
        "trigger UserMigration": "unchanged",
        "trigger PostAuthentication": "unchanged",
        "trigger PreSignUp": "unchanged",
    }
    lambda_config = cognito.describe_user_pool(UserPoolId=new["Id"])["UserPool"]["LambdaConfig"]
    assert lambda_config == {
        "UserMigration": summary["function_arn"],
        "PostAuthentication": summary["function_arn"],
        "PreSignUp": summary["function_arn"],
    }
    assert summary["previous_lambda_config"] == lambda_config
    assert all(check.passed for check in deploy.verify(cognito, iam, lam, second, params, dynamodb=dynamodb)), (
        deploy.verify(cognito, iam, lam, second, params, dynamodb=dynamodb)
    )


def test_deployed_permission_names_source_arn_and_source_account(cognito, iam, lam, dynamodb, pools_for_deploy):
    params, old, new = pools_for_deploy

    the_plan = deploy.plan(iam, lam, params, old, new, dynamodb=dynamodb)
    deploy.apply(cognito, iam, lam, the_plan, params, dry_run=False, dynamodb=dynamodb)

    statement = json.loads(lam.get_policy(FunctionName=params.migration_function_name)["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "cognito-idp.amazonaws.com"}
    assert statement["Action"] == "lambda:InvokeFunction"
    assert statement["Condition"] == {
        "ArnLike": {"AWS:SourceArn": new["Arn"]},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }


def test_deployed_function_environment_and_role_policy(cognito, iam, lam, dynamodb, pools_for_deploy):
    params, old, new = pools_for_deploy

    the_plan = deploy.plan(iam, lam, params, old, new, dynamodb=dynamodb)
    deploy.apply(cognito, iam, lam, the_plan, params, dry_run=False, dynamodb=dynamodb)

    config = lam.get_function_configuration(FunctionName=params.migration_function_name)
    assert config["Handler"] == deploy.HANDLER and config["Timeout"] == deploy.TIMEOUT_S
    variables = config["Environment"]["Variables"]
    assert variables["OLD_USER_POOL_ID"] == old["Id"]
    assert variables["MFA_POLICY"] == "reset_required"
    assert variables["OLD_MFA_CONFIGURATION"] == old["MfaConfiguration"]  # who refuse refuses without a sign-in
    allowed = variables["ALLOWED_ATTRIBUTES"].split(",")
    assert "custom:tier" in allowed and "email" in allowed and "sub" not in allowed
    document = iam.get_role_policy(RoleName=the_plan.role_name, PolicyName="cognito-migration")["PolicyDocument"]
    document = json.loads(document) if isinstance(document, str) else document
    assert document == deploy.role_policy(old["Arn"], new["Arn"], params.migration_function_name)


# attach_triggers against every UpdateUserPool field: tests/test_pool_deploy.py.


# --- report ---------------------------------------------------------------------------------------------


def old_users_frame() -> pd.DataFrame:
    rows = [
        # username, status, enabled, email, email_verified, phone_number, phone_number_verified
        ("alice", "CONFIRMED", True, "alice@example.com", "true", None, None),
        ("bob", "CONFIRMED", True, "bob@example.com", "true", None, None),
        ("carol", "EXTERNAL_PROVIDER", True, "carol@example.com", "true", None, None),
        ("dan", "FORCE_CHANGE_PASSWORD", True, "dan@example.com", "false", None, None),
        ("dora", "FORCE_CHANGE_PASSWORD", True, None, None, "+15550000001", "true"),
        ("erin", "UNCONFIRMED", True, "erin@example.com", "false", None, None),
        ("fred", "CONFIRMED", False, "fred@example.com", "true", None, None),
        ("Gina", "CONFIRMED", True, "gina@example.com", "true", None, None),
        ("gina", "CONFIRMED", True, "gina2@example.com", "true", None, None),
    ]
    return pd.DataFrame(
        rows,
        columns=[
            "username",
            "status",
            "enabled",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
        ],
    )


def new_users_frame() -> pd.DataFrame:
    return pd.DataFrame({"username": ["alice", "Gina", "zed"], "status": ["CONFIRMED", "CONFIRMED", "UNCONFIRMED"]})


def test_report_classify_gives_each_old_user_one_state_and_reason():
    classified = report.classify(old_users_frame(), new_users_frame(), case_sensitive=False)

    states = dict(zip(classified["username"], zip(classified["state"], classified["reason"], strict=True), strict=True))
    assert states == {
        "alice": (report.MIGRATED, ""),
        "bob": (report.NOT_YET, ""),
        "carol": (report.CANNOT, "federated user: signs in through its identity provider"),
        "dan": (report.CANNOT, "temporary password, no verified email or phone"),
        "dora": (report.NOT_YET, ""),
        "erin": (report.CANNOT, "unconfirmed: the old pool refuses the sign-in"),
        "fred": (report.CANNOT, "disabled in the old pool"),
        "Gina": (report.MIGRATED, ""),
        "gina": (report.CANNOT, "username differs only by case from a migrated user"),
    }


def test_report_case_sensitive_pool_has_no_case_collision():
    classified = report.classify(old_users_frame(), new_users_frame(), case_sensitive=True)

    assert classified.set_index("username").loc["gina", "state"] == report.NOT_YET


def test_report_summary_counts_add_up_and_sign_ups_are_counted_apart():
    old, new = old_users_frame(), new_users_frame()
    classified = report.classify(old, new, case_sensitive=False)

    totals = report.summary(classified).set_index("state")

    assert totals["users"].to_dict() == {report.MIGRATED: 2, report.NOT_YET: 2, report.CANNOT: 5}
    assert totals["users"].sum() == len(old)
    assert totals.loc[report.CANNOT, "share"] == round(100 * 5 / 9, 1)
    assert list(report.sign_ups(old, new, case_sensitive=False)["username"]) == ["zed"]
    assert report.by_reason(classified)["users"].sum() == 5
    assert all(check.passed for check in report.verify(classified, old))


def test_report_with_an_empty_new_pool_has_nobody_migrated():
    empty = pd.DataFrame(columns=["username", "status"])

    classified = report.classify(old_users_frame(), empty, case_sensitive=False)

    # Without a migrated "Gina", "gina" loses no case collision: it is simply not migrated yet.
    assert report.summary(classified).set_index("state")["users"].to_dict() == {
        report.MIGRATED: 0,
        report.NOT_YET: 5,
        report.CANNOT: 4,
    }
    assert report.sign_ups(old_users_frame(), empty, case_sensitive=False).empty


# --- params ---------------------------------------------------------------------------------------------

VALID = {"old_user_pool_id": f"{REGION}_AbC123xyz", "old_client_id": "oldclient0001"}


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"new_pool_nmae": "users-v2"}, "new_pool_nmae"),
        ({"dry_run": "false"}, "dry_run"),
        ({"mask_pii": 1}, "mask_pii"),
        ({"list_rate_limit": "15"}, "list_rate_limit"),
        ({"list_rate_limit": True}, "list_rate_limit"),
        ({"target_required_attributes": "email"}, "target_required_attributes"),
        ({"target_required_attributes": ["email", 3]}, "target_required_attributes"),
        ({"attribute_defaults": ["name"]}, "attribute_defaults"),
        ({"aws_profile": 7}, "aws_profile"),
        ({"new_pool_name": 5}, "new_pool_name"),
        ({"old_user_pool_id": "not-a-pool"}, "old_user_pool_id"),
        ({"old_user_pool_id": "eu-west-1_AbC123xyz"}, "old_user_pool_id"),
        ({"old_client_id": ""}, "old_client_id"),
        ({"region": "Europe"}, "region"),
        ({"mfa_policy": "sometimes"}, "mfa_policy"),
        ({"list_rate_limit": 0}, "list_rate_limit"),
        ({"list_rate_limit": 31}, "list_rate_limit"),
        ({"old_pool_password": "hunter2"}, "old_pool_password"),
        ({"attribute_defaults": {"nickname": "x"}}, "attribute_defaults"),
        ({"protected": "yes"}, "protected"),
        ({"protected": 0}, "protected"),
        ({"migration_function_name": "cognito-user-migration-" + "x" * 39}, "migration_function_name"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else v,
)
def test_params_validate_error_names_the_key(values, key):
    with pytest.raises(ParameterError) as exc_info:
        validate({**VALID, **values})

    assert key in str(exc_info.value)


def test_params_key_containing_password_is_refused_even_when_unknown_keys_are_allowed():
    with pytest.raises(ParameterError) as exc_info:
        validate({**VALID, "db_password": "x"}, allow_unknown=True)

    assert str(exc_info.value) == "db_password: passwords never go in parameters; remove this key"


def test_params_validate_accepts_the_limits_and_coerces():
    params = validate(
        {
            **VALID,
            "list_rate_limit": 30,
            "target_required_attributes": ["email", "name"],
            "attribute_defaults": {"name": 0},
        }
    )

    assert params.list_rate_limit == 30.0
    assert params.target_required_attributes == ("email", "name")
    assert params.attribute_defaults == {"name": "0"}


@pytest.mark.parametrize("env", ["prod", "Prod", "eu-prod-1", "prod2", "prd", "live", "production1", "dev-alice"])
def test_an_environment_is_protected_unless_named_like_a_sandbox_or_declared_unprotected(env):
    assert validate({**VALID, "env": env}).is_protected
    assert not validate({**VALID, "env": env, "protected": False}).is_protected


@pytest.mark.parametrize("env", ["local", "dev", "Test", "test2", "sandbox-3", "demo", "ci"])
def test_a_sandbox_named_environment_is_unprotected_unless_it_says_so(env):
    assert not validate({**VALID, "env": env}).is_protected
    assert validate({**VALID, "env": env, "protected": True}).is_protected


def test_params_load_yaml_malformed_and_missing_file(tmp_path: Path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("old_user_pool_id: [us-east-1_Abc\nregion: us-east-1\n")
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")

    with pytest.raises(ParameterError) as malformed:
        load_yaml(broken)
    with pytest.raises(ParameterError) as missing:
        load_yaml(tmp_path / "absent.yaml")
    with pytest.raises(ParameterError) as not_a_mapping:
        load_yaml(listed)

    assert str(malformed.value).startswith(f"{broken}: not valid YAML")
    assert str(missing.value).startswith(f"{tmp_path / 'absent.yaml'}: no such parameters file")
    assert str(not_a_mapping.value) == f"{listed}: must be a mapping of parameter names to values, got list"
    assert load_yaml(_written(tmp_path, "empty.yaml", "")) == {}


def _written(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


# --- records --------------------------------------------------------------------------------------------


# --- aws ------------------------------------------------------------------------------------------------


def test_rate_limiter_holds_the_rate():
    limiter = aws.RateLimiter(rate=10, burst=1)

    started = time.monotonic()
    for _ in range(20):
        limiter.acquire()
    elapsed = time.monotonic() - started

    # One token at once, then 19 at 10/s: 1.9 s. Generous bounds: a behaviour check, not a benchmark.
    assert 1.7 <= elapsed < 6
    assert limiter.waited_s >= 1.7


def test_rate_limiter_refuses_a_non_positive_rate():
    with pytest.raises(ValueError, match="rate must be positive"):
        aws.RateLimiter(rate=0)


def test_where_shows_the_records_folder_and_the_caller_whole(cognito, tmp_path: Path):
    # pandas cuts a cell at 50 characters: a record whose folder ends in "..." no longer says where it was written
    run_dir = tmp_path / ("a-long-project-folder-" * 4) / "local" / "manual-20261130T114500Z"
    params = step_params(run_dir=str(run_dir))
    conn = aws.connect(params)
    shown = aws.where(params, conn)

    for text in (repr(shown), shown._repr_html_()):
        assert str(run_dir) in text and conn.identity["Arn"] in text and "..." not in text


def test_paginate_returns_every_item_across_pages(cognito):
    pool_id = cognito.create_user_pool(PoolName=unique("paged"))["UserPool"]["Id"]
    names = {f"group-{i:02d}" for i in range(25)}
    for name in names:
        cognito.create_group(UserPoolId=pool_id, GroupName=name)

    class CountingLimiter(aws.RateLimiter):
        acquired = 0

        def acquire(self) -> None:
            self.acquired += 1
            super().acquire()

    limiter = CountingLimiter(rate=1000)
    groups = list(
        aws.paginate(cognito, "list_groups", "Groups", limiter, UserPoolId=pool_id, PaginationConfig={"PageSize": 10})
    )

    assert sorted(g["GroupName"] for g in groups) == sorted(names)
    assert limiter.acquired >= 3  # one per page of 10


class Killed(BaseException):
    """The process dying right after a write (a kernel restart, a laptop lid): nothing after it runs."""


class KilledAfterAttaching:
    """The Cognito client, but the step dies just after UpdateUserPool succeeds."""

    def __init__(self, cognito: Any) -> None:
        self._cognito = cognito

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cognito, name)

    def update_user_pool(self, **kwargs: Any) -> Any:
        self._cognito.update_user_pool(**kwargs)
        raise Killed


def test_a_step_3_killed_right_after_attaching_can_still_be_rolled_back(
    cognito, iam, lam, dynamodb, pools_for_deploy, tmp_path: Path
):
    params, old, new = pools_for_deploy
    params = dataclasses.replace(params, run_dir=str(tmp_path / params.env / "20260101T000000Z"))
    before = dict(new.get("LambdaConfig") or {})
    the_plan = deploy.plan(iam, lam, params, old, new, dynamodb=dynamodb)

    with pytest.raises(Killed):
        deploy.apply(KilledAfterAttaching(cognito), iam, lam, the_plan, params, dry_run=False, dynamodb=dynamodb)

    attached = cognito.describe_user_pool(UserPoolId=new["Id"])["UserPool"]["LambdaConfig"]
    assert attached.get("UserMigration"), "the write happened; the notebook never saved its summary"
    run_id, previous = rollback.saved_lambda_config(tmp_path, params.env, new["Id"])
    assert (run_id, previous) == ("20260101T000000Z", before)
    attachment.detach(cognito, new["Id"], previous, dry_run=False)
    restored = cognito.describe_user_pool(UserPoolId=new["Id"])["UserPool"].get("LambdaConfig") or {}
    assert restored == before


class MfaCallFails:
    """The Cognito client, but SetUserPoolMfaConfig fails (throttled, a network error) after CreateUserPool."""

    def __init__(self, cognito: Any) -> None:
        self._cognito = cognito

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cognito, name)

    def set_user_pool_mfa_config(self, **kwargs: Any) -> Any:
        raise RuntimeError("SetUserPoolMfaConfig failed")


def test_a_rerun_of_step_2_repairs_the_mfa_factors_a_failed_run_left_out(cognito, old_pool):
    params = step_params(old_pool["Id"], target_mfa_configuration="OPTIONAL")
    with pytest.raises(RuntimeError, match="SetUserPoolMfaConfig failed"):
        pool.apply(MfaCallFails(cognito), pool.plan(cognito, params, old_pool), dry_run=False)
    half_made = pool.find_new_pool(cognito, params)
    assert half_made is not None
    assert "SoftwareTokenMfaConfiguration" not in cognito.get_user_pool_mfa_config(UserPoolId=half_made["Id"])

    again = pool.plan(cognito, params, old_pool)
    (mfa,) = [i for i in again.items if i.resource == pool.MFA]
    assert mfa.action == "repair" and "SoftwareTokenMfaConfiguration" in mfa.detail
    pool.apply(cognito, again, dry_run=False)

    factors = cognito.get_user_pool_mfa_config(UserPoolId=half_made["Id"])
    assert factors["MfaConfiguration"] == "OPTIONAL"
    assert factors["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
    failed = [c for c in pool.verify(cognito, params, pool.plan(cognito, params, old_pool)) if not c.passed]
    assert [c for c in failed if c.severity == "blocker"] == []
