"""The legacy-pool generator: reproducible records with exact quirk counts, and a seeded moto pool that
answers over HTTP as a real legacy pool would."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.cognitoidp.models import cognitoidp_backends
from moto.server import ThreadedMotoServer

from cognito_migration.local.legacy import (
    DEFAULT_ACCOUNT_ID,
    GROUP_NAMES,
    LEGACY_MIGRATION_CLIENT_ID,
    LEGACY_POOL_NAME,
    LEGACY_WEB_CLIENT_ID,
    LegacyPool,
    LegacyUser,
    demo_password,
    expected_migrated,
    expected_migration,
    generate_users,
    legacy_pool_id,
    replay_sample,
    replay_wave,
    seed_legacy_pool,
    wrong_password,
)

REGION = "us-east-1"
HTTP_USERS = 300
E164 = re.compile(r"^\+[1-9]\d{1,14}$")


def documented_counts(n: int) -> dict[str, int]:
    """The rule from generate_users' docstring, restated independently of the module."""
    pct = {
        "unconfirmed": 3,
        "force_change_password": 2,
        "reset_required": 1,
        "disabled": 2,
        "sms_mfa": 4,
        "totp_mfa": 2,
        "no_verified_contact": 2,
        "bad_phone": 1,
        "missing_name": 5,
        "no_custom_attributes": 10,
        "multi_group": 20,
    }
    counts = {quirk: n * p // 100 for quirk, p in pct.items()}
    counts["case_duplicate_username"] = counts["case_duplicate_email"] = 2 * (n // 200)
    return counts


@pytest.fixture(scope="module")
def users() -> list[LegacyUser]:
    return generate_users(2000, seed=7)


def test_same_seed_gives_identical_users() -> None:
    assert generate_users(500, seed=3) == generate_users(500, seed=3)


def test_different_seed_gives_different_users() -> None:
    first, second = generate_users(500, seed=3), generate_users(500, seed=4)
    assert [u.username for u in first] != [u.username for u in second]


def test_every_quirk_has_its_documented_exact_count(users: list[LegacyUser]) -> None:
    counted = Counter(q for u in users for q in u.quirks)
    assert dict(counted) == documented_counts(2000)


def test_state_quirks_match_status_enabled_and_mfa(users: list[LegacyUser]) -> None:
    for u in users:
        assert ("unconfirmed" in u.quirks) == (u.status == "UNCONFIRMED")
        assert ("force_change_password" in u.quirks) == (u.status == "FORCE_CHANGE_PASSWORD")
        assert ("reset_required" in u.quirks) == (u.status == "RESET_REQUIRED")
        assert ("disabled" in u.quirks) == (not u.enabled)
        assert ("sms_mfa" in u.quirks) == (u.mfa == "SMS_MFA")
        assert ("totp_mfa" in u.quirks) == (u.mfa == "SOFTWARE_TOKEN_MFA")


def test_attribute_quirks_match_the_attributes(users: list[LegacyUser]) -> None:
    for u in users:
        a = u.attributes
        verified = "true" in (a.get("email_verified"), a.get("phone_number_verified"))
        assert ("no_verified_contact" in u.quirks) == (not verified)
        phone = a.get("phone_number")
        assert ("bad_phone" in u.quirks) == (phone is not None and not E164.match(phone))
        assert ("missing_name" in u.quirks) == ("name" not in a)
        has_custom = "custom:tier" in a and "custom:signup_year" in a
        assert ("no_custom_attributes" in u.quirks) == (not has_custom)
        if has_custom:
            assert a["custom:tier"] in {"free", "pro", "enterprise"}
            assert a["custom:signup_year"] == str(u.created_at.year)
        assert ("multi_group" in u.quirks) == (2 <= len(u.groups) <= 5)
        assert len(u.groups) <= 5 and set(u.groups) <= set(GROUP_NAMES)
        if u.mfa == "SMS_MFA":
            assert phone and E164.match(phone) and a["phone_number_verified"] == "true"
        assert u.username.isascii()


def test_case_duplicates_come_in_pairs(users: list[LegacyUser]) -> None:
    by_username = Counter(u.username.lower() for u in users)
    by_email = Counter(u.attributes["email"].lower() for u in users)
    assert len({u.username for u in users}) == len(users)  # the old pool is case-sensitive
    assert len({u.attributes["email"] for u in users}) == len(users)
    for u in users:
        assert ("case_duplicate_username" in u.quirks) == (by_username[u.username.lower()] == 2)
        assert ("case_duplicate_email" in u.quirks) == (by_email[u.attributes["email"].lower()] == 2)
    assert max(by_username.values()) == max(by_email.values()) == 2


def test_unverified_users_include_some_that_would_become_reset_required(users: list[LegacyUser]) -> None:
    stranded = [
        u for u in users if "no_verified_contact" in u.quirks and u.quirks & {"force_change_password", "totp_mfa"}
    ]
    assert len(stranded) == 2000 * 2 // 100 // 4
    assert not any(expected_migration(u) for u in stranded)


def test_created_dates_span_several_years(users: list[LegacyUser]) -> None:
    assert len({u.created_at.year for u in users}) >= 6


@pytest.mark.parametrize("username", ["jane.doe42", "Jane.Doe42", "x", "émile"])
def test_demo_password_meets_the_policy_and_is_stable(username: str) -> None:
    password = demo_password(username, 7)
    assert len(password) >= 12
    assert re.search(r"[A-Z]", password) and re.search(r"[a-z]", password) and re.search(r"\d", password)
    assert re.search(r"[\^$*.\[\]{}()?\"!@#%&/\\,><':;|_~`=+\-]", password)
    assert demo_password(username, 7) == password
    assert demo_password(username, 8) != password
    assert wrong_password(username, 7) != password


def test_passwords_differ_between_case_duplicates() -> None:
    assert demo_password("jane.doe42", 7) != demo_password("Jane.Doe42", 7)


def test_expected_migration_follows_the_status_rules(users: list[LegacyUser]) -> None:
    for u in users:
        if not u.enabled or u.status in ("UNCONFIRMED", "RESET_REQUIRED"):
            assert not expected_migration(u)
        elif u.status == "CONFIRMED" and u.mfa is None:
            assert expected_migration(u)


def test_only_the_first_of_a_case_pair_migrates() -> None:
    legacy = LegacyPool("p", REGION, DEFAULT_ACCOUNT_ID, "m", "w", 7, generate_users(400, seed=7))
    pair = sorted({u.username.lower() for u in legacy.users if "case_duplicate_username" in u.quirks})[0]
    lower, upper = sorted((u.username for u in legacy.users if u.username.lower() == pair), reverse=True)
    for name in (lower, upper):  # make both eligible so that only the order decides
        object.__setattr__(legacy.user(name), "status", "CONFIRMED")
        object.__setattr__(legacy.user(name), "enabled", True)
        object.__setattr__(legacy.user(name), "mfa", None)
    assert expected_migrated(legacy, [upper, lower]) == {upper}
    assert expected_migrated(legacy, [lower, upper]) == {lower}
    assert expected_migrated(legacy, [lower, upper], case_sensitive=True) == {lower, upper}


def test_replay_sample_is_recomputable() -> None:
    legacy = LegacyPool("p", REGION, DEFAULT_ACCOUNT_ID, "m", "w", 7, generate_users(200, seed=7))
    sample = replay_sample(legacy, 0.3)
    assert sample == replay_sample(legacy, 0.3) and len(sample) == 60 and len(set(sample)) == 60
    with pytest.raises(ValueError):
        replay_sample(legacy, 1.5)


def test_seeding_twice_leaves_one_pool_with_the_fixed_id() -> None:
    seed_legacy_pool(users=50, seed=1, region=REGION)
    legacy = seed_legacy_pool(users=120, seed=7, region=REGION)
    backend = cognitoidp_backends[DEFAULT_ACCOUNT_ID][REGION]
    same_name = [p for p in backend.user_pools.values() if p.name == LEGACY_POOL_NAME]
    assert [p.id for p in same_name] == [legacy_pool_id(REGION)] == [legacy.pool_id]
    pool = same_name[0]
    assert len(pool.users) == 120
    assert set(pool.clients) == {LEGACY_MIGRATION_CLIENT_ID, LEGACY_WEB_CLIENT_ID}
    assert {"custom:tier", "custom:signup_year", "email", "name"} <= set(pool.schema_attributes)
    assert pool.schema_attributes["email"].required
    assert not any(n.startswith("custom:custom:") for n in pool.schema_attributes)


# --- over HTTP, against moto's server running in this process ---------------------------------------


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def legacy(endpoint: str) -> LegacyPool:
    return seed_legacy_pool(users=HTTP_USERS, seed=7, region=REGION)


@pytest.fixture(scope="module")
def cognito(endpoint: str) -> Any:
    return boto3.client(
        "cognito-idp",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _all(cognito: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [item for page in cognito.get_paginator(operation).paginate(**kwargs) for item in page[key]]


def _first(legacy: LegacyPool, **wanted: Any) -> LegacyUser:
    return next(u for u in legacy.users if all(getattr(u, k) == v for k, v in wanted.items()))


def test_http_pool_has_the_legacy_configuration(legacy: LegacyPool, cognito: Any) -> None:
    pool = cognito.describe_user_pool(UserPoolId=legacy.pool_id)["UserPool"]
    assert pool["Arn"] == legacy.arn and pool["UsernameConfiguration"] == {"CaseSensitive": True}
    assert pool["DeletionProtection"] == "ACTIVE" and pool["UserPoolTags"] == {"app": "legacy"}
    client = cognito.describe_user_pool_client(UserPoolId=legacy.pool_id, ClientId=LEGACY_WEB_CLIENT_ID)
    assert "ALLOW_USER_SRP_AUTH" in client["UserPoolClient"]["ExplicitAuthFlows"]


def test_http_list_users_pages_return_every_user(legacy: LegacyPool, cognito: Any) -> None:
    listed = _all(cognito, "list_users", "Users", UserPoolId=legacy.pool_id)
    assert sorted(u["Username"] for u in listed) == sorted(u.username for u in legacy.users)
    by_name = {u["Username"]: u for u in listed}
    for record in legacy.users:
        user = by_name[record.username]
        assert user["UserStatus"] == record.status and user["Enabled"] == record.enabled
        attributes = {a["Name"]: a["Value"] for a in user["Attributes"]}
        assert attributes.pop("sub") == record.sub and attributes == record.attributes


def test_http_groups_and_memberships_match_the_records(legacy: LegacyPool, cognito: Any) -> None:
    first_page = cognito.list_groups(UserPoolId=legacy.pool_id, Limit=10)
    assert len(first_page["Groups"]) == 10 and "NextToken" in first_page  # peers stop here
    groups = _all(cognito, "list_groups", "Groups", UserPoolId=legacy.pool_id)
    assert sorted(g["GroupName"] for g in groups) == sorted(GROUP_NAMES)
    for name in GROUP_NAMES:
        members = _all(cognito, "list_users_in_group", "Users", UserPoolId=legacy.pool_id, GroupName=name)
        assert {m["Username"] for m in members} == {u.username for u in legacy.users if name in u.groups}


def _admin_sign_in(cognito: Any, legacy: LegacyPool, username: str, password: str) -> dict[str, Any]:
    return cognito.admin_initiate_auth(  # type: ignore[no-any-return]
        UserPoolId=legacy.pool_id,
        ClientId=legacy.migration_client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": username, "PASSWORD": password},
    )


def test_http_confirmed_user_gets_tokens(legacy: LegacyPool, cognito: Any) -> None:
    user = _first(legacy, status="CONFIRMED", enabled=True, mfa=None)
    response = _admin_sign_in(cognito, legacy, user.username, legacy.password(user.username))
    assert "IdToken" in response["AuthenticationResult"]


def test_http_sms_mfa_user_gets_a_challenge(legacy: LegacyPool, cognito: Any) -> None:
    user = _first(legacy, mfa="SMS_MFA")
    response = _admin_sign_in(cognito, legacy, user.username, legacy.password(user.username))
    assert response["ChallengeName"] == "SMS_MFA" and "AuthenticationResult" not in response


def test_http_wrong_password_is_refused(legacy: LegacyPool, cognito: Any) -> None:
    user = _first(legacy, status="CONFIRMED", enabled=True, mfa=None)
    with pytest.raises(ClientError) as caught:
        _admin_sign_in(cognito, legacy, user.username, wrong_password(user.username, legacy.seed))
    assert caught.value.response["Error"]["Code"] == "NotAuthorizedException"


def test_replay_wave_records_outcomes_without_passwords(legacy: LegacyPool, cognito: Any, endpoint: str) -> None:
    # A new pool without a trigger: nobody exists there yet, so every sign-in is a UserNotFoundException.
    new_pool = cognito.create_user_pool(PoolName="replay-target")["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=new_pool, ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    try:
        result = replay_wave(legacy, client_id, share=0.2, endpoint_url=endpoint)
    finally:
        cognito.delete_user_pool(UserPoolId=new_pool)
    assert list(result.outcomes) == replay_sample(legacy, 0.2)
    assert result.counts == Counter({"UserNotFoundException": round(0.2 * HTTP_USERS)})
    assert not any(legacy.password(u) in repr(result) for u in result.outcomes)
