"""Whole-pool reads: 16 sub-prefix shards read concurrently return exactly the users of a serial read,
within the budget; a shard's failure fails the whole read."""

from __future__ import annotations

import math
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from cognito_migration import aws, scan
from cognito_migration.local.legacy import seed_legacy_pool


@pytest.fixture(scope="module")
def legacy(local_aws):  # type: ignore[no-untyped-def]
    return seed_legacy_pool(users=1500, seed=21)


def test_shards_partition_the_pool_exactly(legacy, cognito) -> None:
    sharded = scan.scan_users_sharded(cognito, legacy.pool_id, aws.RateLimiter(500), expected=len(legacy.users))
    serial = scan.scan_users(cognito, legacy.pool_id, aws.RateLimiter(500))
    assert sorted(sharded["username"]) == sorted(serial["username"]) == sorted(u.username for u in legacy.users)
    report = sharded.attrs["completeness"]
    assert report["shards_drained"] == 16 and sum(report["per_shard"]) == len(legacy.users)
    assert report["difference"] == 0 and report["explanation"] == "matches the estimate"


def test_completeness_explains_a_difference_from_the_estimate(legacy, cognito) -> None:
    sharded = scan.scan_users_sharded(cognito, legacy.pool_id, expected=len(legacy.users) + 7)
    assert sharded.attrs["completeness"]["difference"] == -7
    assert "approximate" in sharded.attrs["completeness"]["explanation"]


def test_sharded_reads_stay_within_the_budget(legacy, cognito, local_aws) -> None:
    budget = aws.RateLimiter(20, burst=1)
    started = time.monotonic()
    frame = scan.scan_users_sharded(cognito, legacy.pool_id, budget, workers=8)
    elapsed = time.monotonic() - started
    pages = sum(max(1, math.ceil(n / 60)) for n in frame.attrs["completeness"]["per_shard"])
    assert budget.requests == pages, "one token per page, none for a request never sent"
    assert (budget.requests - 1) / elapsed <= 20 * 1.05


def test_a_failing_shard_fails_the_whole_read(legacy, cognito, local_aws) -> None:
    local_aws.faults.add("ListUsers", throttle=1.0)
    try:
        # the fixture's endpoint, without retries, so the failure is immediate
        client = boto3.client(
            "cognito-idp",
            region_name="us-east-1",
            endpoint_url=cognito.meta.endpoint_url,
            config=Config(retries={"max_attempts": 0}),
        )
        with pytest.raises(ClientError, match="TooManyRequestsException"):
            scan.scan_users_sharded(client, legacy.pool_id)
    finally:
        local_aws.faults.clear()


def test_large_pools_are_read_in_shards(legacy, cognito, monkeypatch) -> None:
    monkeypatch.setattr(scan, "SHARDED_FROM", 1000)
    frame = scan.scan_users(cognito, legacy.pool_id, expected=len(legacy.users))
    assert frame.attrs["completeness"]["shards_drained"] == 16
    assert "completeness" not in scan.scan_users(cognito, legacy.pool_id, expected=999).attrs


def test_scan_pool_shards_by_the_pools_own_estimate(legacy, cognito, monkeypatch) -> None:
    monkeypatch.setattr(scan, "SHARDED_FROM", 1000)
    frame = scan.scan_pool(cognito, legacy.pool_id, aws.RateLimiter(500))
    assert frame.attrs["completeness"]["shards_drained"] == 16
    assert sorted(frame["username"]) == sorted(u.username for u in legacy.users)
    monkeypatch.setattr(scan, "SHARDED_FROM", len(legacy.users) + 1)
    assert "completeness" not in scan.scan_pool(cognito, legacy.pool_id).attrs


def test_memberships_are_read_concurrently_and_completely(legacy, cognito) -> None:
    groups = sorted({g for u in legacy.users for g in u.groups})
    budget = aws.RateLimiter(200)
    memberships = scan.scan_memberships(cognito, legacy.pool_id, groups, budget, workers=4)
    expected = sorted((g, u.username) for u in legacy.users for g in u.groups)
    assert sorted(zip(memberships["group"], memberships["username"], strict=True)) == expected
    assert budget.requests >= len(groups)


