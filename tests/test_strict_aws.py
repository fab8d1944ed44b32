"""Rules AWS enforces that moto skips, played by the local AWS over HTTP with AWS's error code and message, and
the runbook meeting them: a read-modify-write of an older pool, step 2 cloning it."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from cognito_migration import attachment, pool, pool_settings
from cognito_migration.local.legacy import UNUSED_ACCOUNT_VALIDITY_DAYS, seed_legacy_pool
from cognito_migration.local.pool_rules import UNUSED_ACCOUNT_VALIDITY_MESSAGE
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
