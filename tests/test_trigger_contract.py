"""The trigger's contract with Cognito, case by case: canned events for every trigger source (shaped as the
AWS developer guide and seed 004 show) with the handler called directly, then the deployed zip through the
local AWS's sign-in, forgot-password and sign-up paths."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError

from cognito_migration import attachment, deploy, params, report, signup_index
from cognito_migration.local.legacy import GROUP_NAMES, LegacyPool, LegacyUser, seed_legacy_pool
from cognito_migration.local.server import LocalAWS
from trigger_support import (
    EVENTS,
    FAKE_PASSWORD,
    FakeCognito,
    FakeIndex,
    FakeUser,
    alice,
    load_event,
    load_trigger,
)

trigger = load_trigger()

REGION = "us-east-1"
ACCOUNT = "123456789012"
OLD_POOL = "us-east-1_OldPool01"
GENERIC = "Incorrect username or password"
RESPONSE_KEYS = {
    "userAttributes",
    "finalUserStatus",
    "messageAction",
    "desiredDeliveryMediums",
    "forceAliasCreation",
    "enableSMSMFA",
}
PASSWORD_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
ALLOWED = "email,email_verified,name,phone_number,phone_number_verified,preferred_username,custom:tier"
INDEX_TABLE = "migration-signup-index"
INDEX_SECRET = "ab" * 32


# --- the handler called directly with canned events -----------------------------------------------------


@pytest.fixture
def direct(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> Iterator[dict[str, FakeCognito]]:
    """The trigger configured from scratch, with fake old and new pools; yields them by role."""
    for name in list(os.environ):
        if name.startswith(("OLD_", "NEW_", "ATTRIBUTE_", "ALLOWED_", "LEGACY_", "MFA_", "SIGNUP_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("OLD_USER_POOL_ID", OLD_POOL)
    monkeypatch.setenv("OLD_CLIENT_ID", "oldpoolclient000000000001")
    monkeypatch.setenv("ALLOWED_ATTRIBUTES", ALLOWED)
    monkeypatch.setenv("SIGNUP_INDEX_TABLE", INDEX_TABLE)
    monkeypatch.setenv("SIGNUP_INDEX_KEY", INDEX_SECRET)
    caplog.set_level(logging.INFO, logger="migration_trigger")
    # The index holds alice as step 3 writes her: the old pool's own spelling of each value.
    held = (("username", "alice"), ("email", "alice@example.com"), ("phone_number", "+15555550100"))
    pools = {
        "old": FakeCognito({"alice": alice()}),
        "new": FakeCognito({"alice": FakeUser()}),
        "index": FakeIndex(trigger, INDEX_SECRET, INDEX_TABLE, held),
    }
    monkeypatch.setattr(trigger, "_clients", pools)
    monkeypatch.setattr(trigger, "_proofs", {})
    monkeypatch.setattr(trigger, "_copied", {})
    yield pools
    assert FAKE_PASSWORD not in caplog.text


def logged(caplog: pytest.LogCaptureFixture) -> dict[str, Any]:
    *_, line = [json.loads(r.getMessage()) for r in caplog.records if r.name == "migration_trigger"]
    return line


def test_every_trigger_source_has_a_canned_event():
    sources = {json.loads(path.read_text())["triggerSource"] for path in EVENTS.glob("*.json")}
    assert sources == set(trigger.TRIGGER_SOURCES)
    for path in EVENTS.glob("*.json"):
        event = json.loads(path.read_text())
        assert {"version", "triggerSource", "region", "userPoolId", "userName", "callerContext", "request"} <= set(
            event
        ), path.name
        assert event["response"] == {} or event["triggerSource"].startswith("PreSignUp"), path.name


@pytest.mark.parametrize("name", ["user_migration_authentication", "user_migration_forgot_password"])
def test_migration_response_has_only_documented_keys(direct, lambda_context, name):
    event = trigger.handler(load_event(name), lambda_context)

    response = event["response"]
    assert set(response) <= RESPONSE_KEYS
    assert response["finalUserStatus"] in ("CONFIRMED", "RESET_REQUIRED")
    assert response["messageAction"] == "SUPPRESS" and response["forceAliasCreation"] is False
    assert all(isinstance(v, str) for v in response["userAttributes"].values())
    assert not {"sub", "identities", "cognito:user_status"} & set(response["userAttributes"])
    # Everything else in the event is given back untouched.
    assert {k: v for k, v in event.items() if k != "response"} == {
        k: v for k, v in load_event(name).items() if k != "response"
    }


@pytest.mark.parametrize(
    "name",
    ["post_authentication", "pre_sign_up_sign_up", "pre_sign_up_external_provider", "pre_sign_up_admin_create_user"],
)
def test_other_sources_return_the_event_unchanged(direct, lambda_context, name):
    assert trigger.handler(load_event(name), lambda_context) == load_event(name)


# Usernames -----------------------------------------------------------------------------------------------


def alias_sign_in(context: Any, typed: str, password: str = FAKE_PASSWORD) -> dict[str, Any]:
    event = load_event("user_migration_authentication")
    event["userName"], event["request"]["password"] = typed, password
    return dict(trigger.handler(event, context)["response"])


def test_alias_typed_returns_the_old_username_found_with_list_users(direct, lambda_context, caplog, monkeypatch):
    monkeypatch.setenv("NEW_ALIAS_ATTRIBUTES", "email")

    response = alias_sign_in(lambda_context, "alice@example.com")

    assert response["userAttributes"]["username"] == "alice"
    assert response["userAttributes"]["email"] == "alice@example.com"
    assert [call for call, _ in direct["old"].calls] == ["list_users", "admin_initiate_auth"]
    assert logged(caplog)["old_pool_calls"] == 2


def test_alias_the_old_pool_knows_is_resolved_by_the_old_pool(direct, lambda_context, monkeypatch):
    monkeypatch.setenv("NEW_ALIAS_ATTRIBUTES", "email")
    monkeypatch.setenv("OLD_SIGN_IN_ATTRIBUTES", "email")
    direct["old"].aliases = ("email",)

    response = alias_sign_in(lambda_context, "alice@example.com")

    assert response["userAttributes"]["username"] == "alice"
    assert [call for call, _ in direct["old"].calls] == ["admin_initiate_auth", "admin_get_user"]


def test_alias_typed_with_the_wrong_password_is_the_generic_refusal(direct, lambda_context, monkeypatch):
    monkeypatch.setenv("NEW_ALIAS_ATTRIBUTES", "email")
    for typed in ("alice@example.com", "nobody@example.com"):
        with pytest.raises(trigger.Refused, match=f"^{GENERIC}$"):
            alias_sign_in(lambda_context, typed, "wrong-but-fake")


def test_unverified_email_is_not_an_alias(direct, lambda_context, monkeypatch):
    monkeypatch.setenv("NEW_ALIAS_ATTRIBUTES", "email")
    direct["old"].users["alice"] = alice(attributes={"email_verified": "false"})
    with pytest.raises(trigger.Refused, match=f"^{GENERIC}$"):
        alias_sign_in(lambda_context, "alice@example.com")


def test_email_shared_by_two_old_users_is_refused_after_the_password_matched(
    direct, lambda_context, caplog, monkeypatch
):
    monkeypatch.setenv("NEW_ALIAS_ATTRIBUTES", "email")
    direct["old"].users["alice2"] = alice(password="another-fake-one")

    with pytest.raises(trigger.Refused, match=f"^{GENERIC}$"):
        alias_sign_in(lambda_context, "alice@example.com", "neither-of-them")
    with pytest.raises(trigger.Refused, match="more than one account uses this email"):
        alias_sign_in(lambda_context, "alice@example.com")
    assert logged(caplog)["reason"] == "alias_shared"


def test_emails_differing_only_by_case_are_a_case_collision(direct, lambda_context, caplog, monkeypatch):
    monkeypatch.setenv("NEW_ALIAS_ATTRIBUTES", "email")
    twin = alice(password="another-fake-one", attributes={"email": "Alice@Example.com"})
    old = direct["old"]
    old.users["Alice"] = twin
    # A ListUsers that ignores case (AWS does not document which it does) finds both twins.
    exact = old.list_users
    old.list_users = lambda **kw: {  # type: ignore[method-assign]
        "Users": exact(**kw)["Users"] + exact(**{**kw, "Filter": 'email = "Alice@Example.com"'})["Users"]
    }

    with pytest.raises(trigger.Refused, match="more than one account"):
        alias_sign_in(lambda_context, "alice@example.com")
    assert logged(caplog)["reason"] == "case_collision"


def test_email_as_username_pool_wants_the_email_and_returns_no_username(direct, lambda_context, monkeypatch):
    monkeypatch.setenv("NEW_USERNAME_ATTRIBUTES", "email")

    response = alias_sign_in(lambda_context, "alice@example.com")
    assert "username" not in response["userAttributes"]
    calls = len(direct["old"].calls)
    with pytest.raises(trigger.Refused, match="Sign in with your email instead of your username"):
        alias_sign_in(lambda_context, "alice")
    with pytest.raises(trigger.Refused, match="Sign in with your email instead of your username"):
        trigger.handler(load_event("user_migration_forgot_password"), lambda_context)
    assert len(direct["old"].calls) == calls  # refused before any look-up: nobody learns who exists


def test_old_username_shaped_like_an_email_cannot_enter_an_email_alias_pool(direct, lambda_context, monkeypatch):
    monkeypatch.setenv("NEW_ALIAS_ATTRIBUTES", "email")
    direct["old"].users = {"alice@example.com": alice()}
    with pytest.raises(trigger.Refused, match="username is an email address") as refused:
        alias_sign_in(lambda_context, "alice@example.com")
    assert refused.value.reason == "username_is_email"


@pytest.mark.parametrize(
    "typed, old_name, case_sensitive, expected",
    [
        ("alice", "alice", False, None),
        ("ALICE", "Alice", False, None),  # what was typed, exactly: never another spelling of it
        ("ALICE", "Alice", True, "case_mismatch"),
        ("alice@example.com", "Alice", False, "Alice"),  # an alias: the contract wants the username
        ("ally", "Alice", True, "Alice"),  # a preferred_username the old pool resolved: not a case mismatch
    ],
)
def test_new_username_follows_the_new_pool_case_rules(typed, old_name, case_sensitive, expected):
    aliases = frozenset({"email", "preferred_username"})
    settings = trigger.Settings(OLD_POOL, "c", REGION, new_alias_attributes=aliases, new_case_sensitive=case_sensitive)
    kind = trigger.sign_in_kind(typed, settings)
    if expected == "case_mismatch":
        with pytest.raises(trigger.Refused, match="letter case matters"):
            trigger.new_username(typed, kind, old_name, settings)
        return
    assert trigger.new_username(typed, kind, old_name, settings) == expected


def test_alias_only_the_old_pool_accepts_is_refused(direct, lambda_context, monkeypatch):
    # The old pool signs Alice in by email, but the new pool has no email alias: she could never come back.
    monkeypatch.setenv("OLD_SIGN_IN_ATTRIBUTES", "email")
    direct["old"].aliases = ("email",)
    with pytest.raises(trigger.Refused, match="^Sign in with your username$") as refused:
        alias_sign_in(lambda_context, "alice@example.com")
    assert refused.value.reason == "alias_not_accepted"


# Sign-up squatting guard --------------------------------------------------------------------------------


def sign_up_event(username: str, email: str, source: str = "pre_sign_up_sign_up") -> dict[str, Any]:
    event = load_event(source)
    event["userName"], event["request"]["userAttributes"]["email"] = username, email
    return event


@pytest.mark.parametrize(
    "username, email, reason",
    [
        ("alice", "someone@example.com", "held_by_old_user_username"),
        ("ALICE", "someone@example.com", "held_by_old_user_username"),
        ("Ａｌｉｃｅ", "someone@example.com", "held_by_old_user_username"),  # full-width: NFKC folds it too
        ("mallory", "alice@example.com", "held_by_old_user_email"),
        ("mallory", "ALICE@Example.COM", "held_by_old_user_email"),
        ("alice", "alice@example.com", "held_by_old_user_username"),
    ],
)
def test_sign_up_with_an_unmigrated_users_name_or_email_in_any_case_is_refused_with_one_message(
    direct, lambda_context, caplog, username, email, reason
):
    with pytest.raises(trigger.Refused) as refused:
        trigger.handler(sign_up_event(username, email), lambda_context)
    assert str(refused.value) == trigger.SIGN_UP_REFUSAL  # the same words whatever matched: no email oracle
    line = logged(caplog)
    assert line["reason"] == reason
    # The same work whether or not anything matched: every key is looked up; the old pool is never asked.
    assert (line["index_calls"], line["old_pool_calls"], line["sts_calls"]) == (2, 0, 0)
    assert direct["old"].calls == []


def test_sign_up_with_a_free_name_is_allowed_after_the_same_look_ups(direct, lambda_context, caplog):
    event = sign_up_event("mallory", "mallory@example.com")
    assert trigger.handler(event, lambda_context) == sign_up_event("mallory", "mallory@example.com")
    line = logged(caplog)
    assert line["outcome"] == "allowed" and (line["index_calls"], line["old_pool_calls"]) == (2, 0)
    assert direct["old"].calls == []


def test_sign_up_phone_number_is_looked_up_only_where_the_new_pool_signs_in_by_phone(
    direct, lambda_context, caplog, monkeypatch
):
    event = sign_up_event("mallory", "mallory@example.com")
    event["request"]["userAttributes"]["phone_number"] = "+15555550100"
    trigger.handler(json.loads(json.dumps(event)), lambda_context)  # a username pool: the phone is nobody's key

    monkeypatch.setenv("NEW_ALIAS_ATTRIBUTES", "phone_number")
    with pytest.raises(trigger.Refused, match=f"^{trigger.SIGN_UP_REFUSAL}$"):
        trigger.handler(event, lambda_context)
    assert logged(caplog)["reason"] == "held_by_old_user_phone_number"


def test_email_as_username_pool_looks_up_the_email_only(direct, lambda_context, caplog, monkeypatch):
    monkeypatch.setenv("NEW_USERNAME_ATTRIBUTES", "email")
    trigger.handler(sign_up_event("alice", "mallory@example.com"), lambda_context)  # userName is Cognito's id
    assert logged(caplog)["index_calls"] == 1
    with pytest.raises(trigger.Refused, match=f"^{trigger.SIGN_UP_REFUSAL}$"):
        trigger.handler(sign_up_event(str(uuid.uuid4()), "Alice@Example.com"), lambda_context)


def test_external_provider_is_checked_by_email_only_and_admins_pass(direct, lambda_context, caplog):
    with pytest.raises(trigger.Refused):
        trigger.handler(sign_up_event("Google_1", "alice@example.com", "pre_sign_up_external_provider"), lambda_context)
    trigger.handler(sign_up_event("alice", "alice@example.com", "pre_sign_up_admin_create_user"), lambda_context)
    assert logged(caplog)["reason"] == "admin_create_user" and logged(caplog)["index_calls"] == 0


@pytest.mark.parametrize(
    "failure",
    [
        ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "GetItem"),
        ClientError({"Error": {"Code": "AccessDeniedException"}}, "GetItem"),
    ],
)
def test_sign_up_guard_fails_closed_when_the_index_cannot_be_read(direct, lambda_context, caplog, failure):
    direct["index"].fail_with = failure
    with pytest.raises(trigger.Unavailable):
        trigger.handler(sign_up_event("mallory", "mallory@example.com"), lambda_context)
    assert logged(caplog)["reason"] == f"signup_index_{failure.response['Error']['Code']}"


@pytest.mark.parametrize("missing", ["SIGNUP_INDEX_TABLE", "SIGNUP_INDEX_KEY"])
def test_sign_up_guard_fails_closed_without_its_index(direct, lambda_context, caplog, monkeypatch, missing):
    monkeypatch.delenv(missing)
    with pytest.raises(trigger.Unavailable):
        trigger.handler(sign_up_event("mallory", "mallory@example.com"), lambda_context)
    assert logged(caplog)["reason"] == "signup_index_not_configured"
    # A migration does not need the index: sign-ins go on.
    assert trigger.handler(load_event("user_migration_authentication"), lambda_context)["response"]


def test_sign_up_guard_fails_closed_when_the_table_does_not_exist(direct, lambda_context, monkeypatch):
    monkeypatch.setenv("SIGNUP_INDEX_TABLE", "some-other-table")
    with pytest.raises(trigger.Unavailable):
        trigger.handler(sign_up_event("mallory", "mallory@example.com"), lambda_context)


def test_post_authentication_in_an_email_pool_finds_the_old_user_by_verified_email(direct, lambda_context, monkeypatch):
    monkeypatch.setenv("NEW_USERNAME_ATTRIBUTES", "email")
    monkeypatch.setenv("ALLOWED_ATTRIBUTES", f"{ALLOWED},{trigger.GROUPS_MARKER}")
    direct["old"].users["alice"].groups = ["editors"]
    new_name = str(uuid.uuid4())
    direct["new"].users[new_name] = FakeUser(attributes={trigger.GROUPS_MARKER: "1"})
    direct["new"].groups = {"editors"}
    event = load_event("post_authentication")
    event["userName"] = new_name
    event["request"]["userAttributes"][trigger.GROUPS_MARKER] = "1"

    trigger.handler(event, lambda_context)

    assert direct["new"].users[new_name].groups == ["editors"]


# --- through the local AWS: the deployed zip behind real sign-ins ---------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def legacy(local_aws: LocalAWS) -> LegacyPool:
    return seed_legacy_pool(users=120, seed=11, region=REGION)


@pytest.fixture(scope="module")
def role_arn(local_aws: LocalAWS) -> str:
    iam = boto3.client("iam", region_name=REGION, endpoint_url=local_aws.endpoint_url)
    role = iam.create_role(RoleName=unique("trigger-role"), AssumeRolePolicyDocument=json.dumps(deploy.TRUST_POLICY))
    return str(role["Role"]["Arn"])


def string_attribute(name: str, required: bool = False, mutable: bool = True) -> dict[str, Any]:
    return {"Name": name, "AttributeDataType": "String", "Mutable": mutable, "Required": required}


NEW_SCHEMA = [
    string_attribute("email", required=True),
    string_attribute("name", required=True),
    string_attribute("tier"),
    string_attribute("groups_pending"),
]


@pytest.fixture
def new_pool(cognito: Any, lam: Any, logs: Any, dynamodb: Any, role_arn: str, legacy: LegacyPool) -> Callable[..., Any]:
    """Creates a new pool (`pool` settings) with the legacy groups, deploys the real trigger to it with
    `settings` as parameters and its sign-up index filled from the old pool (as step 3 does), and returns a
    NewPool to sign in to and read the trigger's log lines from."""

    def make(
        pool: dict[str, Any] | None = None, schema: list[dict[str, Any]] | None = None, **settings: Any
    ) -> NewPool:
        created = cognito.create_user_pool(
            PoolName=unique("users-v2"),
            Schema=schema or NEW_SCHEMA,
            **{"UsernameConfiguration": {"CaseSensitive": False}, **(pool or {})},
        )["UserPool"]
        client = cognito.create_user_pool_client(
            UserPoolId=created["Id"], ClientName="app", ExplicitAuthFlows=PASSWORD_FLOWS
        )["UserPoolClient"]
        for group in GROUP_NAMES:
            cognito.create_group(UserPoolId=created["Id"], GroupName=group)
        name = unique("migration")
        values = {
            "migration_function_name": name,
            "region": REGION,
            "old_user_pool_id": legacy.pool_id,
            "old_client_id": legacy.migration_client_id,
            "target_required_attributes": ["email", "name"],
            "attribute_defaults": {"name": "Unknown"},
            **settings,
        }
        described = cognito.describe_user_pool(UserPoolId=created["Id"])["UserPool"]
        # An old pool in another account is out of this account's sight, as in AWS.
        old_id = values["old_user_pool_id"]
        old = {} if "old_role_arn" in settings else cognito.describe_user_pool(UserPoolId=old_id)["UserPool"]
        secret = signup_index.new_key()
        environment = deploy.function_environment(params.validate(values), described, old, secret)
        if old:
            table = signup_index.table_name_for(name)
            signup_index.build(cognito, dynamodb, old_id, table, secret)
        arn = lam.create_function(
            FunctionName=name,
            Runtime=deploy.RUNTIME,
            Role=role_arn,
            Handler=deploy.HANDLER,
            Timeout=deploy.TIMEOUT_S,
            Code={"ZipFile": deploy.build_package().zip_bytes},
            Environment={"Variables": environment},
        )["FunctionArn"]
        # A new function is Pending for a while, and Cognito cannot run it until it is Active.
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        deploy.ensure_permission(lam, name, created["Arn"])
        attachment.attach_triggers(cognito, created["Id"], {t: arn for t in deploy.TRIGGERS})
        return NewPool(cognito, logs, created["Id"], client["ClientId"], name)

    return make


