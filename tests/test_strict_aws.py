"""Rules AWS enforces that moto skips, played by the local AWS over HTTP with AWS's error code and message, and
the runbook meeting them: a read-modify-write of an older pool, step 2 cloning it."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from cognito_migration.local.legacy import UNUSED_ACCOUNT_VALIDITY_DAYS, seed_legacy_pool
from cognito_migration.local.pool_rules import UNUSED_ACCOUNT_VALIDITY_MESSAGE
from step_support import unique

REGION = "us-east-1"
BOTH = {
    "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": False, "UnusedAccountValidityDays": 7},
    "Policies": {"PasswordPolicy": {"MinimumLength": 8, "TemporaryPasswordValidityDays": 7}},
}


def error_of(exc_info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc_info.value.response["Error"]
    return error["Code"], error["Message"]


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


# --- the local legacy pool is an older pool ------------------------------------------------------------


def test_the_local_legacy_pool_is_an_older_pool_describing_both_fields(cognito):
    legacy = seed_legacy_pool(users=20, seed=5, region=REGION)
    described = cognito.describe_user_pool(UserPoolId=legacy.pool_id)["UserPool"]
    assert described["AdminCreateUserConfig"]["UnusedAccountValidityDays"] == UNUSED_ACCOUNT_VALIDITY_DAYS
    assert described["Policies"]["PasswordPolicy"]["TemporaryPasswordValidityDays"] == 7
