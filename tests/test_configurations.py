"""Every sign-in model the parameters allow, end to end: steps 1 to 6 through papermill against the local
AWS, on a small old pool made here with boto3 whose truth is known, with real sign-ins between steps 4 and 5.
Each configuration checks the report's counts, the users the cutover imported (by the name the new pool
knows them by) and the trigger's state after the cutover."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from botocore.exceptions import ClientError

from cognito_migration import pool, records, runbook

REGION = "us-east-1"
PASSWORD = "Correct-Horse-9"  # the old pool's fixture users only: never a real password
pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class OldUser:
    username: str
    email: str | None = None
    phone: str | None = None
    enabled: bool = True
    verified: bool = True


# ann signs in (migrates); ben never does (imported at cutover); cy has no email (a pool signing in by email
# cannot take cy; one with usernames can, lazily, but the import refuses cy: the operator accepts leaving cy
# behind by name); dee is disabled.
USERS = (
    OldUser("ann", "ann@example.com", "+15550100001"),
    OldUser("Ben.Mixed", "Ben@Example.com", "+15550100002"),
    OldUser("cy", None, "+15550100003"),
    OldUser("dee", "dee@example.com", "+15550100004", enabled=False),
)


@dataclass(frozen=True)
class Configuration:
    name: str
    old_pool: dict[str, Any]  # CreateUserPool arguments besides the name
    params: dict[str, Any]  # the target's declared settings
    sign_in_as: str  # what users type at the new pool: username, email or phone
    expected: dict[str, int]  # the report's states after ann signed in
    imported: tuple[str, ...]  # old usernames the cutover imports
    left_behind: tuple[str, ...] = ()  # 'not yet' users the import refuses: accepted by name here
    mfa: str | None = None  # the old pool's MfaConfiguration (SMS); ann then has SMS MFA on
    refused_by_audit: str | None = None  # a configuration that cannot serve: step 1's gate names this finding


CONFIGURATIONS = (
    Configuration(
        "mfa_optional_reset_required",
        {"UsernameConfiguration": {"CaseSensitive": False}, "MfaConfiguration": "OPTIONAL"},
        {"mfa_policy": "reset_required"},
        "username",
        {"migrated": 1, "not yet": 2, "cannot migrate lazily": 1},  # ann arrives RESET_REQUIRED (her SMS MFA)
        ("Ben.Mixed",),
        ("cy",),
        mfa="OPTIONAL",
    ),
    Configuration(
        "mfa_on_refuse",
        {"UsernameConfiguration": {"CaseSensitive": False}, "MfaConfiguration": "ON"},
        {"mfa_policy": "refuse"},
        "username",
        {},
        (),
        mfa="ON",
        refused_by_audit="mfa_refused_users",  # everyone refused, lazily and at import: nobody could move
    ),
    Configuration(
        "username",
        {"UsernameConfiguration": {"CaseSensitive": True}},
        {"target_case_sensitive": False},
        "username",
        {"migrated": 1, "not yet": 2, "cannot migrate lazily": 1},
        ("Ben.Mixed",),
        ("cy",),
    ),
    Configuration(
        "email_as_username",
        {"UsernameConfiguration": {"CaseSensitive": False}},
        {"target_username_attributes": ["email"]},
        "email",
        {"migrated": 1, "not yet": 1, "cannot migrate lazily": 2},  # cy has no email to sign in with
        ("Ben.Mixed",),
    ),
    Configuration(
        "phone_as_username",
        {"UsernameConfiguration": {"CaseSensitive": False}},
        {"target_username_attributes": ["phone_number"]},
        "phone",
        {"migrated": 1, "not yet": 2, "cannot migrate lazily": 1},  # cy signs in by phone number
        ("Ben.Mixed",),
        ("cy",),  # but has no verified email, which the new pool auto-verifies: the import refuses cy
    ),
    Configuration(
        "email_alias",
        {"UsernameConfiguration": {"CaseSensitive": False}},
        {"target_alias_attributes": ["email"]},
        "email",
        {"migrated": 1, "not yet": 2, "cannot migrate lazily": 1},
        ("Ben.Mixed",),
        ("cy",),
    ),
)


def make_old_pool(cognito: Any, configuration: Configuration) -> tuple[str, str]:
    """The old pool, its users (passwords set, CONFIRMED) and the migration client; (pool id, client id)."""
    pool_id = cognito.create_user_pool(
        PoolName=f"old-{configuration.name}-{uuid.uuid4().hex[:6]}",
        AutoVerifiedAttributes=["email"],
        Schema=[
            {"Name": "email", "AttributeDataType": "String", "Mutable": True},
            {"Name": "name", "AttributeDataType": "String", "Mutable": True},
            {"Name": "phone_number", "AttributeDataType": "String", "Mutable": True},
        ],
        **configuration.old_pool,
    )["UserPool"]["Id"]
    for user in USERS:
        attributes = [{"Name": "name", "Value": user.username.title()}]
        if user.email:
            attributes += [{"Name": "email", "Value": user.email}, {"Name": "email_verified", "Value": "true"}]
        if user.phone:
            attributes += [
                {"Name": "phone_number", "Value": user.phone},
                {"Name": "phone_number_verified", "Value": "true"},
            ]
        cognito.admin_create_user(
            UserPoolId=pool_id, Username=user.username, UserAttributes=attributes, MessageAction="SUPPRESS"
        )
        cognito.admin_set_user_password(UserPoolId=pool_id, Username=user.username, Password=PASSWORD, Permanent=True)
        if not user.enabled:
            cognito.admin_disable_user(UserPoolId=pool_id, Username=user.username)
    if configuration.mfa:
        cognito.set_user_pool_mfa_config(
            UserPoolId=pool_id,
            MfaConfiguration=configuration.mfa,
            SmsMfaConfiguration={"SmsConfiguration": {"SnsCallerArn": "arn:aws:iam::123456789012:role/sms"}},
        )
        cognito.admin_set_user_mfa_preference(
            UserPoolId=pool_id, Username=USERS[0].username, SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
        )
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="migration",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    return pool_id, client_id


def masked(folder: Path, env: str, name: str) -> str:
    """``name`` as the records of ``env`` (run with outputs ``folder/outputs``) show it."""
    return records.masker(folder / "outputs" / env / "any-run").text(name)


def write_params(folder: Path, env: str, pool_id: str, client_id: str, configuration: Configuration) -> Path:
    values = {
        "env": env,
        "region": REGION,
        "old_user_pool_id": pool_id,
        "old_client_id": client_id,
        "new_pool_name": f"users-{configuration.name}-{uuid.uuid4().hex[:6]}",
        "migration_function_name": f"migration-{uuid.uuid4().hex[:10]}",
        "target_required_attributes": [],
        "attribute_defaults": {},
        "target_deletion_protection": "INACTIVE",
        "dry_run": False,
        "cutover_confirm": True,
        "cutover_min_quiet_days": 0,
        # Named as the environment's records name them: its key is created here, before the first run.
        "cutover_accept_unimported": [masked(folder, env, name) for name in configuration.left_behind],
        **configuration.params,
    }
    path = folder / f"{env}.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def sign_in_name(user: OldUser, how: str) -> str:
    return {"username": user.username, "email": user.email, "phone": user.phone}[how] or ""


@pytest.mark.parametrize("configuration", CONFIGURATIONS, ids=lambda c: c.name)
def test_configuration_end_to_end(configuration: Configuration, cognito, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = f"cfg{configuration.name.replace('_', '')}"[:30]
    pool_id, client_id = make_old_pool(cognito, configuration)
    params_file = write_params(tmp_path, env, pool_id, client_id, configuration)
    outputs = tmp_path / "outputs"

    checked = runbook.parameters.validate(yaml.safe_load(params_file.read_text()))
    if configuration.refused_by_audit:
        with pytest.raises(
            runbook.RunFailed, match=f"(?s)01_audit_old_pool failed: .*- {configuration.refused_by_audit}:"
        ):
            runbook.run(env, params_file, outputs, steps=runbook.STEPS[:4], progress=False)
        assert pool.find_new_pool(cognito, checked) is None, "refused before anything was written"
        return
    runbook.run(env, params_file, outputs, steps=runbook.STEPS[:4], progress=False)
    new_pool = pool.find_new_pool(cognito, checked)
    assert new_pool is not None
    client = pool.password_client(cognito, new_pool["Id"])
    ann = USERS[0]
    try:
        cognito.initiate_auth(
            ClientId=client["ClientId"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": sign_in_name(ann, configuration.sign_in_as), "PASSWORD": PASSWORD},
        )
    except ClientError as exc:  # an MFA user under reset_required arrives RESET_REQUIRED: she resets first
        assert configuration.mfa and exc.response["Error"]["Code"] == "PasswordResetRequiredException", exc
    report_run = runbook.run(env, params_file, outputs, steps=("05_report",), progress=False).run_dir
    report = json.loads((report_run / "report.json").read_text())
    assert report["states"] == configuration.expected
    assert report["new_pool_only"] == 0, "ann is the old pool's ann, not a sign-up"

    cutover_run = runbook.run(env, params_file, outputs, steps=("06_cutover",), progress=False).run_dir
    record = json.loads((cutover_run / "cutover.json").read_text())
    accepted = [masked(tmp_path, env, name) for name in configuration.left_behind]
    assert record["result"]["left_behind"] == record["result"]["accepted_left_behind"] == accepted
    assert record["result"]["detached"] == ["UserMigration"]
    lambda_config = cognito.describe_user_pool(UserPoolId=new_pool["Id"])["UserPool"].get("LambdaConfig") or {}
    assert "UserMigration" not in lambda_config and "PostAuthentication" in lambda_config

    after = {
        u["Username"]: u
        for u in cognito.get_paginator("list_users").paginate(UserPoolId=new_pool["Id"]).search("Users")
    }
    by_old_name = {user.username: user for user in USERS}
    for name in configuration.imported:
        # A pool signing in by email / phone number knows the user by that value; others by the username.
        by = configuration.sign_in_as if "target_username_attributes" in configuration.params else "username"
        found = cognito.admin_get_user(UserPoolId=new_pool["Id"], Username=sign_in_name(by_old_name[name], by))
        assert found["UserStatus"] == "RESET_REQUIRED", name
    assert len(after) == 1 + len(configuration.imported)
    assert sum(job["imported"] for job in record["result"]["jobs"]) == len(configuration.imported)
    snapshot = pd.read_parquet(cutover_run / "cutover_users.parquet")
    assert len(snapshot) == len(after)