class NewPool:
    def __init__(self, cognito: Any, logs: Any, pool_id: str, client_id: str, function_name: str) -> None:
        self.cognito, self.logs, self.id, self.client_id, self.function_name = (
            cognito,
            logs,
            pool_id,
            client_id,
            function_name,
        )

    def sign_in(self, name: str, password: str) -> dict[str, Any]:
        return dict(
            self.cognito.initiate_auth(
                ClientId=self.client_id,
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": name, "PASSWORD": password},
            )
        )

    def sign_up(self, username: str, email: str) -> dict[str, Any]:
        return dict(
            self.cognito.sign_up(
                ClientId=self.client_id,
                Username=username,
                Password="Squ4tting!Guard",
                UserAttributes=[{"Name": "email", "Value": email}, {"Name": "name", "Value": "New Person"}],
            )
        )

    def refusal(self, call: Callable[[], Any]) -> tuple[str, str]:
        with pytest.raises(ClientError) as exc_info:
            call()
        error = exc_info.value.response["Error"]
        return error["Code"], error["Message"]

    def user(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.cognito.admin_get_user(UserPoolId=self.id, Username=name))
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "UserNotFoundException"
            return None

    def attributes(self, name: str) -> dict[str, str]:
        return {a["Name"]: a["Value"] for a in (self.user(name) or {}).get("UserAttributes", [])}

    def groups(self, name: str) -> set[str]:
        answer = self.cognito.admin_list_groups_for_user(UserPoolId=self.id, Username=name)
        return {g["GroupName"] for g in answer["Groups"]}

    def log_lines(self, count: int) -> list[dict[str, Any]]:
        """The trigger's JSON lines, oldest first, once `count` of them have arrived."""
        deadline = time.monotonic() + 10
        while True:
            try:
                events = self.logs.filter_log_events(logGroupName=f"/aws/lambda/{self.function_name}")["events"]
            except ClientError:
                events = []
            lines = [json.loads(e["message"][e["message"].index("{") :]) for e in events if "{" in e["message"]]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines
            time.sleep(0.05)


