"""Faults on request: under throttling, server errors and a role not yet assumable, every user is still
counted exactly and deployment still finishes; retries are bounded and visible."""

from __future__ import annotations

import json
import time
import urllib.request

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cognito_migration import aws, deploy, params, quotas, report, scan
from cognito_migration.local.access import KEY_HEADER
from cognito_migration.local.faults import FaultRule
from cognito_migration.local.legacy import seed_legacy_pool
from cognito_migration.local.server import LocalAWS

REGION = "us-east-1"


def client_for(cognito, config: Config):  # type: ignore[no-untyped-def]
    """A client of the same local AWS as the fixture's, with its own retry configuration."""
    return boto3.client("cognito-idp", region_name=REGION, endpoint_url=cognito.meta.endpoint_url, config=config)


@pytest.fixture
def faults(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    assert local_aws.faults is not None
    yield local_aws.faults
    local_aws.faults.clear()


@pytest.fixture(scope="module")
def legacy(local_aws: LocalAWS):  # type: ignore[no-untyped-def]
    return seed_legacy_pool(users=600, seed=11, region=REGION)


def test_scans_count_every_user_exactly_with_a_fifth_of_calls_failing(faults, legacy, cognito) -> None:
    faults.add("ListUsers", throttle=0.15, error=0.05)
    faults.add("ListUsersInGroup", throttle=0.15, error=0.05)
    budget = aws.RateLimiter(1000)
    client = client_for(cognito, aws.RETRY_CONFIG)

    users = scan.scan_users(client, legacy.pool_id, budget)
    memberships = scan.scan_memberships(
        client, legacy.pool_id, [g for g in {g for u in legacy.users for g in u.groups}], budget
    )

    assert sorted(users["username"]) == sorted(u.username for u in legacy.users)
    assert len(memberships) == sum(len(u.groups) for u in legacy.users)
    assert sum(faults.injected.values()) > 0
    assert budget.retries > 0, "retries are counted, so an operator sees them"
    assert budget.requests >= budget.retries


def test_report_counts_survive_faults(faults, legacy, cognito) -> None:
    faults.add("ListUsers", throttle=0.2)
    client = client_for(cognito, aws.RETRY_CONFIG)
    old = scan.scan_users(client, legacy.pool_id, aws.RateLimiter(1000))
    classified = report.classify(old, old.iloc[:0], case_sensitive=False)
    assert int(report.summary(classified)["users"].sum()) == len(legacy.users)


def test_retries_are_bounded(faults, legacy, cognito) -> None:
    faults.add("ListUsers", throttle=1.0)
    client = client_for(cognito, Config(retries={"max_attempts": 3, "mode": "standard"}))
    with pytest.raises(ClientError) as error:
        scan.scan_users(client, legacy.pool_id)
    assert error.value.response["Error"]["Code"] == "TooManyRequestsException"
    # botocore's max_attempts counts retries: the first request plus three, then the error surfaces
    assert faults.injected == {"ListUsers:throttle": 4}, faults.injected


def test_faults_are_set_over_http(faults, local_aws: LocalAWS, cognito) -> None:
    rules = [{"operation": "ListUserPools", "throttle": 1.0}]
    key = {KEY_HEADER: local_aws.credentials["AWS_ACCESS_KEY_ID"]}  # the control path wants this run's key too
    request = urllib.request.Request(
        f"{local_aws.endpoint_url}/_local/faults", data=json.dumps(rules).encode(), method="POST", headers=key
    )
    answer = json.loads(urllib.request.urlopen(request).read())
    assert answer["rules"][0]["operation"] == "ListUserPools"
    client = client_for(
        cognito,
        Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as error:
        client.list_user_pools(MaxResults=10)
    assert error.value.response["Error"]["Code"] == "TooManyRequestsException"
    urllib.request.urlopen(
        urllib.request.Request(f"{local_aws.endpoint_url}/_local/faults", method="DELETE", headers=key)
    )
    assert client.list_user_pools(MaxResults=10)["ResponseMetadata"]["HTTPStatusCode"] == 200


def test_bad_fault_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultRule("ListUsers", throttle=0.8, error=0.5)
    with pytest.raises(ValueError, match="needs the error code"):
        FaultRule("CreateFunction", fail_first=1)


def test_deploy_survives_a_role_not_yet_assumable(faults, legacy, cognito, iam, lam) -> None:
    new_pool_id = cognito.create_user_pool(PoolName="faults-new")["UserPool"]["Id"]
    new_pool = cognito.describe_user_pool(UserPoolId=new_pool_id)["UserPool"]
    old_pool = cognito.describe_user_pool(UserPoolId=legacy.pool_id)["UserPool"]
    cfg = params.validate(
        {
            "old_user_pool_id": legacy.pool_id,
            "old_client_id": legacy.migration_client_id,
            "migration_function_name": "faults-trigger",
            "dry_run": False,
        }
    )
    faults.add(
        "CreateFunction",
        fail_first=2,
        code="InvalidParameterValueException",
        message="The role defined for the function cannot be assumed by Lambda.",
    )
    dynamodb = boto3.client("dynamodb", region_name=cfg.region, endpoint_url=lam.meta.endpoint_url)
    plan = deploy.plan(iam, lam, cfg, old_pool, new_pool, dynamodb=dynamodb)
    deploy.apply(cognito, iam, lam, plan, cfg, dry_run=False, dynamodb=dynamodb)

    assert faults.injected["CreateFunction:fail_first"] == 2
    assert lam.get_function(FunctionName="faults-trigger")["Configuration"]["Handler"] == deploy.HANDLER


def test_quotas_answer_too_many_requests_above_the_category_rate(faults, legacy, cognito) -> None:
    faults.enforce_quotas(scale=0.2)  # UserList: 6 requests/s
    client = client_for(
        cognito,
        Config(retries={"max_attempts": 0}),
    )
    codes = []
    started = time.monotonic()
    for _ in range(20):
        try:
            client.list_users(UserPoolId=legacy.pool_id, Limit=1)
            codes.append("ok")
        except ClientError as exc:
            codes.append(exc.response["Error"]["Code"])
    elapsed = time.monotonic() - started
    # a burst of one second's worth, then 6 a second: what a loaded machine's slower requests earn is allowed
    assert codes.count("ok") <= 6 + 6 * elapsed + 1, (codes, elapsed)
    assert set(codes) == {"ok", "TooManyRequestsException"}, (codes, elapsed)
    assert client.describe_user_pool(UserPoolId=legacy.pool_id)["UserPool"]["Id"] == legacy.pool_id  # other category


def test_quotas_limit_one_pool_resource_operation_to_5_per_second_per_pool(faults, legacy, cognito) -> None:
    faults.enforce_quotas()  # UserPoolClientRead: 15 requests/s, but 5/s for one operation against one pool
    client = client_for(cognito, Config(retries={"max_attempts": 0}))
    other = client.create_user_pool(PoolName="per-pool-limit")["UserPool"]["Id"]

    def burst(pool_id: str, n: int) -> list[str]:
        codes = []
        for _ in range(n):
            try:
                client.list_user_pool_clients(UserPoolId=pool_id, MaxResults=1)
                codes.append("ok")
            except ClientError as exc:
                codes.append(exc.response["Error"]["Code"])
        return codes

    try:
        one_pool = burst(legacy.pool_id, 10)
        assert one_pool.count("ok") <= 6 and "TooManyRequestsException" in one_pool
        assert burst(other, 3) == ["ok"] * 3, "another pool has its own 5/s"
    finally:
        faults.clear()
        client.delete_user_pool(UserPoolId=other)


def test_the_runbooks_default_budget_stays_within_the_per_pool_limit() -> None:
    budget = aws.Budget(params.Params(old_user_pool_id="us-east-1_X1", old_client_id="c"))
    for category in quotas.POOL_LIMITED:
        assert budget.limiter(category).budget <= quotas.PER_POOL_OPERATION_RPS
    assert quotas.quota_category("AdminAddUserToGroup") == "UserResourceUpdate"
    assert quotas.quota_category("AdminConfirmSignUp") == "UserCreation"
    assert quotas.quota_category("DescribeUserPoolClient") == "UserPoolClientRead"
    assert quotas.quota_category("UpdateUserPoolClient") == "UserPoolClientUpdate"


def test_a_budget_under_the_quota_is_never_throttled(faults, legacy, cognito) -> None:
    faults.enforce_quotas(scale=0.2)  # UserList: 6 requests/s
    client = client_for(
        cognito,
        Config(retries={"max_attempts": 0}),
    )
    budget = aws.RateLimiter(5, burst=1)
    users = scan.scan_users(client, legacy.pool_id, budget)
    assert len(users) == len(legacy.users)
    assert not faults.injected and budget.retries == 0
