"""Steps 2 and 3 as the safe way to write to production: a faithful clone with only the declared changes,
everything around the pool, plan then apply, re-runs that change nothing, drift shown, a deployment that
loses no setting, and a rollback. Against the local AWS over HTTP; pure helpers on hand-made data."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from cognito_migration import (
    attachment,
    aws,
    chain,
    deploy,
    ownership,
    params,
    pool,
    pool_resources,
    pool_settings,
    rollback,
    scan,
    signup_index,
    user_import,
)
from cognito_migration.params import ParameterError, Params, validate
from cognito_migration.trigger.migration_trigger import GROUPS_MARKER
from step_support import step_params, unique

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tests belong to
REGION = "us-east-1"
ACCOUNT = "123456789012"
OLD_POOL_ARN = f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_OldPool01"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:old-trigger"
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
)
GOOGLE_SECRET = "google-secret-from-the-vault"
TRIGGER_MARKER = GROUPS_MARKER.removeprefix("custom:")


# --- the clone's input (pure) ---------------------------------------------------------------------------

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
    "LambdaConfig": {
        "PreSignUp": f"{FUNCTION_ARN}-presignup",
        "PreTokenGeneration": f"{FUNCTION_ARN}-tokens",
        "PreTokenGenerationConfig": {"LambdaVersion": "V2_0", "LambdaArn": f"{FUNCTION_ARN}-tokens"},
    },
    "Policies": {
        "PasswordPolicy": {
            "MinimumLength": 8,
            "RequireUppercase": True,
            "RequireLowercase": True,
            "RequireNumbers": True,
            "RequireSymbols": False,
            "TemporaryPasswordValidityDays": 3,
        }
    },
    "AutoVerifiedAttributes": ["email"],
    "AliasAttributes": ["email", "preferred_username"],
    "MfaConfiguration": "OPTIONAL",
    "EmailConfiguration": {"EmailSendingAccount": "COGNITO_DEFAULT"},
    "SmsConfiguration": {"SnsCallerArn": f"arn:aws:iam::{ACCOUNT}:role/sms", "ExternalId": "legacy"},
    "UsernameConfiguration": {"CaseSensitive": True},
    "UserPoolTags": {"app": "legacy"},
    "DeletionProtection": "ACTIVE",
    "SchemaAttributes": [
        {"Name": "sub", "AttributeDataType": "String", "Mutable": False, "Required": True},
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
    ],
}


@pytest.fixture(scope="module")
def offline_cognito() -> Any:
    """A client used only for its service model: it never sends a request."""
    return boto3.client("cognito-idp", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")


def test_clone_input_is_the_old_pool_without_read_only_fields_or_triggers(offline_cognito):
    params = step_params(target_required_attributes=["email", "name"])

    created = pool.create_pool_input(offline_cognito, DESCRIBED_OLD_POOL, params)

    assert not set(READ_ONLY_FIELDS) & set(created)
    assert set(created) <= pool.input_members(offline_cognito, "CreateUserPool")
    assert "LambdaConfig" not in created  # carry_triggers defaults to none
    assert created["PoolName"] == params.new_pool_name
    assert created["UsernameConfiguration"] == {"CaseSensitive": False}
    for key in ("Policies", "AutoVerifiedAttributes", "AliasAttributes", "MfaConfiguration", "DeletionProtection"):
        assert created[key] == DESCRIBED_OLD_POOL[key], key
    assert created["EmailConfiguration"] == DESCRIBED_OLD_POOL["EmailConfiguration"]
    assert created["SmsConfiguration"] == DESCRIBED_OLD_POOL["SmsConfiguration"]
    assert created["UserPoolTags"] == {
        "app": "legacy",
        pool.SOURCE_TAG: DESCRIBED_OLD_POOL["Id"],
        pool.ENV_TAG: "local",
    }
    schema = {a["Name"]: a for a in created["Schema"]}
    assert set(schema) - {TRIGGER_MARKER} == {"tier", "email", "name"}  # the trigger's own marker aside
    assert "Required" not in schema["tier"]  # "Required custom attributes are not supported."
    assert schema["email"]["Required"] and schema["email"]["StringAttributeConstraints"]["MaxLength"] == "2048"
    assert DESCRIBED_OLD_POOL["SchemaAttributes"][3]["Name"] == "custom:tier"  # the input is not modified


def test_clone_input_applies_every_declared_change(offline_cognito):
    params = step_params(
        target_username_attributes=["email"],
        target_alias_attributes=[],
        target_custom_attributes={"legacy_id": "String", "joined": "Number"},
        target_mfa_configuration="ON",
        target_policies={"PasswordPolicy": {"MinimumLength": 12, "RequireSymbols": True}},
        target_email_configuration={"EmailSendingAccount": "DEVELOPER", "From": "no-reply@example.com"},
        target_sms_configuration={"ExternalId": "users-v2"},
        target_deletion_protection="INACTIVE",
        carry_triggers=["PreTokenGeneration"],
    )

    created = pool.create_pool_input(offline_cognito, DESCRIBED_OLD_POOL, params)

    assert created["UsernameAttributes"] == ["email"] and "AliasAttributes" not in created
    schema = {a["Name"]: a for a in created["Schema"]}
    assert schema["legacy_id"] == {"Name": "legacy_id", "AttributeDataType": "String", "Mutable": True}
    assert schema["joined"]["AttributeDataType"] == "Number" and "tier" in schema
    assert created["MfaConfiguration"] == "ON"
    policy = created["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] == 12 and policy["RequireSymbols"] is True
    assert policy["RequireUppercase"] is True and policy["TemporaryPasswordValidityDays"] == 3  # the rest kept
    assert created["EmailConfiguration"] == {"EmailSendingAccount": "DEVELOPER", "From": "no-reply@example.com"}
    assert created["SmsConfiguration"] == {"SnsCallerArn": f"arn:aws:iam::{ACCOUNT}:role/sms", "ExternalId": "users-v2"}
    assert created["DeletionProtection"] == "INACTIVE"
    # A carried PreTokenGeneration brings its V2 configuration; PreSignUp stays behind.
    assert created["LambdaConfig"] == {
        k: v for k, v in DESCRIBED_OLD_POOL["LambdaConfig"].items() if k.startswith("PreTokenGeneration")
    }


def test_clone_refuses_required_custom_unknown_or_existing_attributes(offline_cognito):
    for overrides, fragment in (
        # (a required custom attribute is refused earlier, by the parameter check: test_bad_input)
        ({"target_required_attributes": ["email", "sub"]}, "cannot be required"),
        ({"target_required_attributes": ["email", "nick_name"]}, "not a standard attribute"),
        ({"target_custom_attributes": {"tier": "String"}}, "target_custom_attributes: tier already exist"),
    ):
        with pytest.raises(pool.PoolError, match=fragment):
            pool.create_pool_input(offline_cognito, DESCRIBED_OLD_POOL, step_params(**overrides))


def test_stronger_password_policy_is_a_warning_row():
    old = DESCRIBED_OLD_POOL["Policies"]
    new = pool_settings.merged(old, {"PasswordPolicy": {"MinimumLength": 12, "RequireSymbols": True}})

    items = pool_settings.policy_items({"Policies": old}, {"Policies": new})

    assert pool_settings.stronger_password_policy(old, new) == ["MinimumLength 8 -> 12", "RequireSymbols"]
    assert [(i.resource, i.action) for i in items] == [("password policy", "warn")]
    assert "migrated users keep passwords" in items[0].detail
    assert pool_settings.policy_items({"Policies": old}, {"Policies": old}) == []


def test_old_triggers_are_carried_or_dropped_by_explicit_choice(offline_cognito):
    params = step_params(carry_triggers=["PreTokenGeneration", "CustomMessage"])
    created = pool.create_pool_input(offline_cognito, DESCRIBED_OLD_POOL, params)

    rows = {i.name: i for i in pool_settings.trigger_items(DESCRIBED_OLD_POOL, created, params)}

    assert rows["PreSignUp"].action == "drop" and "not carried" in rows["PreSignUp"].detail
    assert rows["PreTokenGeneration"].action == "carry" and "invoke" in rows["PreTokenGeneration"].detail
    assert rows["CustomMessage"].action == "warn"  # asked for, but the old pool has none
    default = pool_settings.trigger_items(DESCRIBED_OLD_POOL, {}, step_params())
    assert {i.action for i in default} == {"drop"}
    assert [i.action for i in pool_settings.trigger_items({}, {}, step_params())] == ["none"]


def test_mfa_input_keeps_the_old_factors_and_turns_totp_on_when_mfa_is_declared_without_one():
    accepted = {"SmsMfaConfiguration", "SoftwareTokenMfaConfiguration", "EmailMfaConfiguration", "MfaConfiguration"}
    old = {
        "MfaConfiguration": "OPTIONAL",
        "SmsMfaConfiguration": {"SmsAuthenticationMessage": "{####}", "SmsConfiguration": {"SnsCallerArn": "a"}},
        "SoftwareTokenMfaConfiguration": {"Enabled": True},
    }

    kept = pool_settings.mfa_input(accepted, old, step_params(), {"SnsCallerArn": "b"})
    declared = pool_settings.mfa_input(
        accepted, {"MfaConfiguration": "OFF"}, step_params(target_mfa_configuration="ON"), None
    )

    assert kept["MfaConfiguration"] == "OPTIONAL" and kept["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
    assert kept["SmsMfaConfiguration"]["SmsConfiguration"] == {"SnsCallerArn": "b"}  # the new pool's SMS role
    assert declared == {"MfaConfiguration": "ON", "SoftwareTokenMfaConfiguration": {"Enabled": True}}


@pytest.mark.parametrize(
    ("listed", "expected"),
    [
        (["ALLOW_USER_SRP_AUTH"], ["ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"]),
        ([], ["ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH", "ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH"]),
        (
            ["ADMIN_NO_SRP_AUTH"],
            [
                "ALLOW_ADMIN_USER_PASSWORD_AUTH",
                "ALLOW_REFRESH_TOKEN_AUTH",
                "ALLOW_USER_PASSWORD_AUTH",
                "ALLOW_USER_SRP_AUTH",
            ],
        ),
    ],
    ids=["allow-names", "none-listed-means-the-defaults", "legacy-names"],
)
def test_client_flows_keep_what_the_old_client_allowed_and_add_the_password_flow(listed, expected):
    assert pool_resources.auth_flows({"ExplicitAuthFlows": listed}) == expected


def test_client_rows_say_what_a_reset_required_user_is_answered_and_what_the_app_must_do(offline_cognito):
    old = [
        {"ClientId": "w", "ClientName": "web", "PreventUserExistenceErrors": "ENABLED"},
        {"ClientId": "m", "ClientName": "mobile"},  # LEGACY: the API's default
    ]
    created = {i.name: i for i in pool_resources.client_items(offline_cognito, old, [], set())}
    existing = {**old[0], "ClientId": "new-w", "ExplicitAuthFlows": pool_resources.auth_flows(old[0])}
    [exists] = pool_resources.client_items(offline_cognito, old[:1], [existing], set())

    assert created["web"].wanted["PreventUserExistenceErrors"] == "ENABLED"  # copied as the old client had it
    for row in (created["web"], exists):
        assert "ENABLED" in row.detail and "NotAuthorizedException" in row.detail
        assert "offer forgot-password on NotAuthorizedException" in row.detail
    assert exists.action == "exists" and exists.detail.startswith("new-w; ")
    assert "PasswordResetRequiredException" in created["mobile"].detail and "LEGACY" in created["mobile"].detail


def test_identity_provider_secret_comes_from_the_environment_or_is_a_manual_step():
    old = [
        {
            "ProviderName": "Google",
            "ProviderType": "Google",
            "ProviderDetails": {"client_id": "cid", "authorize_scopes": "email", "authorize_url": "computed"},
            "AttributeMapping": {"email": "email"},
        },
        {"ProviderName": "Corp", "ProviderType": "SAML", "ProviderDetails": {"MetadataURL": "https://idp/m"}},
        {"ProviderName": "Odd", "ProviderType": "Future", "ProviderDetails": {}},
    ]
    variable = pool_resources.secret_variable("Google", "client_secret")

    without = {i.name: i for i in pool_resources.provider_items(old, [], environ={})}
    with_secret = {i.name: i for i in pool_resources.provider_items(old, [], environ={variable: GOOGLE_SECRET})}

    assert variable == "COGNITO_MIGRATION_IDP_GOOGLE_CLIENT_SECRET"
    assert without["Google"].action == "manual" and variable in without["Google"].detail
    assert without["Corp"].action == "create"  # SAML metadata carries no secret
    assert without["Odd"].action == "manual"
    google = with_secret["Google"]
    assert google.action == "create" and google.secrets == (("client_secret", variable),)
    assert google.wanted["ProviderDetails"] == {"client_id": "cid", "authorize_scopes": "email"}
    assert GOOGLE_SECRET not in repr(google) + google.detail  # read only when the provider is created


@pytest.mark.parametrize(
    ("values", "key"),
    [
        ({"target_username_attributes": ["email"], "target_alias_attributes": ["email"]}, "target_alias_attributes"),
        ({"target_username_attributes": ["preferred_username"]}, "target_username_attributes"),
        ({"target_alias_attributes": "email"}, "target_alias_attributes"),
        ({"target_custom_attributes": {"custom:x": "String"}}, "target_custom_attributes"),
        ({"target_custom_attributes": {"x": "Text"}}, "target_custom_attributes"),
        ({"target_mfa_configuration": "REQUIRED"}, "target_mfa_configuration"),
        ({"target_auto_verified_attributes": ["name"]}, "target_auto_verified_attributes"),
        ({"target_policies": {"PasswordPolicy": {"MinimumLength": 3}}}, "MinimumLength"),
        ({"target_policies": {"PasswordPolicy": {"RequireSymbols": "yes"}}}, "RequireSymbols"),
        ({"target_policies": {"Password": {}}}, "target_policies"),
        ({"target_email_configuration": {"Sender": "x"}}, "target_email_configuration"),
        ({"target_sms_configuration": {"Role": "x"}}, "target_sms_configuration"),
        ({"target_deletion_protection": "ON"}, "target_deletion_protection"),
        ({"carry_triggers": ["UserMigration"]}, "carry_triggers"),
        ({"carry_triggers": "PreSignUp"}, "carry_triggers"),
        ({"new_domain_prefix": "My_Prefix"}, "new_domain_prefix"),
        ({"new_domain_prefix": "cognito-users"}, "new_domain_prefix"),
    ],
    ids=lambda v: next(iter(v)) if isinstance(v, dict) else v,
)
def test_new_pool_parameter_errors_name_the_key(values, key):
    with pytest.raises(ParameterError) as exc_info:
        validate({"old_user_pool_id": f"{REGION}_AbC123xyz", "old_client_id": "c", **values})

    assert key in str(exc_info.value)


def test_new_pool_parameters_default_to_the_old_pool():
    params = validate({"old_user_pool_id": f"{REGION}_AbC123xyz", "old_client_id": "c"})

    assert params.target_username_attributes is None and params.target_alias_attributes is None
    assert params.target_mfa_configuration is None and params.target_deletion_protection is None
    assert params.target_policies == {} and params.carry_triggers == () and params.new_domain_prefix is None


# --- a rich old pool in the local AWS --------------------------------------------------------------------


@pytest.fixture
def old_pool(cognito) -> dict[str, Any]:
    """An old pool with something of everything step 2 copies."""
    pool_id = cognito.create_user_pool(
        PoolName=unique("old"),
        UsernameConfiguration={"CaseSensitive": True},
        AliasAttributes=["email"],
        Policies={"PasswordPolicy": {"MinimumLength": 10, "RequireSymbols": False}},
        MfaConfiguration="OPTIONAL",
        Schema=[
            {"Name": "email", "AttributeDataType": "String", "Mutable": True, "Required": True},
            {"Name": "tier", "AttributeDataType": "String", "Mutable": True},
        ],
        LambdaConfig={"CustomMessage": f"{FUNCTION_ARN}-messages"},
    )["UserPool"]["Id"]
    cognito.set_user_pool_mfa_config(
        UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True}, MfaConfiguration="OPTIONAL"
    )
    cognito.create_user_pool_domain(Domain=unique("old-login"), UserPoolId=pool_id)
    api = "https://api.example.com"
    cognito.create_resource_server(
        UserPoolId=pool_id,
        Identifier=api,
        Name="orders api",
        Scopes=[{"ScopeName": "read", "ScopeDescription": "read orders"}],
    )
    cognito.create_identity_provider(
        UserPoolId=pool_id,
        ProviderName="Google",
        ProviderType="Google",
        ProviderDetails={"client_id": "google-client", "client_secret": "old-secret", "authorize_scopes": "email"},
        AttributeMapping={"email": "email"},
    )
    cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="web",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        AccessTokenValidity=30,
        IdTokenValidity=45,
        RefreshTokenValidity=10,
        TokenValidityUnits={"AccessToken": "minutes", "IdToken": "minutes", "RefreshToken": "days"},
        CallbackURLs=["https://app.example.com/callback"],
        LogoutURLs=["https://app.example.com/bye"],
        AllowedOAuthFlows=["code"],
        AllowedOAuthScopes=["openid", "email", f"{api}/read"],
        AllowedOAuthFlowsUserPoolClient=True,
        SupportedIdentityProviders=["COGNITO", "Google"],
        ReadAttributes=["email", "custom:tier"],
        WriteAttributes=["email"],
    )
    cognito.create_user_pool_client(UserPoolId=pool_id, ClientName="mobile")
    for name, precedence in (("admins", 1), ("editors", 10), ("viewers", 100)):
        cognito.create_group(
            UserPoolId=pool_id,
            GroupName=name,
            Description=f"{name} group",
            Precedence=precedence,
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}",
        )
    return dict(cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"])


def account_counts(cognito: Any, iam: Any, lam: Any) -> dict[str, int]:
    """Everything steps 2 and 3 could create, counted over the whole local account."""
    pools = list(aws.paginate(cognito, "list_user_pools", "UserPools", PaginationConfig={"PageSize": 60}))
    functions = list(aws.paginate(lam, "list_functions", "Functions"))
    statements = 0
    for function in functions:
        try:
            statements += len(json.loads(lam.get_policy(FunctionName=function["FunctionName"])["Policy"])["Statement"])
        except ClientError:
            pass  # a function without a resource policy has no statement to count
    return {
        "pools": len(pools),
        "clients": sum(len(scan.list_clients(cognito, p["Id"])) for p in pools),
        "groups": sum(len(scan.list_groups(cognito, p["Id"])) for p in pools),
        "domains": sum(1 for p in pools if cognito.describe_user_pool(UserPoolId=p["Id"])["UserPool"].get("Domain")),
        "roles": len(list(aws.paginate(iam, "list_roles", "Roles"))),
        "functions": len(functions),
        "permission statements": statements,
        "tables": len(
            boto3.client("dynamodb", region_name=REGION, endpoint_url=lam.meta.endpoint_url).list_tables()["TableNames"]
        ),
    }


def clients_of(cognito: Any, pool_id: str) -> dict[str, dict[str, Any]]:
    return {c["ClientName"]: c for c in scan.list_clients(cognito, pool_id)}


def actions_of(the_plan: pool.Plan) -> dict[tuple[str, str], str]:
    return {(i.resource, i.name): i.action for i in the_plan.items}


def rich_params(old: dict[str, Any], **overrides: Any) -> Params:
    return step_params(
        old["Id"], new_domain_prefix=unique("users-v2-login"), target_deletion_protection="INACTIVE", **overrides
    )


def test_dry_run_plans_everything_and_writes_nothing(cognito, iam, lam, old_pool):
    params = rich_params(old_pool, dry_run=True)
    before = account_counts(cognito, iam, lam)

    the_plan = pool.plan(cognito, params, old_pool, environ={})
    result = pool.apply(cognito, the_plan, dry_run=True)

    assert result == {}
    assert account_counts(cognito, iam, lam) == before
    table = the_plan.actions
    assert list(table.columns) == ["resource", "name", "action", "detail"]
    assert set(table[table["action"] == "create"]["resource"]) == {
        "user pool",
        "MFA",
        "domain",
        "resource server",
        "app client",
        "group",
    }
    assert actions_of(the_plan)[("identity provider", "Google")] == "manual"  # no secret supplied
    assert actions_of(the_plan)[("old pool trigger", "CustomMessage")] == "drop"
    # needing attention: the identity provider's secret, and the old pool's own lack of an auto-verified attribute
    attention = the_plan.attention
    assert set(attention["action"]) == {"manual", "warn"}
    assert list(attention.loc[attention["action"] == "warn", "resource"]) == ["auto-verified attributes"]
    assert [c.severity for c in pool.verify(cognito, params, the_plan)] == ["info"]


def test_apply_clones_pool_and_everything_around_it_and_a_rerun_changes_nothing(cognito, iam, lam, old_pool):
    params = rich_params(old_pool)
    environ = {pool_resources.secret_variable("Google", "client_secret"): GOOGLE_SECRET}

    first = pool.plan(cognito, params, old_pool, environ=environ)
    new = pool.apply(cognito, first, dry_run=False, environ=environ)

    assert new["Name"] == params.new_pool_name and new["UserPoolTags"][pool.SOURCE_TAG] == old_pool["Id"]
    assert new["AliasAttributes"] == ["email"] and new["UsernameConfiguration"] == {"CaseSensitive": False}
    assert new["DeletionProtection"] == "INACTIVE" and new["Domain"] == params.new_domain_prefix
    assert "LambdaConfig" not in new or not new["LambdaConfig"]  # the old CustomMessage was not carried
    mfa = cognito.get_user_pool_mfa_config(UserPoolId=new["Id"])
    assert mfa["MfaConfiguration"] == "OPTIONAL" and mfa["SoftwareTokenMfaConfiguration"] == {"Enabled": True}
    old_clients, new_clients = clients_of(cognito, old_pool["Id"]), clients_of(cognito, new["Id"])
    web, old_web = new_clients["web"], old_clients["web"]
    for key in (
        "AccessTokenValidity",
        "IdTokenValidity",
        "RefreshTokenValidity",
        "TokenValidityUnits",
        "CallbackURLs",
        "LogoutURLs",
        "AllowedOAuthFlows",
        "AllowedOAuthScopes",
        "AllowedOAuthFlowsUserPoolClient",
        "SupportedIdentityProviders",
        "ReadAttributes",
        "WriteAttributes",
    ):
        assert web[key] == old_web[key], key
    assert web["ClientSecret"] and web["ClientSecret"] != old_web["ClientSecret"]
    assert "ClientSecret" not in new_clients["mobile"]
    assert "ALLOW_USER_PASSWORD_AUTH" in web["ExplicitAuthFlows"] and "ALLOW_USER_SRP_AUTH" in web["ExplicitAuthFlows"]
    assert set(pool_resources.DEFAULT_FLOWS) <= set(new_clients["mobile"]["ExplicitAuthFlows"])
    groups = {
        g["GroupName"]: (g["Description"], g["Precedence"], g["RoleArn"]) for g in scan.list_groups(cognito, new["Id"])
    }
    assert groups["admins"] == ("admins group", 1, f"arn:aws:iam::{ACCOUNT}:role/admins") and len(groups) == 3
    servers = cognito.list_resource_servers(UserPoolId=new["Id"], MaxResults=50)["ResourceServers"]
    assert [(s["Identifier"], s["Scopes"]) for s in servers] == [
        ("https://api.example.com", [{"ScopeName": "read", "ScopeDescription": "read orders"}])
    ]
    google = cognito.describe_identity_provider(UserPoolId=new["Id"], ProviderName="Google")["IdentityProvider"]
    assert google["ProviderDetails"]["client_secret"] == GOOGLE_SECRET  # from the environment, not the old pool
    assert google["AttributeMapping"] == {"email": "email"}
    assert GOOGLE_SECRET not in first.actions.to_csv() + repr(first)
    checks = {c.name: c for c in pool.verify(cognito, params, first)}
    assert all(c.passed for c in checks.values() if c.severity == "blocker"), checks
    assert checks["no drift"].passed and checks["no manual steps left"].passed

    counts = account_counts(cognito, iam, lam)
    second = pool.plan(cognito, params, old_pool, environ=environ)
    again = pool.apply(cognito, second, dry_run=False, environ=environ)

    assert again["Id"] == new["Id"]
    assert second.changes == 0
    # A re-run writes nothing; its only warning is the old pool's own: it auto-verifies nothing.
    rows = second.actions
    assert set(rows["action"]) <= {"exists", "drop", "warn"}, rows
    assert list(rows.loc[rows["action"] == "warn", "resource"]) == ["auto-verified attributes"], rows
    assert account_counts(cognito, iam, lam) == counts


def test_drift_is_shown_and_never_overwritten(cognito, iam, lam, old_pool):
    params = rich_params(old_pool)
    new = pool.apply(cognito, pool.plan(cognito, params, old_pool, environ={}), dry_run=False, environ={})
    web = clients_of(cognito, new["Id"])["web"]
    changed_client = {k: v for k, v in web.items() if k in pool.input_members(cognito, "UpdateUserPoolClient")}
    changed_client["CallbackURLs"] = ["https://elsewhere.example.com/callback"]
    cognito.update_user_pool_client(**changed_client)
    cognito.update_group(UserPoolId=new["Id"], GroupName="editors", Description="changed by hand", Precedence=10)

    the_plan = pool.plan(cognito, params, old_pool, environ={})
    pool.apply(cognito, the_plan, dry_run=False, environ={})

    drift = {(i.resource, i.name): i.detail for i in the_plan.rows("drift")}
    assert set(drift) == {("app client", "web"), ("group", "editors")}
    assert "CallbackURLs" in drift[("app client", "web")] and "Description" in drift[("group", "editors")]
    assert clients_of(cognito, new["Id"])["web"]["CallbackURLs"] == ["https://elsewhere.example.com/callback"]
    assert cognito.get_group(UserPoolId=new["Id"], GroupName="editors")["Group"]["Description"] == "changed by hand"
    checks = {c.name: c for c in pool.verify(cognito, params, the_plan)}
    assert not checks["no drift"].passed and checks["no drift"].severity == "warning"
    assert "editors" in checks["no drift"].detail


def test_declared_changes_reach_the_created_pool(cognito, old_pool):
    params = rich_params(
        old_pool,
        target_username_attributes=["email"],
        target_alias_attributes=[],
        target_custom_attributes={"legacy_sub": "String"},
        target_policies={"PasswordPolicy": {"MinimumLength": 14}},
        target_mfa_configuration="OFF",
        carry_triggers=["CustomMessage"],
    )

    the_plan = pool.plan(cognito, params, old_pool, environ={})
    new = pool.apply(cognito, the_plan, dry_run=False, environ={})

    assert new["UsernameAttributes"] == ["email"] and not new.get("AliasAttributes")
    assert {"custom:legacy_sub", "custom:tier"} <= {a["Name"] for a in new["SchemaAttributes"]}
    assert new["Policies"]["PasswordPolicy"]["MinimumLength"] == 14
    assert cognito.get_user_pool_mfa_config(UserPoolId=new["Id"])["MfaConfiguration"] == "OFF"
    assert new["LambdaConfig"] == {"CustomMessage": f"{FUNCTION_ARN}-messages"}
    assert actions_of(the_plan)[("old pool trigger", "CustomMessage")] == "carry"
    assert actions_of(the_plan)[("password policy", "PasswordPolicy")] == "warn"
    checks = {c.name: c for c in pool.verify(cognito, params, the_plan)}
    assert checks["sign-in attributes as declared"].passed and checks["custom attributes present"].passed
    assert not checks["no plan warnings"].passed  # the stronger policy stays visible


def test_declared_auto_verified_attributes_reach_the_pool_and_the_plan_says_so(cognito, old_pool):
    both = rich_params(old_pool, target_auto_verified_attributes=["email", "phone_number"])
    the_plan = pool.plan(cognito, both, old_pool, environ={})

    assert sorted(the_plan.pool_input["AutoVerifiedAttributes"]) == ["email", "phone_number"]
    (row,) = [i for i in the_plan.items if i.resource == "auto-verified attributes"]
    assert row.action == "change" and "declared: target_auto_verified_attributes" in row.detail

    none = pool.plan(cognito, rich_params(old_pool, target_auto_verified_attributes=[]), old_pool, environ={})
    assert "AutoVerifiedAttributes" not in none.pool_input
    (warn,) = [i for i in none.items if i.resource == "auto-verified attributes"]
    assert warn.action == "warn" and "Cognito starts no user import job" in warn.detail
    carried = pool.plan(cognito, rich_params(old_pool), old_pool, environ={})
    rows = [i for i in carried.items if i.resource == "auto-verified attributes"]
    if old_pool.get("AutoVerifiedAttributes"):
        assert not rows, "nothing declared, nothing shown"
    else:  # an old pool without one: the copy inherits the problem, and the plan says so
        assert [r.action for r in rows] == ["warn"]


def test_a_domain_prefix_held_by_another_pool_is_refused(cognito, old_pool):
    taken = unique("taken")
    other = cognito.create_user_pool(PoolName=unique("other"))["UserPool"]["Id"]
    cognito.create_user_pool_domain(Domain=taken, UserPoolId=other)

    with pytest.raises(pool.PoolError, match=f"new_domain_prefix: {taken} belongs to pool {other}"):
        pool.plan(cognito, step_params(old_pool["Id"], new_domain_prefix=taken), old_pool, environ={})


def test_find_new_pool_refuses_a_same_named_pool_without_the_tag(cognito, old_pool):
    params = step_params(old_pool["Id"])
    cognito.create_user_pool(PoolName=params.new_pool_name)

    with pytest.raises(pool.PoolError, match=f"a pool named {params.new_pool_name} exists but was not made"):
        pool.plan(cognito, params, old_pool)


# --- step 3 -----------------------------------------------------------------------------------------------


@pytest.fixture
def deployed(cognito, iam, lam, dynamodb, old_pool) -> tuple[Params, dict[str, Any], dict[str, Any], dict[str, Any]]:
    params = rich_params(old_pool)
    new = pool.apply(cognito, pool.plan(cognito, params, old_pool, environ={}), dry_run=False, environ={})
    the_plan = deploy.plan(iam, lam, params, old_pool, new, dynamodb=dynamodb)
    summary = deploy.apply(cognito, iam, lam, the_plan, params, dry_run=False, dynamodb=dynamodb)
    return params, old_pool, new, summary


def test_deploy_dry_run_writes_nothing(cognito, iam, lam, dynamodb, old_pool):
    params = rich_params(old_pool)
    new = pool.apply(cognito, pool.plan(cognito, params, old_pool, environ={}), dry_run=False, environ={})
    before = account_counts(cognito, iam, lam)

    the_plan = deploy.plan(iam, lam, params, old_pool, new, dynamodb=dynamodb)
    summary = deploy.apply(cognito, iam, lam, the_plan, params, dry_run=True, dynamodb=dynamodb)

    assert account_counts(cognito, iam, lam) == before
    assert cognito.describe_user_pool(UserPoolId=new["Id"])["UserPool"].get("LambdaConfig", {}) == {}
    assert summary["code_sha256"] == deploy.build_package().sha256 and summary["dry_run"] is True
    assert set(the_plan.actions["action"][:5]) == {"create", "fill: ~0 old-pool user(s), whole-pool read", "add"}
    assert summary["signup_index"] == {"table": the_plan.index_name, "exists": False}


def test_deploy_rerun_changes_nothing_and_records_the_attachment(cognito, iam, lam, dynamodb, deployed):
    params, old, new, summary = deployed
    counts = account_counts(cognito, iam, lam)
    attached = cognito.describe_user_pool(UserPoolId=new["Id"])["UserPool"]

    second = deploy.plan(iam, lam, params, old, attached, dynamodb=dynamodb)
    again = deploy.apply(cognito, iam, lam, second, params, dry_run=False, dynamodb=dynamodb)

    index_rows = second.actions["resource"].isin(["DynamoDB table", "sign-up index"])
    assert set(second.actions["action"][~index_rows]) == {"unchanged"}, second.actions
    assert summary["signup_index"]["created_table"] and not again["signup_index"]["created_table"]
    assert again["signup_index"]["written"] == 0  # the key was kept: nothing is re-keyed
    assert account_counts(cognito, iam, lam) == counts
    assert summary["previous_lambda_config"] == {} and summary["lambda_config"] == attached["LambdaConfig"]
    assert summary["lambda_config"]["UserMigration"] == summary["function_arn"]
    assert again["previous_lambda_config"] == again["lambda_config"] == attached["LambdaConfig"]
    assert summary["code_sha256"] == deploy.build_package().sha256 and summary["role_retries"] == []
    statement = json.loads(lam.get_policy(FunctionName=params.migration_function_name)["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "cognito-idp.amazonaws.com"}
    assert statement["Condition"] == {
        "ArnLike": {"AWS:SourceArn": new["Arn"]},
        "StringEquals": {"AWS:SourceAccount": ACCOUNT},
    }
    assert all(c.passed for c in deploy.verify(cognito, iam, lam, second, params, dynamodb=dynamodb))


def test_a_new_role_not_yet_assumable_is_retried_visibly_and_boundedly(iam, lam, cognito, old_pool, dynamodb):
    params = rich_params(old_pool)
    new = pool.apply(cognito, pool.plan(cognito, params, old_pool, environ={}), dry_run=False, environ={})
    the_plan = deploy.plan(iam, lam, params, old_pool, new, dynamodb=dynamodb)
    role_name = deploy.role_name_for(params.migration_function_name)
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{role_name}"
    # Lambda refuses a role it cannot assume yet; here the role appears 1.5 s after the first attempt.
    late = threading.Timer(1.5, lambda: deploy.ensure_role(iam, role_name, the_plan.policy))
    retries: list[dict[str, Any]] = []

    late.start()
    function_arn = deploy.ensure_function(lam, params.migration_function_name, role_arn, the_plan, retries)
    late.join()

    assert function_arn.endswith(params.migration_function_name)
    assert [r["attempt"] for r in retries] == [1, 2] and retries[0]["waited_s"] == deploy.ROLE_RETRY_DELAYS_S[0]
    assert "cannot be assumed" in retries[0]["error"]

    def never_assumable() -> None:
        raise ClientError(
            {"Error": {"Code": "InvalidParameterValueException", "Message": "The role cannot be assumed"}}, "Create"
        )

    bounded: list[dict[str, Any]] = []
    with pytest.raises(deploy.DeployError, match="still not assumable by Lambda after 3 attempts"):
        deploy._retry_while_role_propagates(never_assumable, bounded, delays=(0.01, 0.01))
    assert len(bounded) == 2


def another_old_pool(cognito: Any) -> dict[str, Any]:
    pool_id = cognito.create_user_pool(PoolName=unique("old-prodx"), AliasAttributes=["email"])["UserPool"]["Id"]
    return dict(cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"])


def index_client() -> Any:
    """A DynamoDB client of the local AWS (the sign-up index), for tests that do not take the fixture."""
    return boto3.client("dynamodb", region_name=REGION)


def deploy_env(cognito: Any, iam: Any, lam: Any, params: Params, old: dict[str, Any]) -> dict[str, Any]:
    """Steps 2 and 3 for one environment; the new pool as step 3 left it."""
    new = pool.apply(cognito, pool.plan(cognito, params, old, environ={}), dry_run=False, environ={})
    index = index_client()
    deploy.apply(
        cognito, iam, lam, deploy.plan(iam, lam, params, old, new, dynamodb=index), params, False, dynamodb=index
    )
    return dict(cognito.describe_user_pool(UserPoolId=new["Id"])["UserPool"])


def test_step_3_refuses_to_take_over_the_function_of_another_environment(cognito, iam, lam, old_pool):
    shared = unique("migration")  # both environments keep the same migration_function_name
    staging = rich_params(old_pool, env="stagingx", migration_function_name=shared)
    staging_new = deploy_env(cognito, iam, lam, staging, old_pool)
    prod_old = another_old_pool(cognito)
    prod = rich_params(prod_old, env="prodx", migration_function_name=shared)
    prod_new = pool.apply(cognito, pool.plan(cognito, prod, prod_old, environ={}), dry_run=False, environ={})
    before = lam.get_function_configuration(FunctionName=shared)

    the_plan = deploy.plan(iam, lam, prod, prod_old, prod_new, dynamodb=index_client())

    actions = the_plan.actions.set_index("resource")["action"]
    assert actions["Lambda function"] == "refuse: serves env stagingx; set another migration_function_name"
    for dry_run in (True, False):
        with pytest.raises(deploy.DeployError) as refused:
            deploy.apply(cognito, iam, lam, the_plan, prod, dry_run=dry_run, dynamodb=index_client())
        message = str(refused.value)
        assert message.startswith(f"migration_function_name: the function {shared} already serves env stagingx")
        assert old_pool["Id"] in message and "choose another migration_function_name for this environment" in message
    after = lam.get_function_configuration(FunctionName=shared)
    assert after["Environment"] == before["Environment"] and after["CodeSha256"] == before["CodeSha256"]
    assert cognito.describe_user_pool(UserPoolId=prod_new["Id"])["UserPool"].get("LambdaConfig", {}) == {}
    tags = ownership.function_tags(lam, before["FunctionArn"])
    assert tags == {
        deploy.OWNER_TAG: "trigger",
        pool.ENV_TAG: "stagingx",
        pool.SOURCE_TAG: old_pool["Id"],
        ownership.TARGET_TAG: staging_new["Id"],
    }
    assert ownership.role_tags(iam, deploy.role_name_for(shared)) == tags


def test_step_3_tags_a_function_deployed_before_the_tags_and_refuses_it_to_another_old_pool(
    cognito, iam, lam, old_pool
):
    params = rich_params(old_pool, env="stagingx")
    new = deploy_env(cognito, iam, lam, params, old_pool)
    arn = lam.get_function_configuration(FunctionName=params.migration_function_name)["FunctionArn"]
    added = [pool.ENV_TAG, pool.SOURCE_TAG, ownership.TARGET_TAG]
    lam.untag_resource(Resource=arn, TagKeys=added)  # as deployed by a version without them

    again = deploy.plan(iam, lam, params, old_pool, new, dynamodb=index_client())
    other_old = another_old_pool(cognito)
    other = deploy.plan(
        iam,
        lam,
        rich_params(other_old, migration_function_name=params.migration_function_name),
        other_old,
        new,
        dynamodb=index_client(),
    )

    assert again.actions.set_index("resource")["action"]["tags"] == f"add {', '.join(sorted(added))}"
    assert other.refusal is not None and f"old pool {old_pool['Id']}" in other.refusal.message
    deploy.apply(cognito, iam, lam, again, params, dry_run=False, dynamodb=index_client())
    assert ownership.function_tags(lam, arn)[pool.ENV_TAG] == "stagingx"
    assert all(c.passed for c in deploy.verify(cognito, iam, lam, again, params, dynamodb=index_client()))


# Every field UpdateUserPool accepts, with a non-default value. A new botocore field fails the coverage
# assertion below until it is added here (or to UNSTORED with the reason).
UPDATE_POOL_VALUES: dict[str, Any] = {
    "Policies": {
        "PasswordPolicy": {
            "MinimumLength": 14,
            "RequireUppercase": True,
            "RequireLowercase": False,
            "RequireNumbers": True,
            "RequireSymbols": False,
            "PasswordHistorySize": 5,
            "TemporaryPasswordValidityDays": 2,
        },
        "SignInPolicy": {"AllowedFirstAuthFactors": ["PASSWORD", "EMAIL_OTP"]},
    },
    "DeletionProtection": "ACTIVE",
    "LambdaConfig": {"PreSignUp": f"{FUNCTION_ARN}-keep", "CustomMessage": f"{FUNCTION_ARN}-messages"},
    "AutoVerifiedAttributes": ["email", "phone_number"],
    "SmsVerificationMessage": "SMS code {####}",
    "EmailVerificationMessage": "Your code is {####}",
    "EmailVerificationSubject": "Verify your address",
    "VerificationMessageTemplate": {
        "SmsMessage": "SMS code {####}",
        "EmailMessage": "Your code is {####}",
        "EmailSubject": "Verify your address",
        "EmailMessageByLink": "Click {##here##}",
        "EmailSubjectByLink": "Your link",
        "DefaultEmailOption": "CONFIRM_WITH_LINK",
    },
    "SmsAuthenticationMessage": "Sign-in code {####}",
    "UserAttributeUpdateSettings": {"AttributesRequireVerificationBeforeUpdate": ["email"]},
    "MfaConfiguration": "OPTIONAL",
    "DeviceConfiguration": {"ChallengeRequiredOnNewDevice": True, "DeviceOnlyRememberedOnUserPrompt": True},
    "EmailConfiguration": {
        "SourceArn": f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/no-reply@example.com",
        "ReplyToEmailAddress": "help@example.com",
        "EmailSendingAccount": "DEVELOPER",
        "From": "Example <no-reply@example.com>",
        "ConfigurationSet": "auth-mail",
    },
    "SmsConfiguration": {"SnsCallerArn": f"arn:aws:iam::{ACCOUNT}:role/sms", "ExternalId": "ext", "SnsRegion": REGION},
    "UserPoolTags": {"team": "identity", "cost-center": "42"},
    "AdminCreateUserConfig": {
        # No UnusedAccountValidityDays: AWS refuses it beside TemporaryPasswordValidityDays (an older pool that
        # describes both is tests/test_strict_aws.py's).
        "AllowAdminCreateUserOnly": True,
        "InviteMessageTemplate": {
            "SMSMessage": "User {username} code {####}",
            "EmailMessage": "User {username} code {####}",
            "EmailSubject": "Welcome",
        },
    },
    "UserPoolAddOns": {"AdvancedSecurityMode": "AUDIT", "AdvancedSecurityAdditionalFlows": {"CustomAuthMode": "AUDIT"}},
    "DcrConfiguration": {"EnableStatus": "Enabled", "OpenDcrEnabled": False, "AllowedScopes": ["openid"]},
    "AccountRecoverySetting": {
        "RecoveryMechanisms": [
            {"Priority": 1, "Name": "verified_phone_number"},
            {"Priority": 2, "Name": "verified_email"},
        ]
    },
    "UserPoolTier": "PLUS",
    "KeyConfiguration": {"KeyType": "CUSTOMER_MANAGED_KEY", "KmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k1"},
    "IssuerConfiguration": {"Type": "UPDATED"},
    "AcrConfiguration": {"urn:example:mfa": {"AcrValue": "mfa"}},
}
# moto ignores a new PoolName on UpdateUserPool (DescribeUserPool keeps the creation name), so a non-default
# value cannot be stored; attach_triggers sends the current name back, which the assertion below covers.
UNSTORED = {"PoolName": "moto keeps the name the pool was created with"}


def test_attach_changes_nothing_but_lambda_config_whatever_update_user_pool_accepts(cognito):
    accepted = pool.input_members(cognito, "UpdateUserPool") - {"UserPoolId"}
    assert set(UPDATE_POOL_VALUES) | set(UNSTORED) == accepted, "cover every UpdateUserPool field"
    pool_id = cognito.create_user_pool(PoolName=unique("attach"), UsernameConfiguration={"CaseSensitive": False})[
        "UserPool"
    ]["Id"]
    cognito.update_user_pool(UserPoolId=pool_id, **UPDATE_POOL_VALUES)
    before = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    for key, value in UPDATE_POOL_VALUES.items():  # every value really is stored before the attachment
        assert before[key] == value, key
    function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:migration"

    previous = attachment.attach_triggers(cognito, pool_id, {"UserMigration": function_arn, "PreSignUp": function_arn})

    after = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert previous == UPDATE_POOL_VALUES["LambdaConfig"]
    assert after["LambdaConfig"] == {
        "CustomMessage": f"{FUNCTION_ARN}-messages",
        "PreSignUp": function_arn,
        "UserMigration": function_arn,
    }
    ignored = ("LambdaConfig", "LastModifiedDate")
    assert {k: v for k, v in after.items() if k not in ignored} == {k: v for k, v in before.items() if k not in ignored}

    restored = attachment.detach(cognito, pool_id, previous, dry_run=False)

    final = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert restored["changes"] and final["LambdaConfig"] == UPDATE_POOL_VALUES["LambdaConfig"]
    assert {k: v for k, v in final.items() if k not in ignored} == {k: v for k, v in before.items() if k not in ignored}


# --- rollback ---------------------------------------------------------------------------------------------


def test_detach_restores_the_saved_config_exactly_and_dry_run_writes_nothing(cognito, iam, lam, deployed):
    params, old, new, summary = deployed
    attached = cognito.describe_user_pool(UserPoolId=new["Id"])["UserPool"]

    planned = attachment.detach(cognito, new["Id"], summary["previous_lambda_config"], dry_run=True)
    assert cognito.describe_user_pool(UserPoolId=new["Id"])["UserPool"]["LambdaConfig"] == attached["LambdaConfig"]
    done = attachment.detach(cognito, new["Id"], summary["previous_lambda_config"], dry_run=False)

    after = cognito.describe_user_pool(UserPoolId=new["Id"])["UserPool"]
    assert planned["changes"] and done["current_lambda_config"] == attached["LambdaConfig"]
    assert after.get("LambdaConfig", {}) == {}
    assert set(rollback.trigger_rows(planned)["action"]) == {"remove"}
    ignored = ("LambdaConfig", "LastModifiedDate")
    assert {k: v for k, v in after.items() if k not in ignored} == {
        k: v for k, v in attached.items() if k not in ignored
    }


def write_deploy_record(outputs: Path, env: str, run: str, **record: Any) -> None:
    directory = outputs / env / run
    directory.mkdir(parents=True)
    (directory / "deploy.json").write_text(json.dumps({"dry_run": False, **record}))


def test_saved_lambda_config_is_the_one_from_the_run_that_attached(tmp_path):
    before, attached = {"PreSignUp": "old"}, {"PreSignUp": "new", "UserMigration": "new"}
    write_deploy_record(
        tmp_path, "qa", "20260101T000000Z", new_pool_id="p1", previous_lambda_config=before, lambda_config=attached
    )
    write_deploy_record(
        tmp_path, "qa", "20260102T000000Z", new_pool_id="p1", previous_lambda_config=attached, lambda_config=attached
    )
    write_deploy_record(tmp_path, "qa", "20260103T000000Z", new_pool_id="p1", dry_run=True, previous_lambda_config={})
    write_deploy_record(
        tmp_path, "qa", "20260104T000000Z", new_pool_id="p2", previous_lambda_config={}, lambda_config=attached
    )

    assert rollback.saved_lambda_config(tmp_path, "qa", "p1") == ("20260101T000000Z", before)
    with pytest.raises(rollback.RollbackError, match="20260102T000000Z attached nothing"):
        rollback.saved_lambda_config(tmp_path, "qa", "p1", "20260102T000000Z")
    with pytest.raises(rollback.RollbackError, match="was a dry run"):
        rollback.saved_lambda_config(tmp_path, "qa", "p1", "20260103T000000Z")
    with pytest.raises(rollback.RollbackError, match="pass --outputs"):
        rollback.saved_lambda_config(tmp_path, "qa", "p3")


@pytest.mark.parametrize("env", ["prod", "Prod", "eu-prod-1", "prod2", "prd", "live", "production1", "staging"])
def test_delete_created_refuses_a_protected_environment(cognito, iam, lam, dynamodb, env):
    with pytest.raises(pool.RollbackRefused, match=f"protected: env {env} is protected .* set protected: false"):
        rollback.delete_created(cognito, iam, lam, step_params(env=env), dry_run=True, dynamodb=dynamodb)


def test_delete_created_refuses_a_sandbox_that_says_protected_and_not_an_env_that_opts_out(cognito, iam, lam, dynamodb):
    with pytest.raises(pool.RollbackRefused, match=r"protected: env dev is protected \(its params file says"):
        rollback.delete_created(
            cognito, iam, lam, step_params(env="dev", protected=True), dry_run=True, dynamodb=dynamodb
        )
    rows = rollback.delete_created(
        cognito, iam, lam, step_params(env="live", protected=False), dry_run=True, dynamodb=dynamodb
    )
    assert set(rows["action"]) == {"absent"}


def test_delete_created_refuses_a_pool_with_deletion_protection(cognito, iam, lam, dynamodb, old_pool):
    params = step_params(old_pool["Id"], target_deletion_protection="ACTIVE")
    new = pool.apply(cognito, pool.plan(cognito, params, old_pool, environ={}), dry_run=False, environ={})

    with pytest.raises(pool.RollbackRefused, match=f"pool {new['Id']} .* has deletion protection ACTIVE"):
        rollback.delete_created(cognito, iam, lam, params, dry_run=False, dynamodb=dynamodb)
    assert pool.find_new_pool(cognito, params) is not None


def log_group_names(logs: Any) -> set[str]:
    return {g["logGroupName"] for g in aws.paginate(logs, "describe_log_groups", "logGroups")}


def test_delete_created_deletes_what_steps_2_3_and_6_made_and_only_that(cognito, iam, lam, logs, dynamodb, deployed):
    params, old, new, _ = deployed
    # Step 6's import-jobs role, the two log groups, and three new-pool users: one came from the old pool, two
    # signed up in the new pool and exist nowhere else.
    user_import.ensure_logs_role(iam, user_import.logs_role_name(params), REGION, ACCOUNT)
    groups = {f"/aws/lambda/{params.migration_function_name}", f"/aws/cognito/userpools/{new['Id']}/{new['Name']}"}
    for group in groups:
        logs.create_log_group(logGroupName=group)
    cognito.admin_create_user(UserPoolId=old["Id"], Username="came-over")
    for username in ("came-over", "signed-up-here", "also-new"):
        cognito.admin_create_user(UserPoolId=new["Id"], Username=username)
    before = account_counts(cognito, iam, lam)

    planned = rollback.delete_created(cognito, iam, lam, params, dry_run=True, logs=logs, dynamodb=dynamodb)
    assert account_counts(cognito, iam, lam) == before and groups <= log_group_names(logs)
    done = rollback.delete_created(cognito, iam, lam, params, dry_run=False, logs=logs, dynamodb=dynamodb)

    assert planned.equals(done)
    assert list(done["resource"]) == [
        "domain",
        "users only in the new pool",
        "user pool",
        "Lambda function",
        "IAM role",
        "IAM role",
        "DynamoDB table",
        "log group",
        "log group",
    ]
    assert set(done["action"]) == {"delete"} and "3 group(s)" in done.iloc[2]["detail"]
    assert done.iloc[1]["detail"].startswith("2 user(s) exist nowhere else")
    assert "signed-up-here" not in done.to_string() and "also-new" not in done.to_string()  # a count, never names
    assert set(done["name"]) >= {deploy.role_name_for(params.migration_function_name), *groups}
    after = account_counts(cognito, iam, lam)
    assert {k: before[k] - after[k] for k in before} == {
        "pools": 1,
        "clients": 2,
        "groups": 3,
        "domains": 1,
        "roles": 2,
        "functions": 1,
        "permission statements": 1,
        "tables": 1,
    }
    assert not groups & log_group_names(logs)
    assert pool.find_new_pool(cognito, params) is None
    assert cognito.describe_user_pool(UserPoolId=old["Id"])["UserPool"]["Id"] == old["Id"]  # the old pool stays
    again = rollback.delete_created(cognito, iam, lam, params, dry_run=False, logs=logs, dynamodb=dynamodb)
    assert set(again["action"]) == {"absent"}


def test_delete_created_keeps_what_another_environment_uses(cognito, iam, lam, logs, dynamodb, old_pool):
    # How an earlier version left two environments: both pools call one function, tagged for stagingx.
    shared = unique("migration")
    staging = rich_params(old_pool, env="stagingx", protected=False, migration_function_name=shared)
    staging_new = deploy_env(cognito, iam, lam, staging, old_pool)
    prod_old = another_old_pool(cognito)
    prod = rich_params(prod_old, env="prodx", protected=False, migration_function_name=shared)
    prod_new = pool.apply(cognito, pool.plan(cognito, prod, prod_old, environ={}), dry_run=False, environ={})
    function_arn = staging_new["LambdaConfig"]["UserMigration"]
    attachment.attach_triggers(cognito, prod_new["Id"], {"UserMigration": function_arn})
    logs.create_log_group(logGroupName=f"/aws/lambda/{shared}")

    staging_rows = rollback.delete_created(cognito, iam, lam, staging, dry_run=False, logs=logs, dynamodb=dynamodb)
    prod_rows = rollback.delete_created(cognito, iam, lam, prod, dry_run=False, logs=logs, dynamodb=dynamodb)

    kept = staging_rows.set_index(["resource", "name"])
    assert kept.loc[("user pool", staging_new["Id"]), "action"] == "delete"
    assert kept.loc[("Lambda function", shared), "action"] == "keep"
    assert f"pool(s) {prod_new['Id']} (env prodx) still call it" in kept.loc[("Lambda function", shared), "detail"]
    assert kept.loc[("IAM role", deploy.role_name_for(shared)), "action"] == "keep"
    assert kept.loc[("log group", f"/aws/lambda/{shared}"), "action"] == "keep"
    by_prod = prod_rows.set_index(["resource", "name"])
    assert by_prod.loc[("user pool", prod_new["Id"]), "action"] == "delete"
    assert by_prod.loc[("Lambda function", shared), "action"] == "keep"
    assert by_prod.loc[("Lambda function", shared), "detail"].startswith("used by env stagingx")
    assert lam.get_function(FunctionName=shared)["Configuration"]["FunctionArn"] == function_arn
    assert ownership.role_tags(iam, deploy.role_name_for(shared)) is not None
    assert kept.loc[("DynamoDB table", signup_index.table_name_for(shared)), "action"] == "keep"


def test_delete_created_keeps_a_same_named_function_and_table_it_did_not_make(cognito, iam, lam, dynamodb):
    params = step_params()
    role = iam.create_role(RoleName=unique("theirs"), AssumeRolePolicyDocument=json.dumps(deploy.TRUST_POLICY))
    lam.create_function(
        FunctionName=params.migration_function_name,
        Role=role["Role"]["Arn"],
        Runtime="python3.12",
        Handler="x.handler",
        Code={"ZipFile": deploy.build_package().zip_bytes},
    )
    table = signup_index.table_name_for(params.migration_function_name)
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

    rows = rollback.delete_created(cognito, iam, lam, params, dry_run=False, dynamodb=dynamodb)

    assert rows.set_index("resource")["action"].to_dict() == {
        "user pool": "absent",
        "Lambda function": "keep",
        "IAM role": "absent",
        "DynamoDB table": "keep",
        "log group": "absent",
    }
    assert lam.get_function(FunctionName=params.migration_function_name)
    assert dynamodb.describe_table(TableName=table)["Table"]["TableName"] == table
    dynamodb.delete_table(TableName=table)


# --- steps 2 and 3 through the runner, twice, then the rollback CLI ----------------------------------------


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cognito_migration", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.e2e
def test_rerunning_notebooks_2_and_3_creates_nothing_new_and_rollback_undoes_them(
    cognito, iam, lam, old_pool, local_aws, tmp_path
):
    env_name = "rerun"
    new_pool_name, function_name = unique("users-v2"), unique("migration")
    params_file = tmp_path / f"{env_name}.yaml"
    params_file.write_text(
        json.dumps(
            {
                "env": env_name,
                "region": REGION,
                "old_user_pool_id": old_pool["Id"],
                "old_client_id": clients_of(cognito, old_pool["Id"])["mobile"]["ClientId"],
                "new_pool_name": new_pool_name,
                "target_required_attributes": ["email"],
                "attribute_defaults": {},  # the notebooks' own default names the local pool's `name`
                "migration_function_name": function_name,
                "target_deletion_protection": "INACTIVE",
                "protected": False,  # "rerun" is not a sandbox name: deleting is opted into
                "new_domain_prefix": unique("rerun-login"),
                "dry_run": False,
            }
        )
    )
    outputs = tmp_path / "outputs"
    environment = {**os.environ, "AWS_ENDPOINT_URL": local_aws.endpoint_url}
    run = ("run", "--env", env_name, "--params", str(params_file), "--outputs", str(outputs), "--steps")
    steps = ("02_create_new_pool", "03_deploy_trigger")

    first = cli(*run, *steps, env=environment)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    counts = account_counts(cognito, iam, lam)
    time.sleep(1.1)  # run ids have a one-second resolution
    second = cli(*run, *steps, env=environment)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]

    assert account_counts(cognito, iam, lam) == counts
    first_run, second_run = sorted(p for p in (outputs / env_name).iterdir() if p.is_dir())  # not the masking key
    deployed = json.loads((first_run / "deploy.json").read_text())
    redeployed = json.loads((second_run / "deploy.json").read_text())
    assert deployed["code_sha256"] == redeployed["code_sha256"] == deploy.build_package().sha256
    assert redeployed["previous_lambda_config"] == redeployed["lambda_config"] == deployed["lambda_config"]
    planned = json.loads((second_run / "new_pool.json").read_text())["planned"]
    assert {row["action"] for row in planned} <= {"exists", "drop", "manual", "warn"}, planned
    # the only warning: the old pool auto-verifies nothing, so neither does its copy
    assert [row["resource"] for row in planned if row["action"] == "warn"] == ["auto-verified attributes"], planned

    base = ("rollback", "--env", env_name, "--params", str(params_file), "--outputs", str(outputs))
    shown = cli(*base, env=environment)
    assert shown.returncode == 0 and "dry run: nothing written" in shown.stdout, shown.stderr
    assert f"LambdaConfig saved by run {first_run.name}" in shown.stdout
    new_id = pool.find_new_pool(cognito, validate(json.loads(params_file.read_text())))["Id"]
    assert cognito.describe_user_pool(UserPoolId=new_id)["UserPool"]["LambdaConfig"] == deployed["lambda_config"]
    detached = cli(*base, "--apply", env=environment)
    assert detached.returncode == 0, detached.stderr
    assert (
        cognito.describe_user_pool(UserPoolId=new_id)["UserPool"].get("LambdaConfig", {})
        == deployed["previous_lambda_config"]
    )
    deleted = cli(*base, "--delete", "--apply", env=environment)
    assert deleted.returncode == 0, deleted.stderr
    assert account_counts(cognito, iam, lam)["pools"] == counts["pools"] - 1
    records = (outputs / env_name).glob("*-rollback-*/rollback.json")
    assert sorted(json.loads(r.read_text())["mode"] for r in records) == ["delete", "detach"]
    checked = chain.verify(outputs / env_name)
    assert checked.passed and len(checked.runs) == 2 and len(checked.outside) == 2, "rollbacks stay outside"
    assert "-rollback-delete" in (outputs / env_name / "index.html").read_text()


@pytest.mark.parametrize(
    "pool, named",
    [
        ({"MfaConfiguration": "OFF", "SmsConfiguration": {"SnsCallerArn": "arn:aws:iam::1:role/sms"}}, "OFF"),
        ({"MfaConfiguration": "OPTIONAL"}, "SnsCallerArn"),
    ],
)
def test_mfa_policy_sms_is_refused_for_a_new_pool_that_cannot_send_sms_mfa(pool, named):
    values = {"region": "us-east-1", "old_user_pool_id": "us-east-1_Old", "old_client_id": "c", "mfa_policy": "sms"}
    with pytest.raises(deploy.DeployError, match=f"mfa_policy: sms cannot work.*{named}.*mfa_policy: reset_required"):
        deploy.require_sms_mfa_possible(params.validate(values), {"Id": "us-east-1_New", **pool})
    fine = {"Id": "us-east-1_New", "MfaConfiguration": "OPTIONAL", "SmsConfiguration": {"SnsCallerArn": "arn:x"}}
    deploy.require_sms_mfa_possible(params.validate(values), fine)
    deploy.require_sms_mfa_possible(params.validate({**values, "mfa_policy": "reset_required"}), pool)


def test_users_only_in_an_email_sign_in_new_pool_are_matched_by_their_verified_email(cognito):
    """A new pool signing in by email names its users by a generated id: a migrated user is found in the old
    pool by the verified email it signs in with, as step 5 finds them, not counted as a sign-up rollback would
    lose."""
    old = cognito.create_user_pool(PoolName=unique("old"))["UserPool"]
    new_id = cognito.create_user_pool(
        PoolName=unique("new"), UsernameAttributes=["email"], UsernameConfiguration={"CaseSensitive": False}
    )["UserPool"]["Id"]
    new = cognito.describe_user_pool(UserPoolId=new_id)["UserPool"]
    verified = [{"Name": "email_verified", "Value": "true"}]
    cognito.admin_create_user(
        UserPoolId=old["Id"],
        Username="alice",
        UserAttributes=[{"Name": "email", "Value": "alice@example.com"}, *verified],
    )
    for email in ("Alice@example.com", "bob@example.com"):  # alice came over (the pool folds case); bob signed up
        cognito.admin_create_user(
            UserPoolId=new_id, Username=email, UserAttributes=[{"Name": "email", "Value": email}, *verified]
        )
    assert {u["Username"] for u in cognito.list_users(UserPoolId=new_id)["Users"]} & {
        "alice",
        "Alice@example.com",
    } == set()

    assert rollback.count_new_only(cognito, old["Id"], new) == 1