def plain(legacy: LegacyPool, *, groups: int = 0, mfa: str | None = None) -> LegacyUser:
    """An enabled CONFIRMED legacy user with a verified email, unique ignoring case."""
    return next(
        u
        for u in legacy.users
        if u.status == "CONFIRMED"
        and u.enabled
        and u.mfa == mfa
        and len(u.groups) >= groups
        and u.attributes.get("email_verified") == "true"
        and not {"case_duplicate_username", "case_duplicate_email", "missing_name"} & u.quirks
    )


def test_local_plain_user_migrates_and_later_sign_ins_cost_no_old_pool_call(new_pool, legacy):
    user = plain(legacy, groups=2)
    pool = new_pool()
    password = legacy.password(user.username)

    assert "AccessToken" in pool.sign_in(user.username, password)["AuthenticationResult"]
    assert "AccessToken" in pool.sign_in(user.username, password)["AuthenticationResult"]

    assert pool.groups(user.username) == set(user.groups)
    assert trigger.GROUPS_MARKER not in pool.attributes(user.username)
    migration, first_copy, second = pool.log_lines(3)
    assert (migration["outcome"], migration["old_pool_calls"]) == ("migrated", 2)
    assert first_copy["trigger"] == "PostAuthentication_Authentication" and first_copy["old_pool_calls"] == 1
    assert (second["outcome"], second["old_pool_calls"], second["new_pool_calls"]) == ("nothing_to_copy", 0, 0)


