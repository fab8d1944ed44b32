"""Virtual pools: users generated on the fly from their index, read over real HTTP with boto3 as the runbook reads
a pool (ListUsers in sub shards, ListUsersInGroup, AdminGetUser), checked against the generator's truth."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.cognitoidp.models import cognitoidp_backends

from cognito_migration import aws
from cognito_migration.local import virtual
from cognito_migration.local.legacy import DEFAULT_ACCOUNT_ID, GROUP_NAMES, LegacyUser, quirk_quotas
from cognito_migration.local.server import LocalAWS
from cognito_migration.local.virtual_users import VirtualUsers

REGION = "us-east-1"
USERS, SEED = 5000, 7
HEX = "0123456789abcdef"


@pytest.fixture(scope="module")
def pool_id(local_aws: LocalAWS) -> Iterator[str]:
    pool_id = local_aws.add_virtual_pool(USERS, seed=SEED)
    yield pool_id
    virtual.remove_virtual_pool(pool_id)


@pytest.fixture(scope="module")
def generated() -> list[LegacyUser]:
    users = VirtualUsers(USERS, SEED)
    return [users.user(i) for i in range(USERS)]


def read(cognito: Any, operation: str = "list_users", **kwargs: Any) -> list[dict[str, Any]]:
    return list(aws.paginate(cognito, operation, "Users", **kwargs))


def as_listed(record: LegacyUser) -> dict[str, Any]:
    """What ListUsers says of a generated user (dates aside)."""
    listed = {
        "Username": record.username,
        "Attributes": [{"Name": k, "Value": v} for k, v in {**record.attributes, "sub": record.sub}.items()],
        "Enabled": record.enabled,
        "UserStatus": record.status,
    }
    if record.mfa == "SMS_MFA":
        listed["MFAOptions"] = [{"DeliveryMedium": "SMS", "AttributeName": "phone_number"}]
    return listed


def without_dates(user: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in user.items() if k not in ("UserCreateDate", "UserLastModifiedDate")}


def error_of(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


# --- reading the whole pool ---------------------------------------------------------------------------------


def test_the_listing_is_the_generators_users_in_index_order(
    cognito: Any, pool_id: str, generated: list[LegacyUser]
) -> None:
    listed = read(cognito, UserPoolId=pool_id, PaginationConfig={"PageSize": 60})
    assert [without_dates(u) for u in listed] == [as_listed(r) for r in generated]
    assert [u["UserCreateDate"] for u in listed[:3]] == [r.created_at for r in generated[:3]]


@pytest.mark.parametrize("digits", [1, 2])
def test_sub_shards_partition_the_pool_as_the_truth_counts(
    cognito: Any, pool_id: str, generated: list[LegacyUser], digits: int
) -> None:
    truth = virtual.truth(USERS, SEED)
    seen: Counter[str] = Counter()
    for number in range(16**digits):
        prefix = f"{number:0{digits}x}"
        shard = read(cognito, UserPoolId=pool_id, Filter=f'sub ^= "{prefix}"', PaginationConfig={"PageSize": 60})
        subs = [next(a["Value"] for a in u["Attributes"] if a["Name"] == "sub") for u in shard]
        assert all(sub.startswith(prefix) for sub in subs)
        assert len(shard) == truth.shards[prefix], prefix
        seen.update(u["Username"] for u in shard)
    assert len(seen) == USERS and set(seen.values()) == {1}
    assert set(seen) == {r.username for r in generated}


def test_the_truth_is_what_the_generator_makes(generated: list[LegacyUser]) -> None:
    truth = virtual.truth(USERS, SEED)
    assert truth.users == USERS and sum(truth.statuses.values()) == USERS
    assert truth.statuses == dict(Counter(r.status for r in generated))
    assert truth.quirks == dict(Counter(q for r in generated for q in r.quirks))
    assert truth.groups == {g: sum(g in r.groups for r in generated) for g in GROUP_NAMES}
    assert truth.disabled == sum(not r.enabled for r in generated)
    assert truth.legacy_sms_mfa == sum(r.mfa == "SMS_MFA" for r in generated)
    for prefix, count in truth.shards.items():
        assert count == sum(r.sub.startswith(prefix) for r in generated)
    assert [virtual.user(i, USERS, SEED) for i in (0, 4999)] == [generated[0], generated[4999]]


@pytest.mark.parametrize("users", [5000, 1_000_000])
def test_quirk_shares_are_the_legacy_generators(users: int) -> None:
    truth, quotas = virtual.truth(users, SEED), quirk_quotas(users)
    assert set(truth.quirks) == set(quotas)
    for quirk, quota in quotas.items():
        assert abs(truth.quirks[quirk] - quota) <= 2 + users // 1000, quirk  # within a tenth of a percent


def test_quirks_show_in_the_users_as_in_the_legacy_pool(generated: list[LegacyUser]) -> None:
    for record in generated:
        quirks, attributes = record.quirks, record.attributes
        assert ("missing_name" in quirks) == ("name" not in attributes)
        assert ("no_custom_attributes" in quirks) == ("custom:tier" not in attributes)
        assert ("disabled" in quirks) == (not record.enabled)
        if "no_verified_contact" in quirks:
            assert "true" not in (attributes["email_verified"], attributes.get("phone_number_verified"))
        if "bad_phone" in quirks:
            assert not re.fullmatch(r"\+[1-9]\d{1,14}", attributes["phone_number"])
        if record.mfa == "SMS_MFA":
            assert re.fullmatch(r"\+1555\d{7}", attributes["phone_number"])
        if "multi_group" in quirks:
            assert 2 <= len(record.groups) <= 5
    usernames = Counter(r.username.lower() for r in generated)
    emails = Counter(r.attributes["email"].lower() for r in generated)
    assert {r.username for r in generated if usernames[r.username.lower()] == 2} == {
        r.username for r in generated if "case_duplicate_username" in r.quirks
    }
    assert sum(n == 2 for n in emails.values()) == USERS // 200 and max(emails.values()) == 2
    assert len({r.username for r in generated}) == USERS  # the pool is case-sensitive: pairs are two users


def test_groups_list_their_members_as_the_truth_counts(cognito: Any, pool_id: str, generated: list[LegacyUser]) -> None:
    truth = virtual.truth(USERS, SEED)
    groups = list(aws.paginate(cognito, "list_groups", "Groups", UserPoolId=pool_id))
    assert [g["GroupName"] for g in groups] == list(GROUP_NAMES)
    for group in GROUP_NAMES:
        members = read(cognito, "list_users_in_group", UserPoolId=pool_id, GroupName=group)
        assert len(members) == truth.groups[group]
        assert [without_dates(m) for m in members] == [as_listed(r) for r in generated if group in r.groups]


def test_describe_user_pool_estimates_every_generated_user(cognito: Any, pool_id: str) -> None:
    described = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    assert described["EstimatedNumberOfUsers"] == USERS
    assert described["UsernameConfiguration"] == {"CaseSensitive": True} and described["MfaConfiguration"] == "OPTIONAL"
    assert described["AdminCreateUserConfig"]["UnusedAccountValidityDays"] == 7  # the legacy pool's old field
    assert {"custom:tier", "custom:signup_year"} <= {a["Name"] for a in described["SchemaAttributes"]}


# --- one user, filters, pages -----------------------------------------------------------------------------


def test_admin_get_user_returns_the_listed_user(cognito: Any, pool_id: str, generated: list[LegacyUser]) -> None:
    chosen = [
        generated[0],
        generated[-1],
        next(r for r in generated if r.mfa == "SMS_MFA"),
        *[r for r in generated if "case_duplicate_username" in r.quirks][:2],
    ]
    for record in chosen:
        got = cognito.admin_get_user(UserPoolId=pool_id, Username=record.username)
        listed = as_listed(record)
        assert got["Username"] == record.username and got["UserAttributes"] == listed["Attributes"]
        assert (got["UserStatus"], got["Enabled"], got.get("MFAOptions")) == (
            record.status,
            record.enabled,
            listed.get("MFAOptions"),
        )
        assert got.get("PreferredMfaSetting") == record.mfa
    plain = next(r for r in generated if not r.quirks)
    for missing in (plain.username.capitalize(), plain.username + "x", "nobody"):
        assert error_of(lambda m=missing: cognito.admin_get_user(UserPoolId=pool_id, Username=m)) == (
            "UserNotFoundException",
            "User does not exist.",
        )


def test_filters_select_what_the_generator_holds(cognito: Any, pool_id: str, generated: list[LegacyUser]) -> None:
    pair = [r for r in generated if "case_duplicate_email" in r.quirks][:2]
    someone = generated[1234]
    phone = next(r for r in generated if "phone_number" in r.attributes).attributes["phone_number"]
    cases = {
        f'username = "{someone.username}"': lambda r: r.username == someone.username,
        f'username ^= "{someone.username[:4]}"': lambda r: r.username.startswith(someone.username[:4]),
        'username ^= "J"': lambda r: r.username.startswith("J"),
        f'email = "{pair[1].attributes["email"]}"': lambda r: r.attributes["email"] == pair[1].attributes["email"],
        f'email ^= "{pair[0].attributes["email"][:3]}"': lambda r: r.attributes["email"].startswith(
            pair[0].attributes["email"][:3]
        ),
        'given_name = "Mary"': lambda r: r.attributes["given_name"] == "Mary",
        'name ^= "Mary S"': lambda r: r.attributes.get("name", "").startswith("Mary S"),
        f'phone_number = "{phone}"': lambda r: r.attributes.get("phone_number") == phone,
        'cognito:user_status = "RESET_REQUIRED"': lambda r: r.status == "RESET_REQUIRED",
        'status = "Disabled"': lambda r: not r.enabled,
        'preferred_username ^= ""': lambda r: False,
    }
    for expression, wanted in cases.items():
        listed = read(cognito, UserPoolId=pool_id, Filter=expression)
        assert [u["Username"] for u in listed] == [r.username for r in generated if wanted(r)], expression


def test_bad_filters_are_refused_as_for_any_other_pool(cognito: Any, pool_id: str) -> None:
    ordinary = cognito.create_user_pool(PoolName="filter-errors")["UserPool"]["Id"]
    try:
        for expression in ('custom:tier = "pro"', 'email == "a"', "sub ^= a", 'given name = "x"'):
            expected = error_of(lambda e=expression: cognito.list_users(UserPoolId=ordinary, Filter=e))
            assert error_of(lambda e=expression: cognito.list_users(UserPoolId=pool_id, Filter=e)) == expected
            assert expected[0] == "InvalidParameterException"
    finally:
        cognito.delete_user_pool(UserPoolId=ordinary)


def test_every_pool_refuses_a_page_of_more_than_60_as_cognito_does(cognito: Any, pool_id: str) -> None:
    ordinary = cognito.create_user_pool(PoolName="page-limit")["UserPool"]["Id"]
    cognito.create_group(UserPoolId=ordinary, GroupName="g")
    try:
        for call in (
            lambda: cognito.list_users(UserPoolId=ordinary, Limit=61),
            lambda: cognito.list_users_in_group(UserPoolId=ordinary, GroupName="g", Limit=61),
        ):
            assert error_of(call) == (
                "InvalidParameterException",
                "1 validation error detected: Value '61' at 'limit' failed to satisfy constraint: "
                "Member must have value less than or equal to 60",
            )
        assert cognito.list_users(UserPoolId=ordinary, Limit=60)["Users"] == []
    finally:
        cognito.delete_user_pool(UserPoolId=ordinary)


def test_pages_are_at_most_60_and_their_tokens_stable_and_signed(cognito: Any, pool_id: str) -> None:
    assert error_of(lambda: cognito.list_users(UserPoolId=pool_id, Limit=61)) == (
        "InvalidParameterException",
        "1 validation error detected: Value '61' at 'limit' failed to satisfy constraint: "
        "Member must have value less than or equal to 60",
    )
    shard = {"UserPoolId": pool_id, "Filter": 'sub ^= "7"', "Limit": 10}
    first, again = cognito.list_users(**shard), cognito.list_users(**shard)
    token = first["PaginationToken"]
    assert again["PaginationToken"] == token and len(first["Users"]) == 10
    second = cognito.list_users(**shard, PaginationToken=token)
    assert cognito.list_users(**shard, PaginationToken=token)["Users"] == second["Users"]
    assert not {u["Username"] for u in first["Users"]} & {u["Username"] for u in second["Users"]}
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    other_shard = {**shard, "Filter": 'sub ^= "8"'}
    for request in ({**shard, "PaginationToken": tampered}, {**other_shard, "PaginationToken": token}):
        code, message = error_of(lambda r=request: cognito.list_users(**r))
        assert code == "InvalidParameterException"
        assert re.fullmatch(
            rf"Paging marker {re.escape(request['PaginationToken'])} is invalid for request \S+", message
        )
    code, _ = error_of(lambda: cognito.list_users_in_group(UserPoolId=pool_id, GroupName="viewers", NextToken=token))
    assert code == "InvalidParameterException"
    assert error_of(lambda: cognito.list_users_in_group(UserPoolId=pool_id, GroupName="nope"))[0] == (
        "ResourceNotFoundException"
    )


def test_the_virtual_pool_is_read_only(cognito: Any, pool_id: str, generated: list[LegacyUser]) -> None:
    username = generated[0].username
    writes = [
        lambda: cognito.admin_create_user(UserPoolId=pool_id, Username="new.user1"),
        lambda: cognito.admin_delete_user(UserPoolId=pool_id, Username=username),
        lambda: cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName="admins"),
        lambda: cognito.admin_list_groups_for_user(UserPoolId=pool_id, Username=username),
        lambda: cognito.update_user_pool(UserPoolId=pool_id, MfaConfiguration="OFF"),
        lambda: cognito.create_group(UserPoolId=pool_id, GroupName="new"),
        lambda: cognito.delete_user_pool(UserPoolId=pool_id),
    ]
    for write in writes:
        code, message = error_of(write)
        assert code == "NotAuthorizedException" and f"{pool_id} is a virtual pool" in message and "read-only" in message
    assert cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]["EstimatedNumberOfUsers"] == USERS


def test_the_user_list_quota_and_latency_apply(local_aws: LocalAWS, pool_id: str) -> None:
    assert local_aws.faults is not None
    client = boto3.client(
        "cognito-idp",
        region_name=REGION,
        endpoint_url=local_aws.endpoint_url,
        config=Config(retries={"max_attempts": 0}),
    )
    local_aws.faults.enforce_quotas(scale=0.2)  # UserList: 6 requests/s
    try:
        codes = []
        for _ in range(20):
            try:
                client.list_users_in_group(UserPoolId=pool_id, GroupName="viewers", Limit=1)
                codes.append("ok")
            except ClientError as exc:
                codes.append(exc.response["Error"]["Code"])
        assert codes.count("ok") <= 7 and set(codes) == {"ok", "TooManyRequestsException"}
        local_aws.faults.enforce_quotas(latency_s=0.3)
        started = time.perf_counter()
        client.list_users(UserPoolId=pool_id, Filter='sub ^= "1"', Limit=1)
        assert time.perf_counter() - started >= 0.3
    finally:
        local_aws.faults.clear()


# --- the same users elsewhere, and at 10 million ---------------------------------------------------------


def test_another_local_aws_from_the_command_line_serves_the_same_users(cognito: Any, pool_id: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    command = [sys.executable, "-m", "cognito_migration.local", "serve", "--port", "0", "--users", "0"]
    server = subprocess.Popen(
        [*command, "--virtual-users", str(USERS), "--seed", str(SEED)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert server.stdout is not None
        printed = [server.stdout.readline() for _ in range(4)]
        other_id = re.search(r"virtual pool (\S+): 5000 users", printed[2])
        exported = dict(re.findall(r"(AWS_\w+)=(\S+)", printed[3]))
        assert other_id is not None, printed
        other = boto3.client(
            "cognito-idp",
            endpoint_url=exported.pop("AWS_ENDPOINT_URL"),
            region_name=exported.pop("AWS_DEFAULT_REGION"),
            aws_access_key_id=exported["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exported["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=exported["AWS_SESSION_TOKEN"],
        )
        for shard in ('sub ^= "3"', 'sub ^= "c4"'):
            there = read(other, UserPoolId=other_id[1], Filter=shard)
            assert there == read(cognito, UserPoolId=pool_id, Filter=shard)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_another_seed_makes_other_users() -> None:
    one, other = VirtualUsers(USERS, SEED), VirtualUsers(USERS, SEED + 1)
    assert all(one.user(i).sub != other.user(i).sub for i in range(0, USERS, 97))
    assert virtual.truth(USERS, SEED).shards != virtual.truth(USERS, SEED + 1).shards


def test_a_10_million_user_pool_costs_no_more_memory_than_a_small_one(local_aws: LocalAWS) -> None:
    virtual.remove_virtual_pool(local_aws.add_virtual_pool(10, seed=SEED))  # moto's one-time imports and caches
    sizes = {}
    for users in (1000, 10_000_000):
        tracemalloc.start()
        pool_id = local_aws.add_virtual_pool(users, seed=SEED)
        made = tracemalloc.get_traced_memory()[0]
        generator = virtual.users_of(pool_id)
        generator.user(users - 1), generator.group_residues("viewers")  # its tables, built at first use
        sizes[users] = made, tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        virtual.remove_virtual_pool(pool_id)
    made, used = sizes[10_000_000]
    assert made < 100_000 and used < 1_000_000
    assert abs(used - sizes[1000][1]) < 20_000


def test_a_10_million_user_pool_answers_its_last_page_as_its_first(local_aws: LocalAWS, cognito: Any) -> None:
    users = 10_000_000
    pool_id = local_aws.add_virtual_pool(users, seed=SEED)
    try:
        generator = virtual.users_of(pool_id)
        pool = cognitoidp_backends[DEFAULT_ACCOUNT_ID][REGION].user_pools[pool_id]
        assert isinstance(pool, virtual.VirtualUserPool)
        truth = virtual.truth(users, SEED)
        for expression, count, selector in (
            ('sub ^= "a3"', truth.shards["a3"], 'sub ^= "a3"'),
            ('sub ^= "e"', truth.shards["e"], 'sub ^= "e"'),
            (None, users, ""),
        ):
            request = {"UserPoolId": pool_id, **({"Filter": expression} if expression else {})}
            before = generator.work
            first = cognito.list_users(**request)
            first_work = generator.work - before
            # The token of the shard's last page, as the server would sign it after (count - 1) // 60 pages.
            last_start = generator_index(generator, expression, (count - 1) // 60 * 60)
            token = pool.tokens.encode(virtual.token_scope("ListUsers", pool_id, selector), last_start)
            before = generator.work
            last = cognito.list_users(**request, PaginationToken=token)
            assert generator.work - before <= first_work == 60, expression
            assert len(first["Users"]) == 60 and len(last["Users"]) == count - (count - 1) // 60 * 60
            assert "PaginationToken" not in last
        before = generator.work
        last_user = generator.user(users - 1)
        assert cognito.admin_get_user(UserPoolId=pool_id, Username=last_user.username)["Username"] == last_user.username
        assert generator.work - before < 10
        described = cognito.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        assert described["EstimatedNumberOfUsers"] == users
    finally:
        virtual.remove_virtual_pool(pool_id)


def generator_index(users: VirtualUsers, expression: str | None, position: int) -> int:
    """The index of the user at ``position`` in a sub shard's listing (or the whole pool's)."""
    if expression is None:
        return position
    prefix = expression.split('"')[1]
    residue = users.residue_of_sub_prefix(prefix)
    assert residue is not None
    return residue + position * 16 ** len(prefix)
