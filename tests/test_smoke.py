"""Step 4's RESET_REQUIRED canary: through every password client of the new pool as it is configured, the
answer matches the client's PreventUserExistenceErrors (developer guide, "Requiring imported users to reset
their passwords"), and the check says which answer the apps see."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from botocore.exceptions import ClientError

from cognito_migration import audit, deploy, params, pool, smoke
from cognito_migration.local.legacy import seed_legacy_pool

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tests belong to

LOCAL = yaml.safe_load((ROOT / "params" / "local.yaml").read_text())


def test_the_reset_required_canary_gets_each_clients_answer(local_aws, cognito, iam, lam) -> None:
    legacy = seed_legacy_pool(users=20, seed=11)
    cfg = params.validate({**LOCAL, "new_pool_name": "smoke-reset-pool", "migration_function_name": "smoke-reset"})
    old_pool = audit.describe_pool(cognito, legacy.pool_id)
    new_pool = pool.apply(cognito, pool.plan(cognito, cfg, old_pool), dry_run=False)
    dynamodb = boto3.client("dynamodb", region_name=cfg.region, endpoint_url=local_aws.endpoint_url)
    new_pool = cognito.describe_user_pool(UserPoolId=new_pool["Id"])["UserPool"]
    the_plan = deploy.plan(iam, lam, cfg, old_pool, new_pool, dynamodb=dynamodb)
    deploy.apply(cognito, iam, lam, the_plan, cfg, dry_run=False, dynamodb=dynamodb)
    cognito.create_user_pool_client(  # an app that kept the API's default
        UserPoolId=new_pool["Id"],
        ClientName="zz-legacy-app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="LEGACY",
    )
    clients = pool.password_clients(cognito, new_pool["Id"])
    settings = {c["ClientName"]: c.get("PreventUserExistenceErrors") or "LEGACY" for c in clients}
    assert set(settings.values()) == {"ENABLED", "LEGACY"}  # the legacy pool's copies are ENABLED

    checks = smoke.run_smoke_test(
        cognito, legacy.pool_id, new_pool["Id"], clients[0], cfg.target_required_attributes, [], "reset"
    )

    assert all(c.passed for c in checks), [c for c in checks if not c.passed]
    reset = {c.name.removeprefix("RESET_REQUIRED sign-in through "): c for c in checks if "RESET_REQUIRED" in c.name}
    assert set(reset) == set(settings)
    for name, setting in settings.items():
        expected = smoke.RESET_REQUIRED_ANSWERS[setting]
        assert reset[name].detail.startswith(f"PreventUserExistenceErrors {setting}: answers {expected}; ")
    assert "offer forgot-password on NotAuthorizedException" in next(
        c.detail for n, c in reset.items() if settings[n] == "ENABLED"
    )


class AnsweringCognito:
    """Answers every password sign-in with the given error code."""

    def __init__(self, code: str) -> None:
        self.code = code

    def initiate_auth(self, **_: Any) -> dict[str, Any]:
        raise ClientError({"Error": {"Code": self.code, "Message": "..."}}, "InitiateAuth")


@pytest.mark.parametrize(
    ("setting", "code", "passed"),
    [
        ("ENABLED", "NotAuthorizedException", True),
        ("ENABLED", "PasswordResetRequiredException", False),
        (None, "PasswordResetRequiredException", True),
        ("LEGACY", "NotAuthorizedException", False),
    ],
)
def test_an_answer_other_than_the_settings_fails_the_check_and_says_so(setting, code, passed) -> None:
    client = {"ClientId": "c", "ClientName": "web"} | ({"PreventUserExistenceErrors": setting} if setting else {})
    canary = smoke.Canary("canary", {}, (), "canary")

    [check] = smoke._reset_required_checks(AnsweringCognito(code), [client], canary, "not-used-by-the-fake")

    assert (check.passed, check.severity) == (passed, "warning")
    assert f"answers {code}" in check.detail and "not-used" not in check.detail
    assert (", not " in check.detail) != passed