def test_local_alias_pool_returns_the_old_username_for_an_email_sign_in(new_pool, legacy):
    user = plain(legacy)
    pool = new_pool({"AliasAttributes": ["email"]})
    password, email = legacy.password(user.username), user.attributes["email"]

    assert "AccessToken" in pool.sign_in(email, password)["AuthenticationResult"]

    assert pool.user(user.username)["Username"] == user.username
    assert "AccessToken" in pool.sign_in(user.username, password)["AuthenticationResult"]
    assert "AccessToken" in pool.sign_in(email.upper(), password)["AuthenticationResult"]
    migration, *_ = pool.log_lines(1)
    assert (migration["outcome"], migration["old_pool_calls"]) == ("migrated", 2)  # ListUsers + the password


def test_local_alias_of_a_migrated_users_email_twin_is_refused_not_merged(new_pool, legacy, cognito):
    password = "Tw1n!Passw0rd-x"
    twins = [unique("twin"), unique("twin")]
    for username, email in zip(twins, ("twin@example.com", "Twin@Example.com"), strict=True):
        cognito.admin_create_user(
            UserPoolId=legacy.pool_id,
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[{"Name": "email", "Value": email}, {"Name": "email_verified", "Value": "true"}],
        )
        cognito.admin_set_user_password(UserPoolId=legacy.pool_id, Username=username, Password=password, Permanent=True)
    pool = new_pool({"AliasAttributes": ["email"]})
    pool.sign_in(twins[0], password)

    refusal = pool.refusal(lambda: pool.sign_in(twins[1], password))

    assert refusal == ("AliasExistsException", "An account with the given email already exists.")
    assert pool.user(twins[1]) is None
    assert pool.attributes(twins[0])["email"] == "twin@example.com"