class LateClock:
    """time.monotonic and time.sleep for RateLimiter, where every sleep wakes 5 ms late (as threads do)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sends: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds + 0.005


def test_the_budget_keeps_its_rate_when_callers_wake_late_and_saves_nothing_for_a_burst(monkeypatch) -> None:
    clock = LateClock()
    monkeypatch.setattr(aws.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(aws.time, "sleep", clock.sleep)
    limiter = aws.RateLimiter(15)
    for _ in range(151):
        limiter.acquire()
        clock.sends.append(clock.now)
    # 150 intervals of 1/15 s: late wake-ups do not add up (a bucket of one token lost 5 ms each time).
    assert clock.sends[-1] - clock.sends[0] == pytest.approx(10.0, abs=0.006)

    clock.now += 60.0  # idle: nothing is saved up
    first = clock.now
    for _ in range(3):
        limiter.acquire()
    assert clock.now - first >= 2 / 15


def test_the_budget_slows_down_after_throttling_and_recovers() -> None:
    limiter = aws.RateLimiter(10)
    limiter.charge_retries(2)
    assert limiter.rate == pytest.approx(7.0) and limiter.retries == 2
    for _ in range(10):
        limiter.charge_retries(1)
    assert limiter.rate == pytest.approx(1.0), "never below a tenth of the budget"
    for _ in range(200):
        limiter.charge_retries(0)
    assert limiter.rate == pytest.approx(10.0), "never above the budget"


def test_the_budget_has_one_limiter_per_quota_category(cognito) -> None:
    from cognito_migration import params

    cfg = params.validate(
        {
            "old_user_pool_id": "us-east-1_X1",
            "old_client_id": "c",
            "list_rate_limit": 12,
            "rate_limits": {"UserRead": 40},
        }
    )
    budget = aws.Budget(cfg)
    assert budget.for_operation(cognito, "list_users") is budget.limiter("UserList")
    assert budget.for_operation(cognito, "list_users_in_group") is budget.limiter("UserList")
    assert budget.limiter("UserList").budget == 12 and budget.limiter("UserRead").budget == 40
    assert budget.limiter("UserRead").budget == 40 and budget.limiter("UserCreation").budget == 25, "half the quota"
    # ListGroups may go at 5/s against one pool (quotas page, the categories marked *): half of that
    assert budget.limiter("UserPoolResourceRead").budget == 2.5
    assert budget.for_operation(cognito, "list_groups") is budget.limiter("UserPoolResourceRead")


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"UserList": 10}, "set UserList with list_rate_limit"),
        ({"UserReads": 10}, "not a Cognito quota category"),
        ({"UserUpdate": 26}, "at most its quota, 25/s"),
        ({"UserPoolResourceUpdate": 10}, r"at most its quota \(5/s per operation and pool\), 5/s"),
        ({"UserRead": "fast"}, "expected a mapping of quota category to requests/s"),
    ],
)
def test_rate_limits_are_checked(limits, message) -> None:
    from cognito_migration import params

    with pytest.raises(params.ParameterError, match=message):
        params.validate({"old_user_pool_id": "us-east-1_X1", "old_client_id": "c", "rate_limits": limits})


def test_budget_usage_shows_requests_and_retries_per_category(legacy, cognito) -> None:
    from cognito_migration import params

    budget = aws.Budget(params.validate({"old_user_pool_id": "us-east-1_X1", "old_client_id": "c"}))
    scan.scan_users(cognito, legacy.pool_id, budget.limiter("UserList"))
    usage = budget.usage().set_index("category")
    assert usage.loc["UserList", "requests"] == -(-len(legacy.users) // 60)
    assert usage.loc["UserList", "retries"] == 0 and usage.loc["UserList", "budget"] == 15