def test_local_email_as_username_pool(new_pool, legacy):
    user = plain(legacy, groups=1)
    pool = new_pool({"UsernameAttributes": ["email"]})
    password, email = legacy.password(user.username), user.attributes["email"]

    code, message = pool.refusal(lambda: pool.sign_in(user.username, password))
    assert code == "UserLambdaValidationException" and "Sign in with your email" in message
    assert "AccessToken" in pool.sign_in(email, password)["AuthenticationResult"]
    assert pool.attributes(email)["email"] == email
    # Cognito named the user after a new id: the group copy found the old user by the verified email.
    assert pool.user(email)["Username"] != user.username
    assert pool.groups(email) == set(user.groups)


def test_local_email_as_username_keeps_the_old_pools_spelling_of_the_email(new_pool, legacy):
    user = plain(legacy)
    pool = new_pool({"UsernameAttributes": ["email"]})
    password, email = legacy.password(user.username), user.attributes["email"]

    assert "AccessToken" in pool.sign_in(email.upper(), password)["AuthenticationResult"]

    assert pool.attributes(email)["email"] == email, "as the trigger returned it, not as typed"
    assert "AccessToken" in pool.sign_in(email, password)["AuthenticationResult"]


@pytest.mark.parametrize(
    "old_case_sensitive, new_case_sensitive, expected",
    [
        (True, True, "refused: the old pool knows no BOB.SMITH"),
        (True, False, "refused: the old pool knows no BOB.SMITH"),
        (False, True, "refused: letter case matters"),
        (False, False, "migrated as typed"),
    ],
)
def test_local_a_user_typing_another_case_under_each_case_rule(
    new_pool, cognito, old_case_sensitive, new_case_sensitive, expected
):
    """Old user Bob.Smith (in a group) types BOB.SMITH: the sign-in, the group copy and step 5's report."""
    old = cognito.create_user_pool(PoolName=unique("old"), UsernameConfiguration={"CaseSensitive": old_case_sensitive})[
        "UserPool"
    ]
    old_client = cognito.create_user_pool_client(
        UserPoolId=old["Id"], ClientName="migration", ExplicitAuthFlows=PASSWORD_FLOWS
    )["UserPoolClient"]
    password, group = "Case!Rul3s-Pass", GROUP_NAMES[0]
    cognito.admin_create_user(
        UserPoolId=old["Id"],
        Username="Bob.Smith",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "bob@example.com"}, {"Name": "email_verified", "Value": "true"}],
    )
    cognito.admin_set_user_password(UserPoolId=old["Id"], Username="Bob.Smith", Password=password, Permanent=True)
    cognito.create_group(UserPoolId=old["Id"], GroupName=group)
    cognito.admin_add_user_to_group(UserPoolId=old["Id"], Username="Bob.Smith", GroupName=group)
    pool = new_pool(
        {"UsernameConfiguration": {"CaseSensitive": new_case_sensitive}},
        old_user_pool_id=old["Id"],
        old_client_id=old_client["ClientId"],
    )

    if expected.startswith("refused"):
        code, message = pool.refusal(lambda: pool.sign_in("BOB.SMITH", password))
        wording = "letter case matters" if "letter case" in expected else GENERIC
        assert code == "UserLambdaValidationException" and wording in message
        assert pool.user("BOB.SMITH") is None and pool.user("Bob.Smith") is None
        new_users = pd.DataFrame({"username": pd.Series([], dtype=object)})
    else:
        assert "AccessToken" in pool.sign_in("BOB.SMITH", password)["AuthenticationResult"]
        # Created exactly as typed (the contract), found in any case, its groups copied from the old pool.
        assert pool.user("bob.smith")["Username"] == "BOB.SMITH"
        assert "AccessToken" in pool.sign_in("Bob.Smith", password)["AuthenticationResult"]
        assert pool.groups("Bob.Smith") == {group}
        new_users = pd.DataFrame({"username": ["BOB.SMITH"]})
    old_users = pd.DataFrame(
        {"username": ["Bob.Smith"], "status": ["CONFIRMED"], "enabled": [True], "email": ["bob@example.com"]}
    )
    [state] = report.classify(old_users, new_users, case_sensitive=new_case_sensitive)["state"]
    assert state == (report.MIGRATED if expected == "migrated as typed" else report.NOT_YET)


def test_local_forgot_password_and_mfa_users(new_pool, legacy):
    user, mfa_user = plain(legacy), plain(legacy, mfa="SMS_MFA")
    pool = new_pool()

    answer = pool.cognito.forgot_password(ClientId=pool.client_id, Username=user.username)
    code, _ = pool.refusal(lambda: pool.sign_in(mfa_user.username, legacy.password(mfa_user.username)))

    assert "CodeDeliveryDetails" in answer
    assert pool.user(user.username)["UserStatus"] == "RESET_REQUIRED"
    assert code == "PasswordResetRequiredException"
    assert pool.user(mfa_user.username)["UserStatus"] == "RESET_REQUIRED"
    forgot, mfa = pool.log_lines(2)
    assert (forgot["reason"], forgot["old_pool_calls"]) == ("forgot_password", 1)
    assert (mfa["reason"], mfa["old_pool_calls"]) == ("mfa_reset_required", 2)


@pytest.fixture
def mfa_on_pool(cognito: Any, local_aws: LocalAWS) -> dict[str, Any]:
    """An old pool whose MfaConfiguration is ON, its migration client, an SMS-MFA user, a user who never set up a
    factor (the pool would make them: MFA_SETUP) and their password."""
    old = cognito.create_user_pool(PoolName=unique("old-mfa-on"), MfaConfiguration="ON")["UserPool"]
    cognito.set_user_pool_mfa_config(
        UserPoolId=old["Id"],
        MfaConfiguration="ON",
        SmsMfaConfiguration={"SmsConfiguration": {"SnsCallerArn": f"arn:aws:iam::{ACCOUNT}:role/sms"}},
    )
    client = cognito.create_user_pool_client(
        UserPoolId=old["Id"], ClientName="migration", ExplicitAuthFlows=PASSWORD_FLOWS
    )["UserPoolClient"]
    password, users = "Mfa!0n-Passw0rd", {"sms": unique("sms-user"), "no_factor": unique("no-factor")}
    for number, username in enumerate(users.values()):
        cognito.admin_create_user(
            UserPoolId=old["Id"],
            Username=username,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": f"{username}@example.com"},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "phone_number", "Value": f"+1555000{number:04d}"},
                {"Name": "phone_number_verified", "Value": "true"},
            ],
        )
        cognito.admin_set_user_password(UserPoolId=old["Id"], Username=username, Password=password, Permanent=True)
    cognito.admin_set_user_mfa_preference(
        UserPoolId=old["Id"], Username=users["sms"], SMSMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
    return {"old_user_pool_id": old["Id"], "old_client_id": client["ClientId"], "users": users, "password": password}


# The words of an MFA refusal at sign-in; Cognito adds the full stop.
MFA_REFUSED = "UserMigration failed with error {}.".format(
    "Accounts with multi-factor authentication cannot be migrated at sign-in. Contact support."
)


def test_local_refuse_refuses_forgot_password_of_an_mfa_on_pool(new_pool, mfa_on_pool):
    settings = {k: mfa_on_pool[k] for k in ("old_user_pool_id", "old_client_id")}
    refusing = new_pool(mfa_policy="refuse", **settings)
    resetting = new_pool(mfa_policy="reset_required", **settings)
    sms_user, no_factor = mfa_on_pool["users"]["sms"], mfa_on_pool["users"]["no_factor"]

    for username in (sms_user, no_factor):  # in an ON pool everyone passes a second factor
        code, message = refusing.refusal(
            lambda name=username: refusing.cognito.forgot_password(ClientId=refusing.client_id, Username=name)
        )
        # An unknown user's words: without a password, forgot-password must not tell who has MFA.
        assert (code, message) == ("UserLambdaValidationException", f"UserMigration failed with error {GENERIC}.")
        assert refusing.user(username) is None
    # A password sign-in proved who asks: it gets the MFA refusal's own words.
    code, message = refusing.refusal(lambda: refusing.sign_in(sms_user, mfa_on_pool["password"]))
    assert message == MFA_REFUSED
    assert [line["reason"] for line in refusing.log_lines(3)] == ["mfa_refused"] * 3

    resetting.cognito.forgot_password(ClientId=resetting.client_id, Username=sms_user)
    assert resetting.user(sms_user)["UserStatus"] == "RESET_REQUIRED"


SIGN_UP_REFUSED = ("UserLambdaValidationException", f"PreSignUp failed with error {trigger.SIGN_UP_REFUSAL}.")


def test_local_sign_up_squatting_guard(new_pool, legacy):
    user = plain(legacy)
    pool = new_pool()

    taken_name = pool.refusal(lambda: pool.sign_up(user.username, "someone-new@example.com"))
    taken_email = pool.refusal(lambda: pool.sign_up(unique("newcomer"), user.attributes["email"].upper()))
    free = pool.sign_up(unique("newcomer"), f"{unique('newcomer')}@example.com")

    assert taken_name == taken_email == SIGN_UP_REFUSED
    assert free["UserConfirmed"] is False
    assert pool.user(user.username) is None


@pytest.fixture
def mixed_case_old_pool(cognito: Any) -> dict[str, str]:
    """A case-SENSITIVE old pool holding Zed.Mixedcase (email Zed@Example.com)."""
    old = cognito.create_user_pool(PoolName=unique("old"), UsernameConfiguration={"CaseSensitive": True})["UserPool"]
    old_client = cognito.create_user_pool_client(
        UserPoolId=old["Id"], ClientName="migration", ExplicitAuthFlows=PASSWORD_FLOWS
    )["UserPoolClient"]
    cognito.admin_create_user(
        UserPoolId=old["Id"],
        Username="Zed.Mixedcase",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "Zed@Example.com"}, {"Name": "email_verified", "Value": "true"}],
    )
    return {"old_user_pool_id": old["Id"], "old_client_id": old_client["ClientId"]}


def test_local_sign_up_guard_ignores_letter_case_and_never_lists_users(new_pool, mixed_case_old_pool, local_aws):
    pool = new_pool(**mixed_case_old_pool)  # case-insensitive, as the fixture creates it

    with local_aws.requests.record() as requests:
        refusals = [
            pool.refusal(lambda: pool.sign_up("ZED.MIXEDCASE", f"{unique('x')}@example.com")),
            pool.refusal(lambda: pool.sign_up("zed.mixedcase", f"{unique('x')}@example.com")),
            pool.refusal(lambda: pool.sign_up("Zed.Mixedcase", f"{unique('x')}@example.com")),
            pool.refusal(lambda: pool.sign_up(unique("fresh"), "ZED@EXAMPLE.COM")),
        ]
        newcomer = unique("newcomer")
        pool.sign_up(newcomer, f"{newcomer}@example.com")
    operations = [action for _, action in requests]

    assert refusals == [SIGN_UP_REFUSED] * 4  # one answer whatever matched: no username or email oracle
    assert pool.user(newcomer) is not None
    assert pool.user("ZED.MIXEDCASE") is None
    assert "ListUsers" not in operations  # the guard spends nothing of the old pool's quota
    assert operations.count("GetItem") == 10  # username and email, for each of the five sign-ups
    lines = pool.log_lines(5)
    assert {(line["old_pool_calls"], line["index_calls"]) for line in lines} == {(0, 2)}


def test_local_sign_up_guard_fails_closed_without_its_table(new_pool, mixed_case_old_pool, dynamodb):
    pool = new_pool(**mixed_case_old_pool)
    dynamodb.delete_table(TableName=signup_index.table_name_for(pool.function_name))

    code, message = pool.refusal(lambda: pool.sign_up(unique("newcomer"), f"{unique('newcomer')}@example.com"))

    assert (code, message) == ("UserLambdaValidationException", f"PreSignUp failed with error {trigger.UNAVAILABLE}.")
    (line,) = pool.log_lines(1)
    assert line["reason"] == "signup_index_ResourceNotFoundException"


def test_local_attribute_map_and_legacy_sub(new_pool, legacy):
    user = plain(legacy)
    schema = [*NEW_SCHEMA, string_attribute("legacy_sub", mutable=False), string_attribute("plan")]
    pool = new_pool(
        schema=schema,
        legacy_sub_attribute="custom:legacy_sub",
        attribute_map={
            "name": {"join": ["family_name", "given_name"], "separator": ", "},
            "custom:plan": "custom:tier",
        },
    )

    pool.sign_in(user.username, legacy.password(user.username))

    attributes = pool.attributes(user.username)
    assert attributes["name"] == f"{user.attributes['family_name']}, {user.attributes['given_name']}"
    assert attributes.get("custom:plan") == user.attributes.get("custom:tier")
    assert attributes["custom:legacy_sub"] == user.sub != attributes["sub"]


def test_local_cross_account_cross_region_old_pool_through_an_assumed_role(new_pool, local_aws):
    from moto.sts.models import sts_backends

    other_account, other_region = "111111111111", "eu-west-1"
    far = seed_legacy_pool(users=30, seed=5, region=other_region, account_id=other_account)
    user = next(u for u in far.users if u.status == "CONFIRMED" and u.enabled and u.mfa is None)
    role = f"arn:aws:iam::{other_account}:role/old-pool-reader"
    pool = new_pool(
        region=other_region,
        old_user_pool_id=far.pool_id,
        old_client_id=far.migration_client_id,
        old_role_arn=role,
        old_external_id="migration-2026",
    )

    assert "AccessToken" in pool.sign_in(user.username, far.password(user.username))["AuthenticationResult"]
    pool.sign_in(user.username, far.password(user.username))

    migration, copy, _ = pool.log_lines(3)
    assert migration["outcome"] == "migrated" and migration["sts_calls"] == 1
    assert copy["sts_calls"] == 0  # the same warm container reuses the credentials
    assumed = [r for r in sts_backends[other_account]["aws"].assumed_roles if r.role_arn == role]
    assert assumed and {r.external_id for r in assumed} == {"migration-2026"}


# The 5-second budget, against the local AWS's injected old-pool latency ------------------------------


@pytest.fixture
def slow_old_pool(local_aws: LocalAWS) -> Iterator[Callable[..., None]]:
    def slow(**latency_s: float) -> None:
        for operation, seconds in latency_s.items():
            local_aws.faults.add(operation, latency_s=seconds)

    yield slow
    local_aws.faults.clear()


def test_local_a_slow_old_pool_whose_work_fits_in_5_s_migrates(new_pool, legacy, local_aws, slow_old_pool):
    # 4.0 s of old-pool work: fixed 2 s read timeouts with 2 attempts each failed this sign-in.
    warm_up, user = [
        u
        for u in legacy.users
        if u.status == "CONFIRMED"
        and u.enabled
        and u.mfa is None
        and u.attributes.get("email_verified") == "true"
        and not u.quirks
    ][:2]
    pool = new_pool()
    # A warm container: a cold start's initialisation counts in Cognito's 5 s too, and then this sign-in
    # migrates at Cognito's second attempt (the password proven at the first is reused).
    pool.sign_in(warm_up.username, legacy.password(warm_up.username))
    timeouts = local_aws.middleware.stats.counts.get("timeout:UserMigration", 0)
    slow_old_pool(AdminInitiateAuth=1.8, AdminGetUser=2.2)

    answer = pool.sign_in(user.username, legacy.password(user.username))
    local_aws.faults.clear()

    assert "AccessToken" in answer["AuthenticationResult"]
    assert local_aws.middleware.stats.counts.get("timeout:UserMigration", 0) == timeouts
    *_, migration = [line for line in pool.log_lines(3) if line["trigger"] == "UserMigration_Authentication"]
    assert (migration["outcome"], migration["old_pool_calls"]) == ("migrated", 2) and migration["ms"] < 4750


def test_local_a_sign_in_that_cannot_fit_fails_closed_within_the_limit(new_pool, legacy, local_aws, slow_old_pool):
    user = plain(legacy)
    pool = new_pool()
    counts = dict(local_aws.middleware.stats.counts)
    slow_old_pool(AdminGetUser=5.0)  # more than any attempt's 5 s

    started = time.monotonic()
    code, message = pool.refusal(lambda: pool.sign_in(user.username, legacy.password(user.username)))
    elapsed = time.monotonic() - started
    local_aws.faults.clear()

    assert (code, message) == (
        "UserLambdaValidationException",
        f"UserMigration failed with error {trigger.UNAVAILABLE}.",
    )
    stats = local_aws.middleware.stats.counts
    # Answered (closed) before Cognito's 5 s: nothing was killed, and an answer is not retried.
    assert stats.get("timeout:UserMigration", 0) == counts.get("timeout:UserMigration", 0)
    assert stats.get("retried:UserMigration", 0) == counts.get("retried:UserMigration", 0)
    assert elapsed < 5
    (line,) = pool.log_lines(1)
    assert line["reason"] == "aws_ReadTimeoutError" and line["ms"] < 4800
    assert line["old_pool_calls"] == 2  # the password was checked; the user's read could not finish in time
    assert pool.user(user.username) is None


def test_local_enable_sms_mfa_fails_the_migration_on_a_pool_without_mfa_or_sms(new_pool, legacy):
    user = next(
        u
        for u in legacy.users
        if u.status == "CONFIRMED"
        and u.enabled
        and u.mfa == "SMS_MFA"
        and u.attributes.get("phone_number_verified") == "true"
        and u.attributes.get("email_verified") == "true"
        and not {"case_duplicate_username", "case_duplicate_email", "invalid_phone"} & u.quirks
    )
    pool = new_pool(mfa_policy="sms")  # MFA OFF, no SmsConfiguration: step 3's plan refuses this pool

    code, message = pool.refusal(lambda: pool.sign_in(user.username, legacy.password(user.username)))

    assert code == "InvalidParameterException" and message.startswith("enableSMSMFA cannot be honoured")
    assert "MFA configuration is OFF" in message and "SnsCallerArn" in message
    assert pool.user(user.username) is None


# --- existence oracles: the same answer and the same old-pool work whoever exists -------------------------------

WRONG_PASSWORD = "Wr0ng!Passw0rd-x"


def answer_and_work(local_aws: LocalAWS, pool: NewPool, call: Callable[[], Any]) -> tuple[tuple[str, str], list[str]]:
    """What the client is told, and every request the local AWS received meanwhile (the new pool's and the
    trigger's calls to the old pool)."""
    with local_aws.requests.record() as requests:
        answer = pool.refusal(call)
    return answer, [action for _, action in requests]


def legacy_user(legacy: LegacyPool, *, status: str = "CONFIRMED", enabled: bool = True, quirk: str = "") -> LegacyUser:
    return next(
        u
        for u in legacy.users
        if u.status == status
        and u.enabled == enabled
        and u.mfa is None
        and (not quirk or quirk in u.quirks)
        and not {"case_duplicate_username", "case_duplicate_email"} & u.quirks
    )


def test_local_username_sign_in_refusals_are_one_answer_for_the_same_work(new_pool, legacy, local_aws):
    pool = new_pool()
    known = plain(legacy)
    disabled = legacy_user(legacy, enabled=False)
    unconfirmed = legacy_user(legacy, status="UNCONFIRMED")
    attempts = {
        "wrong password": (known.username, WRONG_PASSWORD),
        "unknown": (unique("nobody"), WRONG_PASSWORD),
        "disabled, right password": (disabled.username, legacy.password(disabled.username)),
        "unconfirmed, right password": (unconfirmed.username, legacy.password(unconfirmed.username)),
    }

    seen = {
        why: answer_and_work(local_aws, pool, lambda n=name, p=password: pool.sign_in(n, p))
        for why, (name, password) in attempts.items()
    }

    assert len(set(map(repr, seen.values()))) == 1, seen
    (code, message), work = seen["unknown"]
    assert (code, message) == ("UserLambdaValidationException", f"UserMigration failed with error {GENERIC}.")
    assert work.count("AdminInitiateAuth") == 1 and "AdminGetUser" not in work
    assert {line["old_pool_calls"] for line in pool.log_lines(4)} == {1}


@pytest.mark.parametrize("spelling", [str.lower, str.upper], ids=["lowercase", "capitals"])
def test_local_email_alias_sign_in_costs_the_same_whether_anybody_holds_the_email(
    new_pool, legacy, local_aws, spelling
):
    pool = new_pool({"AliasAttributes": ["email"]})
    email = plain(legacy).attributes["email"]
    nobody = f"{unique('nobody')}@example.com"

    known = answer_and_work(local_aws, pool, lambda: pool.sign_in(spelling(email), WRONG_PASSWORD))
    unknown = answer_and_work(local_aws, pool, lambda: pool.sign_in(spelling(nobody), WRONG_PASSWORD))

    assert known == unknown
    (_, message), work = known
    assert message == f"UserMigration failed with error {GENERIC}."
    assert work.count("AdminInitiateAuth") == 1  # the password check, or a decoy's where nobody matched
    assert work.count("ListUsers") == (1 if spelling is str.lower else 2)  # as typed and lowercase
    known_line, unknown_line = pool.log_lines(2)
    assert known_line["old_pool_calls"] == unknown_line["old_pool_calls"]
    assert (known_line["reason"], unknown_line["reason"]) == ("not_authorized", "user_not_found")


def test_local_forgot_password_refusals_are_one_answer_for_the_same_work(new_pool, legacy, local_aws):
    pool = new_pool()
    no_contact = legacy_user(legacy, quirk="no_verified_contact")
    disabled = legacy_user(legacy, enabled=False)
    names = {"no verified contact": no_contact.username, "disabled": disabled.username, "unknown": unique("nobody")}

    seen = {
        why: answer_and_work(
            local_aws, pool, lambda n=name: pool.cognito.forgot_password(ClientId=pool.client_id, Username=n)
        )
        for why, name in names.items()
    }

    assert len(set(map(repr, seen.values()))) == 1, seen
    (code, message), work = seen["unknown"]
    assert (code, message) == ("UserLambdaValidationException", f"UserMigration failed with error {GENERIC}.")
    assert work.count("AdminGetUser") == 1
    reasons = [line["reason"] for line in pool.log_lines(3)]
    assert reasons == ["no_verified_contact", "disabled", "user_not_found"], "the log still says why"


def test_local_no_password_reaches_the_logs_or_the_emulators_output_under_faults(new_pool, legacy, local_aws, capfd):
    user = plain(legacy)
    password = legacy.password(user.username)
    pool = new_pool()
    assert local_aws.faults is not None
    local_aws.faults.add("AdminInitiateAuth", error=1.0)  # the old pool answers HTTP 500 to every password check
    try:
        answers = [
            pool.refusal(lambda: pool.sign_in(user.username, password)),
            pool.refusal(lambda: pool.sign_in(password, password)),  # a password typed as the username, too
        ]
    finally:
        local_aws.faults.clear()

    lines = pool.log_lines(2)
    events = pool.logs.filter_log_events(logGroupName=f"/aws/lambda/{pool.function_name}")["events"]
    out, err = capfd.readouterr()
    assert answers == [("UserLambdaValidationException", f"UserMigration failed with error {trigger.UNAVAILABLE}.")] * 2
    assert [line["reason"] for line in lines] == ["aws_InternalErrorException"] * 2
    for text in (*(e["message"] for e in events), out, err):
        assert password not in text and user.username not in text
