"""Unit tests of the migration trigger: the handler called directly with fake old/new Cognito clients."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from trigger_support import (
    FAKE_PASSWORD,
    FakeCognito,
    FakeSTS,
    FakeUser,
    alice,
    client_error,
    load_event,
    load_trigger,
)

trigger = load_trigger()

REGION = "us-east-1"
OLD_POOL = "us-east-1_OldPool01"
NEW_POOL = "us-east-1_NewPool01"
ALLOWED = "email,email_verified,name,phone_number,phone_number_verified,custom:tier,custom:legacy_sub"
MFA_CHALLENGES = ["SMS_MFA", "SOFTWARE_TOKEN_MFA", "SELECT_MFA_TYPE", "EMAIL_OTP", "MFA_SETUP"]
GENERIC = "Incorrect username or password"
LOG_SECRET = "cd" * 32


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "OLD_REGION",
        "MFA_POLICY",
        "ATTRIBUTE_MAP",
        "OLD_ROLE_ARN",
        "OLD_EXTERNAL_ID",
        "OLD_SIGN_IN_ATTRIBUTES",
        "NEW_USERNAME_ATTRIBUTES",
        "NEW_ALIAS_ATTRIBUTES",
        "NEW_CASE_SENSITIVE",
        "OLD_MFA_CONFIGURATION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("OLD_USER_POOL_ID", OLD_POOL)
    monkeypatch.setenv("OLD_CLIENT_ID", "oldpoolclient000000000001")
    monkeypatch.setenv("ALLOWED_ATTRIBUTES", ALLOWED)
    monkeypatch.setenv("ATTRIBUTE_DEFAULTS", json.dumps({"name": "Unknown"}))
    monkeypatch.setenv("LEGACY_SUB_ATTRIBUTE", "custom:legacy_sub")
    # What a container remembers between invocations (retries of the same sign-in) starts empty per test.
    monkeypatch.setattr(trigger, "_proofs", {})
    monkeypatch.setattr(trigger, "_copied", {})
    monkeypatch.setenv("SIGNUP_INDEX_KEY", LOG_SECRET)  # step 3 always sets it; the log's `user` is keyed with it


@pytest.fixture(autouse=True)
def no_secrets_logged(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Any:
    """Whatever a test does, the password and the email never reach the logs or the console."""
    caplog.set_level(logging.INFO, logger="migration_trigger")
    yield
    out, err = capsys.readouterr()
    for text in (caplog.text, out, err):
        assert FAKE_PASSWORD not in text
        assert "alice@example.com" not in text


@pytest.fixture
def pools(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeCognito, FakeCognito]:
    old, new = FakeCognito({"alice": alice()}), FakeCognito()
    monkeypatch.setattr(trigger, "_clients", {"old": old, "new": new})
    return old, new


def log_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "migration_trigger"]


def sign_in(context: Any, username: str = "alice", password: str = FAKE_PASSWORD) -> dict[str, Any]:
    event = load_event("user_migration_authentication")
    event["userName"], event["request"]["password"] = username, password
    return trigger.handler(event, context)


# --- sign-in ------------------------------------------------------------------------------------------


def test_right_password_migrates_confirmed_with_allowed_attributes(pools, lambda_context, caplog):
    response = sign_in(lambda_context)["response"]

    assert response == {
        "userAttributes": {
            "email": "alice@example.com",
            "email_verified": "true",
            "phone_number": "+15555550100",
            "phone_number_verified": "true",
            "custom:tier": "gold",
            "name": "Unknown",  # default filled
            "custom:legacy_sub": "0b5e2d8c-1111-4c2a-9e0f-5a6b7c8d9e0f",
        },
        "finalUserStatus": "CONFIRMED",
        "messageAction": "SUPPRESS",
        "forceAliasCreation": False,
    }
    assert "sub" not in response["userAttributes"] and "locale" not in response["userAttributes"]
    [line] = log_lines(caplog)
    assert line["outcome"] == "migrated" and line["final_status"] == "CONFIRMED"
    assert line["old_pool_calls"] == 2 and line["trigger"] == "UserMigration_Authentication"
    assert line["user"] and "alice" not in json.dumps(line)


def test_without_allowed_list_every_attribute_but_sub_is_copied(pools, lambda_context, monkeypatch):
    for name in ("ALLOWED_ATTRIBUTES", "ATTRIBUTE_DEFAULTS", "LEGACY_SUB_ATTRIBUTE"):
        monkeypatch.delenv(name)
    attributes = sign_in(lambda_context)["response"]["userAttributes"]
    assert set(attributes) == {
        "email",
        "email_verified",
        "phone_number",
        "phone_number_verified",
        "custom:tier",
        "locale",
    }


def test_build_user_attributes_fills_empty_values_and_drops_sub():
    old = [
        {"Name": "sub", "Value": "s-1"},
        {"Name": "name", "Value": ""},
        {"Name": "email", "Value": "a@b.c"},
        {"Name": "identities", "Value": "[]"},
    ]
    attributes = trigger.build_user_attributes(old, {"sub", "name", "email"}, {"name": "-"}, None)
    assert attributes == {"name": "-", "email": "a@b.c"}


@pytest.mark.parametrize(
    "username, password, user",
    [
        pytest.param("alice", "wrong-but-fake", alice(), id="wrong_password"),
        pytest.param("nobody", FAKE_PASSWORD, alice(), id="unknown_user"),
        pytest.param("alice", FAKE_PASSWORD, alice(status="UNCONFIRMED"), id="unconfirmed"),
        pytest.param("alice", FAKE_PASSWORD, alice(status="RESET_REQUIRED"), id="reset_required_in_old_pool"),
        pytest.param("alice", FAKE_PASSWORD, alice(enabled=False), id="disabled"),
        pytest.param("alice", "", alice(), id="empty_password"),
    ],
)
def test_every_refusal_says_the_same_thing(pools, lambda_context, caplog, username, password, user):
    old, _ = pools
    old.users["alice"] = user
    event = load_event("user_migration_authentication")
    event["userName"], event["request"]["password"] = username, password

    with pytest.raises(trigger.Refused) as refused:
        trigger.handler(event, lambda_context)

    assert str(refused.value) == GENERIC
    assert event["response"] == {}
    [line] = log_lines(caplog)
    assert line["outcome"] == "refused" and line["final_status"] is None


@pytest.mark.parametrize("challenge", MFA_CHALLENGES)
@pytest.mark.parametrize(
    "policy, phone_verified, expected",
    [
        ("reset_required", "true", ("RESET_REQUIRED", False)),
        ("sms", "true", ("CONFIRMED", True)),
        ("sms", "false", ("RESET_REQUIRED", False)),
        ("refuse", "true", None),
    ],
)
def test_mfa_challenge_follows_the_policy(
    pools, lambda_context, monkeypatch, challenge, policy, phone_verified, expected
):
    old, _ = pools
    old.users["alice"] = alice(challenge=challenge, attributes={"phone_number_verified": phone_verified})
    monkeypatch.setenv("MFA_POLICY", policy)

    if expected is None:
        with pytest.raises(trigger.Refused, match="multi-factor"):
            sign_in(lambda_context)
        return
    response = sign_in(lambda_context)["response"]
    assert (response["finalUserStatus"], response.get("enableSMSMFA", False)) == expected


@pytest.mark.parametrize("policy", ["reset_required", "sms", "refuse"])
def test_temporary_password_migrates_as_reset_required(pools, lambda_context, monkeypatch, policy):
    old, _ = pools
    old.users["alice"] = alice(challenge="NEW_PASSWORD_REQUIRED")
    monkeypatch.setenv("MFA_POLICY", policy)
    assert sign_in(lambda_context)["response"]["finalUserStatus"] == "RESET_REQUIRED"


def test_unknown_challenge_is_refused(pools, lambda_context):
    old, _ = pools
    old.users["alice"] = alice(challenge="CUSTOM_CHALLENGE")
    with pytest.raises(trigger.Refused, match="cannot be migrated"):
        sign_in(lambda_context)


def test_reset_required_without_verified_contact_is_refused(pools, lambda_context):
    old, _ = pools
    old.users["alice"] = alice(
        challenge="SMS_MFA", attributes={"email_verified": "false", "phone_number_verified": "false"}
    )
    with pytest.raises(trigger.Refused, match="no verified email or phone"):
        sign_in(lambda_context)


def test_confirmed_user_needs_no_verified_contact(pools, lambda_context):
    old, _ = pools
    old.users["alice"] = alice(attributes={"email_verified": "false", "phone_number_verified": "false"})
    assert sign_in(lambda_context)["response"]["finalUserStatus"] == "CONFIRMED"


@pytest.mark.parametrize(
    "failure, requests",
    [
        (client_error("TooManyRequestsException", "AdminInitiateAuth"), 2),  # quick: retried once
        (ReadTimeoutError(endpoint_url="https://cognito-idp.us-east-1.amazonaws.com/"), 1),  # used the time left
    ],
    ids=["throttled", "timeout"],
)
def test_old_pool_failure_fails_closed(pools, lambda_context, caplog, failure, requests):
    old, _ = pools
    old.fail_with = failure
    with pytest.raises(trigger.Unavailable) as unavailable:
        sign_in(lambda_context)
    assert str(unavailable.value) == trigger.UNAVAILABLE
    [line] = log_lines(caplog)
    assert line["outcome"] == "error" and line["reason"].startswith("aws_")
    assert line["old_pool_calls"] == len(old.calls) == requests  # every request counted, retries included


def test_unexpected_error_is_logged_and_hidden(pools, lambda_context, caplog):
    old, _ = pools
    old.fail_with = RuntimeError(f"boom with {FAKE_PASSWORD} inside")
    with pytest.raises(trigger.Unavailable) as unavailable:
        sign_in(lambda_context)
    assert FAKE_PASSWORD not in str(unavailable.value)
    assert unavailable.value.__cause__ is None and unavailable.value.__suppress_context__
    [line] = log_lines(caplog)
    assert line["outcome"] == "error" and line["reason"] == "unexpected_RuntimeError"


# --- forgot password ----------------------------------------------------------------------------------


def forgot_password(context: Any, username: str = "alice") -> dict[str, Any]:
    event = load_event("user_migration_forgot_password")
    event["userName"] = username
    return trigger.handler(event, context)


def test_forgot_password_migrates_as_reset_required(pools, lambda_context, caplog):
    response = forgot_password(lambda_context)["response"]
    assert response["finalUserStatus"] == "RESET_REQUIRED" and response["messageAction"] == "SUPPRESS"
    assert response["userAttributes"]["email_verified"] == "true" and "sub" not in response["userAttributes"]
    [line] = log_lines(caplog)
    assert line["outcome"] == "migrated" and line["old_pool_calls"] == 1


@pytest.mark.parametrize(
    "username, user",
    [("nobody", alice()), ("alice", alice(enabled=False)), ("alice", alice(status="UNCONFIRMED"))],
    ids=["unknown", "disabled", "unconfirmed"],
)
def test_forgot_password_refuses_generically(pools, lambda_context, username, user):
    old, _ = pools
    old.users["alice"] = user
    with pytest.raises(trigger.Refused) as refused:
        forgot_password(lambda_context, username)
    assert str(refused.value) == GENERIC


def test_forgot_password_without_verified_contact_is_refused_as_an_unknown_user_is(pools, lambda_context, caplog):
    old, _ = pools
    old.users["alice"] = alice(attributes={"email_verified": "false", "phone_number": None})
    with pytest.raises(trigger.Refused, match=f"^{GENERIC}$"):
        forgot_password(lambda_context)
    with pytest.raises(trigger.Refused, match=f"^{GENERIC}$"):
        forgot_password(lambda_context, "nobody")
    known, unknown = log_lines(caplog)
    assert (known["reason"], unknown["reason"]) == ("no_verified_contact", "user_not_found")  # operators still see why
    assert known["old_pool_calls"] == unknown["old_pool_calls"] == 1


# --- mfa_policy refuse on the paths that meet no MFA challenge ----------------------------------------------


@pytest.mark.parametrize(
    "pool_mfa, user, refused",
    [
        ("ON", alice(), True),  # no factor yet: the old pool would make her set one up (MFA_SETUP)
        ("ON", alice(mfa=["SOFTWARE_TOKEN_MFA"]), True),
        ("OPTIONAL", alice(mfa=["SOFTWARE_TOKEN_MFA"]), True),
        ("OPTIONAL", alice(sms_mfa_option=True), True),
        ("OPTIONAL", alice(), False),
        ("OFF", alice(mfa=["SOFTWARE_TOKEN_MFA"]), False),  # an OFF pool never asks for the factor
        (None, alice(mfa=["SMS_MFA"]), True),  # unknown: any MFA setting counts
        (None, alice(), False),
    ],
    ids=["on-no-factor", "on-totp", "optional-totp", "optional-sms-option", "optional-none", "off-totp",
         "unknown-sms", "unknown-none"],
)  # fmt: skip
def test_forgot_password_refuses_mfa_users_under_refuse(
    pools, lambda_context, caplog, monkeypatch, pool_mfa, user, refused
):
    old, _ = pools
    old.users["alice"] = user
    monkeypatch.setenv("MFA_POLICY", "refuse")
    if pool_mfa:
        monkeypatch.setenv("OLD_MFA_CONFIGURATION", pool_mfa)

    if not refused:
        assert forgot_password(lambda_context)["response"]["finalUserStatus"] == "RESET_REQUIRED"
        return
    event = load_event("user_migration_forgot_password")
    with pytest.raises(trigger.Refused) as refusal:
        trigger.handler(event, lambda_context)
    assert str(refusal.value) == GENERIC  # an unknown user's words: no password proved who asks
    assert event["response"] == {}
    [line] = log_lines(caplog)
    assert (line["outcome"], line["reason"], line["old_pool_calls"]) == ("refused", "mfa_refused", 1)


@pytest.mark.parametrize("policy", ["reset_required", "sms"])
def test_forgot_password_migrates_mfa_users_under_other_policies(pools, lambda_context, monkeypatch, policy):
    old, _ = pools
    old.users["alice"] = alice(mfa=["SOFTWARE_TOKEN_MFA"])
    monkeypatch.setenv("MFA_POLICY", policy)
    monkeypatch.setenv("OLD_MFA_CONFIGURATION", "ON")
    assert forgot_password(lambda_context)["response"]["finalUserStatus"] == "RESET_REQUIRED"


def test_forgot_password_mfa_refusal_keeps_the_generic_refusals_and_comes_before_the_contact_check(
    pools, lambda_context, monkeypatch, caplog
):
    old, _ = pools
    monkeypatch.setenv("MFA_POLICY", "refuse")
    monkeypatch.setenv("OLD_MFA_CONFIGURATION", "ON")
    for user in (alice(enabled=False), alice(status="UNCONFIRMED")):
        old.users["alice"] = user
        with pytest.raises(trigger.Refused, match=f"^{GENERIC}$"):
            forgot_password(lambda_context)
    with pytest.raises(trigger.Refused, match=f"^{GENERIC}$"):
        forgot_password(lambda_context, "nobody")
    old.users["alice"] = alice(attributes={"email_verified": "false", "phone_number": None})
    with pytest.raises(trigger.Refused, match=f"^{GENERIC}$"):
        forgot_password(lambda_context)
    assert log_lines(caplog)[-1]["reason"] == "mfa_refused"


@pytest.mark.parametrize(
    "pool_mfa, user, calls, refused",
    [
        ("OPTIONAL", alice(mfa=["SOFTWARE_TOKEN_MFA"]), ["list_users", "admin_get_user"], True),
        ("OPTIONAL", alice(), ["list_users", "admin_get_user"], False),  # the same work, refused or not
        (None, alice(mfa=["SMS_MFA"]), ["list_users", "admin_get_user"], True),
        ("ON", alice(), ["list_users"], True),  # everyone counts: nothing more to read
        ("OFF", alice(mfa=["SMS_MFA"]), ["list_users"], False),
    ],
    ids=["optional-totp", "optional-none", "unknown-sms", "on", "off"],
)
def test_forgot_password_by_alias_reads_the_mfa_settings_list_users_lacks(
    pools, lambda_context, monkeypatch, pool_mfa, user, calls, refused
):
    old, _ = pools
    old.users["alice"] = user
    monkeypatch.setenv("MFA_POLICY", "refuse")
    monkeypatch.setenv("NEW_ALIAS_ATTRIBUTES", "email")  # the old pool has no alias: ListUsers finds her
    if pool_mfa:
        monkeypatch.setenv("OLD_MFA_CONFIGURATION", pool_mfa)

    if refused:
        with pytest.raises(trigger.Refused, match=f"^{GENERIC}$"):
            forgot_password(lambda_context, "alice@example.com")
    else:
        forgot_password(lambda_context, "alice@example.com")
    assert [call for call, _ in old.calls] == calls
    old.calls.clear()
    with pytest.raises(trigger.Refused, match=f"^{GENERIC}$"):
        forgot_password(lambda_context, "nobody@example.com")
    assert [call for call, _ in old.calls] == calls, "an unknown alias costs what a known one does"


@pytest.mark.parametrize(
    "pool_mfa, user, refused",
    [("ON", alice(), True), ("OPTIONAL", alice(mfa=["SMS_MFA"]), True), ("OPTIONAL", alice(), False)],
    ids=["on", "optional-sms", "optional-none"],
)
def test_temporary_password_of_an_mfa_user_is_refused_under_refuse(
    pools, lambda_context, monkeypatch, pool_mfa, user, refused
):
    old, _ = pools
    old.users["alice"] = dataclasses.replace(user, challenge="NEW_PASSWORD_REQUIRED")
    monkeypatch.setenv("MFA_POLICY", "refuse")
    monkeypatch.setenv("OLD_MFA_CONFIGURATION", pool_mfa)
    if refused:
        with pytest.raises(trigger.Refused, match="multi-factor"):
            sign_in(lambda_context)
    else:
        assert sign_in(lambda_context)["response"]["finalUserStatus"] == "RESET_REQUIRED"


# --- groups after sign-in -----------------------------------------------------------------------------


def test_group_copy_reads_every_page_and_adds_only_missing_groups(lambda_context, caplog, monkeypatch):
    wanted = [f"group-{n:02}" for n in range(25)]
    old = FakeCognito({"alice": FakeUser(groups=list(wanted))}, page_size=10)
    new = FakeCognito(
        {"alice": FakeUser(groups=["group-00", "group-01"])}, groups=set(wanted) - {"group-24"}, page_size=10
    )
    monkeypatch.setattr(trigger, "_clients", {"old": old, "new": new})
    event = load_event("post_authentication")

    assert trigger.handler(event, lambda_context) == load_event("post_authentication")

    assert sorted(new.users["alice"].groups) == wanted[:24]
    adds = [pool for call, pool in new.calls if call == "admin_add_user_to_group"]
    assert len(adds) == 23 and set(adds) == {NEW_POOL}
    assert ("admin_list_groups_for_user", OLD_POOL) in old.calls
    [line] = log_lines(caplog)
    assert line["outcome"] == "groups_copied" and line["old_pool_calls"] == 3
    assert len(line["groups_added"]) == 22 and line["groups_missing"] == ["group-24"]


def test_group_copy_skips_users_unknown_to_the_old_pool(lambda_context, caplog, monkeypatch):
    old, new = FakeCognito(), FakeCognito({"alice": FakeUser()})
    monkeypatch.setattr(trigger, "_clients", {"old": old, "new": new})
    trigger.handler(load_event("post_authentication"), lambda_context)
    [line] = log_lines(caplog)
    assert line["reason"] == "not_in_old_pool" and new.calls == []


# --- dispatch and configuration -----------------------------------------------------------------------


def test_unknown_trigger_source_raises(pools, lambda_context, caplog):
    event = load_event("user_migration_authentication")
    event["triggerSource"] = "PreAuthentication_Authentication"
    with pytest.raises(trigger.MigrationError, match="Unsupported trigger source"):
        trigger.handler(event, lambda_context)
    [line] = log_lines(caplog)
    assert line["outcome"] == "error" and line["reason"] == "unsupported_trigger"


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("OLD_USER_POOL_ID", None, "OLD_USER_POOL_ID is not set"),
        ("OLD_CLIENT_ID", "", "OLD_CLIENT_ID is not set"),
        ("MFA_POLICY", "maybe", "MFA_POLICY"),
        ("ATTRIBUTE_DEFAULTS", "{not json", "not valid JSON"),
        ("ATTRIBUTE_DEFAULTS", '{"name": 1}', "JSON object of strings"),
        ("ATTRIBUTE_DEFAULTS", '{"nickname": "x"}', "missing from ALLOWED_ATTRIBUTES"),
        ("LEGACY_SUB_ATTRIBUTE", "sub", "custom attribute"),
        ("AWS_REGION", None, "OLD_REGION"),
        ("ATTRIBUTE_MAP", '{"nickname": "name"}', "missing from ALLOWED_ATTRIBUTES"),
        ("ATTRIBUTE_MAP", '{"sub": "name"}', "Cognito manages it"),
        ("ATTRIBUTE_MAP", '{"name": {"from": "a", "join": ["b"]}}', "both from and join"),
        ("ATTRIBUTE_MAP", '{"name": {"separator": "-"}}', "needs from, join or default"),
        ("ATTRIBUTE_MAP", '{"name": 3}', "a name, a list of names"),
        ("ATTRIBUTE_MAP", "[]", "JSON object"),
        ("OLD_ROLE_ARN", "old-pool-reader", "IAM role ARN"),
        ("OLD_EXTERNAL_ID", "x", "needs OLD_ROLE_ARN"),
        ("NEW_ALIAS_ATTRIBUTES", "email,nickname", "NEW_ALIAS_ATTRIBUTES"),
        ("NEW_CASE_SENSITIVE", "maybe", "NEW_CASE_SENSITIVE"),
        ("OLD_MFA_CONFIGURATION", "REQUIRED", "OLD_MFA_CONFIGURATION"),
    ],
)
def test_bad_configuration_fails_closed(pools, lambda_context, caplog, monkeypatch, name, value, message):
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    old, _ = pools
    with pytest.raises(trigger.ConfigurationError, match=message):
        sign_in(lambda_context)
    assert old.calls == []
    [line] = log_lines(caplog)
    assert line["outcome"] == "error" and line["reason"] == "configuration" and line["old_pool_calls"] == 0


def test_clients_are_created_once_per_read_timeout_without_botocore_retries(monkeypatch):
    monkeypatch.setattr(trigger, "_clients", {})
    old = trigger.client("old", "eu-west-1", 2.5)
    assert trigger.client("old", "us-east-1", 2.5) is old
    assert trigger.client("old", "eu-west-1", 1.0) is not old
    assert old.meta.region_name == "eu-west-1"
    assert old.meta.config.connect_timeout == trigger.CONNECT_TIMEOUT_S and old.meta.config.read_timeout == 2.5
    assert old.meta.config.retries["total_max_attempts"] == 1  # the trigger retries, within its budget


# --- the 5-second budget and Cognito's retries --------------------------------------------------------


class Remaining:
    """A Lambda context with `ms` left."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def get_remaining_time_in_millis(self) -> int:
        return self.ms


@pytest.mark.parametrize(
    "left_s, expected",
    [(4.75, 4.25), (2.87, 2.5), (0.8, 0.5), (0.56, 0.25)],
)
def test_read_timeout_is_what_is_left_after_connecting_rounded_down(monkeypatch, left_s, expected):
    budget = trigger.Budget(deadline=1000.0)
    monkeypatch.setattr(trigger.time, "monotonic", lambda: 1000.0 - left_s)
    assert budget.read_timeout() == expected


def test_a_call_that_cannot_finish_is_never_started(pools, caplog):
    old, _ = pools
    with pytest.raises(trigger.Unavailable) as unavailable:
        sign_in(Remaining(700))  # 0.7 s - the margin - connecting leaves less than any answer needs
    assert str(unavailable.value) == trigger.UNAVAILABLE and old.calls == []
    [line] = log_lines(caplog)
    assert (line["reason"], line["old_pool_calls"], line["budget_ms"]) == ("no_time_left", 0, 450)


def test_the_budget_is_cognitos_five_seconds_whatever_the_function_timeout(pools, caplog):
    sign_in(Remaining(30_000))  # a function configured for 30 s: Cognito still stops waiting after 5
    [line] = log_lines(caplog)
    assert line["budget_ms"] == pytest.approx(5000 - 250, abs=20)


def test_a_cold_start_pays_for_its_initialisation(pools, caplog, monkeypatch):
    monkeypatch.setattr(trigger, "_container", {"invocations": 0})
    monkeypatch.setattr(trigger, "_LOADED_AT", trigger.time.monotonic())
    sign_in(Remaining(5000))
    [line] = log_lines(caplog)
    assert line["cold_start"] and line["budget_ms"] == pytest.approx(5000 - 250 - 500, abs=30)


class FailsOnce:
    """Delegates to a fake pool, but `operation` fails the first time with `failure`."""

    def __init__(self, pool: FakeCognito, operation: str, failure: Exception) -> None:
        self.pool, self.operation, self.failure = pool, operation, failure

    def __getattr__(self, name: str) -> Any:
        if name == self.operation and self.failure is not None:
            failure, self.failure = self.failure, None

            def fail(**_: Any) -> Any:
                self.pool.calls.append((name, "failed"))
                raise failure

            return fail
        return getattr(self.pool, name)


@pytest.mark.parametrize("challenge", [None, "SMS_MFA"])
def test_cognitos_retry_of_a_sign_in_reuses_the_proven_password(pools, lambda_context, caplog, monkeypatch, challenge):
    old, _ = pools
    old.users["alice"].challenge = challenge
    slow = ReadTimeoutError(endpoint_url="https://cognito-idp.us-east-1.amazonaws.com/")
    monkeypatch.setitem(trigger._clients, "old", FailsOnce(old, "admin_get_user", slow))
    with pytest.raises(trigger.Unavailable):
        sign_in(lambda_context)  # the first attempt: the password is right, AdminGetUser times out

    retried = sign_in(lambda_context)["response"]  # Cognito's second attempt of the same sign-in

    assert retried["finalUserStatus"] == ("CONFIRMED" if challenge is None else "RESET_REQUIRED")
    # One AdminInitiateAuth in all: no second password check, and for SMS MFA no second code sent.
    assert [call for call, _ in old.calls] == ["admin_initiate_auth", "admin_get_user", "admin_get_user"]
    first, second = log_lines(caplog)
    assert first["old_pool_calls"] == 2 and "proof_reused" not in first
    assert second["old_pool_calls"] == 1 and second["proof_reused"] is True


def test_cognitos_retries_of_a_wrong_password_ask_the_old_pool_once(pools, lambda_context):
    old, _ = pools
    for _attempt in range(3):  # Cognito's three attempts of one refused sign-in
        with pytest.raises(trigger.Refused, match=GENERIC):
            sign_in(lambda_context, password="wrong-password")
    # One failed attempt towards the old pool's lockout, not three.
    assert [call for call, _ in old.calls] == ["admin_initiate_auth"]
    sign_in(lambda_context)  # another password is always asked: the right one works at once
    assert trigger._proofs and all(FAKE_PASSWORD not in key for key in trigger._proofs)


def test_a_remembered_password_is_only_for_that_user_and_password(pools, lambda_context):
    old, _ = pools
    old.users["bob"] = alice(password="bobs-password")
    sign_in(lambda_context)
    sign_in(lambda_context, "bob", "bobs-password")
    assert [call for call, _ in old.calls].count("admin_initiate_auth") == 2


# --- attribute map ------------------------------------------------------------------------------------

OLD_NAMES = [
    {"Name": "sub", "Value": "s-1"},
    {"Name": "given_name", "Value": "Alice"},
    {"Name": "family_name", "Value": "Liddell"},
    {"Name": "nickname", "Value": "   "},
    {"Name": "custom:plan", "Value": "gold"},
    {"Name": "name", "Value": "A. Liddell"},
]


@pytest.mark.parametrize(
    "spec, expected",
    [
        pytest.param("custom:plan", "gold", id="rename"),
        pytest.param(["nickname", "given_name"], "Alice", id="first_non_empty_skips_blank"),
        pytest.param({"join": ["given_name", "family_name"]}, "Alice Liddell", id="join"),
        pytest.param({"join": ["family_name", "given_name"], "separator": ", "}, "Liddell, Alice", id="separator"),
        pytest.param({"from": "username"}, "alice", id="old_username"),
        pytest.param({"from": "missing", "default": "n/a"}, "n/a", id="default_when_nothing_found"),
        pytest.param({"default": "n/a"}, "n/a", id="pure_default"),
    ],
)
def test_attribute_map_derives_the_new_attribute(spec, expected):
    rules = trigger.parse_attribute_map({"custom:tier": spec})
    attributes = trigger.build_user_attributes(OLD_NAMES, None, {}, None, rules, "alice")
    assert attributes["custom:tier"] == expected
    assert "sub" not in attributes


def test_attribute_map_applies_first_then_defaults_then_the_allowed_list():
    rules = trigger.parse_attribute_map({"name": {"join": ["given_name", "family_name"]}, "custom:tier": "custom:plan"})
    allowed = {"name", "custom:tier", "locale", "custom:legacy_sub"}
    attributes = trigger.build_user_attributes(OLD_NAMES, allowed, {"locale": "en"}, "custom:legacy_sub", rules)
    # The map wins over the old `name`; defaults fill what is still missing; custom:plan is not in the schema.
    assert attributes == {"name": "Alice Liddell", "custom:tier": "gold", "locale": "en", "custom:legacy_sub": "s-1"}


def test_attribute_map_that_finds_nothing_keeps_the_old_value_of_the_same_name():
    rules = trigger.parse_attribute_map({"name": ["preferred_username"], "nickname": ["preferred_username"]})
    attributes = trigger.build_user_attributes(OLD_NAMES, None, {"nickname": "-"}, None, rules)
    assert attributes["name"] == "A. Liddell" and attributes["nickname"] == "-"


def test_attribute_map_reaches_the_response(pools, lambda_context, monkeypatch):
    monkeypatch.setenv("ATTRIBUTE_MAP", json.dumps({"name": {"join": ["custom:tier", "locale"], "separator": "/"}}))
    attributes = sign_in(lambda_context)["response"]["userAttributes"]
    assert attributes["name"] == "gold/en"
    assert "locale" not in attributes  # not in ALLOWED_ATTRIBUTES: dropped, never sent


# --- groups: once per user ----------------------------------------------------------------------------


@pytest.fixture
def marker_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALLOWED_ATTRIBUTES", f"{ALLOWED},{trigger.GROUPS_MARKER}")


def post_authentication(context: Any, marker: bool) -> dict[str, Any]:
    event = load_event("post_authentication")
    if marker:
        event["request"]["userAttributes"][trigger.GROUPS_MARKER] = "1"
    return trigger.handler(event, context)


def test_migration_marks_the_user_for_one_group_copy(pools, lambda_context, marker_schema):
    assert sign_in(lambda_context)["response"]["userAttributes"][trigger.GROUPS_MARKER] == "1"
    assert forgot_password(lambda_context)["response"]["userAttributes"][trigger.GROUPS_MARKER] == "1"


def test_group_copy_runs_once_then_costs_no_old_pool_call(lambda_context, caplog, monkeypatch, marker_schema):
    old = FakeCognito({"alice": FakeUser(groups=["editors", "support"])})
    new = FakeCognito({"alice": FakeUser(attributes={trigger.GROUPS_MARKER: "1"})}, groups={"editors", "support"})
    monkeypatch.setattr(trigger, "_clients", {"old": old, "new": new})

    post_authentication(lambda_context, marker=True)
    old_calls = len(old.calls)
    post_authentication(lambda_context, marker=False)

    assert sorted(new.users["alice"].groups) == ["editors", "support"]
    assert trigger.GROUPS_MARKER not in new.users["alice"].attributes
    assert len(old.calls) == old_calls == 1
    first, second = log_lines(caplog)
    assert first["outcome"] == "groups_copied" and first["old_pool_calls"] == 1 and first["new_pool_calls"] == 4
    assert second["outcome"] == "nothing_to_copy" and second["old_pool_calls"] == 0 and second["new_pool_calls"] == 0


def test_cognitos_retry_of_a_finished_group_copy_copies_nothing_again(
    lambda_context, caplog, monkeypatch, marker_schema
):
    old = FakeCognito({"alice": FakeUser(groups=["editors", "support"])})
    new = FakeCognito({"alice": FakeUser(attributes={trigger.GROUPS_MARKER: "1"})}, groups={"editors", "support"})
    monkeypatch.setattr(trigger, "_clients", {"old": old, "new": new})

    post_authentication(lambda_context, marker=True)
    calls = (len(old.calls), len(new.calls))
    post_authentication(lambda_context, marker=True)  # the same event again: it still shows the marker

    assert (len(old.calls), len(new.calls)) == calls
    assert sorted(new.users["alice"].groups) == ["editors", "support"]
    _, retry = log_lines(caplog)
    assert (retry["reason"], retry["old_pool_calls"], retry["new_pool_calls"]) == ("already_copied", 0, 0)


def test_a_retried_group_copy_in_another_container_adds_no_group_twice(
    lambda_context, caplog, monkeypatch, marker_schema
):
    old = FakeCognito({"alice": FakeUser(groups=["editors", "support"])})
    new = FakeCognito({"alice": FakeUser(attributes={trigger.GROUPS_MARKER: "1"})}, groups={"editors", "support"})
    monkeypatch.setattr(trigger, "_clients", {"old": old, "new": new})
    post_authentication(lambda_context, marker=True)
    monkeypatch.setattr(trigger, "_copied", {})  # another container: it knows nothing of the first attempt
    post_authentication(lambda_context, marker=True)
    assert sorted(new.users["alice"].groups) == ["editors", "support"]
    assert [call for call, _ in new.calls].count("admin_add_user_to_group") == 2


def test_group_missing_in_the_new_pool_keeps_the_marker_for_the_next_sign_in(
    lambda_context, monkeypatch, marker_schema
):
    old = FakeCognito({"alice": FakeUser(groups=["editors", "ghosts"])})
    new = FakeCognito({"alice": FakeUser(attributes={trigger.GROUPS_MARKER: "1"})}, groups={"editors"})
    monkeypatch.setattr(trigger, "_clients", {"old": old, "new": new})
    post_authentication(lambda_context, marker=True)
    assert new.users["alice"].groups == ["editors"]
    assert new.users["alice"].attributes[trigger.GROUPS_MARKER] == "1"


def test_marker_of_a_user_unknown_to_the_old_pool_is_removed(lambda_context, monkeypatch, marker_schema):
    old, new = FakeCognito(), FakeCognito({"alice": FakeUser(attributes={trigger.GROUPS_MARKER: "1"})})
    monkeypatch.setattr(trigger, "_clients", {"old": old, "new": new})
    post_authentication(lambda_context, marker=True)
    assert trigger.GROUPS_MARKER not in new.users["alice"].attributes


# --- the old pool through an assumed role -------------------------------------------------------------

ROLE_ARN = "arn:aws:iam::111122223333:role/old-pool-reader"


@pytest.fixture
def assumed_role(monkeypatch: pytest.MonkeyPatch) -> Any:
    """OLD_ROLE_ARN set, a fake STS; the old-pool client is built from the credentials it hands out."""
    sts = FakeSTS()
    built: list[dict[str, Any]] = []
    old = FakeCognito({"alice": alice()})

    def fake_boto3_client(service: str, **kwargs: Any) -> Any:
        assert service == "cognito-idp"
        built.append(kwargs)
        return old

    monkeypatch.setenv("OLD_ROLE_ARN", ROLE_ARN)
    monkeypatch.setenv("OLD_EXTERNAL_ID", "migration-2026")
    monkeypatch.setattr(trigger, "_clients", {"sts": sts, "new": FakeCognito()})
    monkeypatch.setattr(trigger, "_expires", {})
    monkeypatch.setattr(trigger.boto3, "client", fake_boto3_client)
    return sts, built


def test_assumed_role_is_assumed_once_per_container(assumed_role, lambda_context, caplog):
    sts, built = assumed_role
    sign_in(lambda_context)
    forgot_password(lambda_context)

    assert sts.requests == [
        {"RoleArn": ROLE_ARN, "RoleSessionName": "cognito-user-migration", "ExternalId": "migration-2026"}
    ]
    assert built[0]["aws_access_key_id"] == "ASIAFAKE00000001" and built[0]["aws_session_token"]
    assert [line["sts_calls"] for line in log_lines(caplog)] == [1, 0]


def test_assumed_role_credentials_are_renewed_before_they_expire(assumed_role, lambda_context):
    sts, built = assumed_role
    sts.lifetime = timedelta(minutes=4)  # inside the renewal margin: every invocation renews
    sign_in(lambda_context)
    sign_in(lambda_context)
    assert len(sts.requests) == 2 and built[1]["aws_access_key_id"] == "ASIAFAKE00000002"


def test_assume_role_failure_fails_closed(assumed_role, lambda_context, caplog):
    sts, _ = assumed_role
    sts.assume_role = lambda **_: (_ for _ in ()).throw(client_error("AccessDenied", "AssumeRole"))
    with pytest.raises(trigger.Unavailable):
        sign_in(lambda_context)
    [line] = log_lines(caplog)
    assert line["reason"] == "sts_AccessDenied" and line["old_pool_calls"] == 0


def test_first_invocation_of_a_container_is_a_cold_start(pools, lambda_context, caplog, monkeypatch):
    monkeypatch.setattr(trigger, "_container", {"invocations": 0})
    sign_in(lambda_context)
    sign_in(lambda_context)
    assert [line["cold_start"] for line in log_lines(caplog)] == [True, False]


# --- what reaches the log: never the password, one line whatever the event carries --------------------------


@pytest.mark.parametrize(
    "event",
    [
        None,
        [FAKE_PASSWORD],
        {"triggerSource": "UserMigration_Authentication", "userName": "alice", "request": FAKE_PASSWORD},
        {"triggerSource": "UserMigration_Authentication", "request": {"password": [FAKE_PASSWORD]}},
        {"triggerSource": "UserMigration_Authentication", "userName": FAKE_PASSWORD, "request": {"password": 7}},
        {"triggerSource": "UserMigration_ForgotPassword", "userName": {"password": FAKE_PASSWORD}},
        {"triggerSource": FAKE_PASSWORD, "request": {"password": FAKE_PASSWORD}},
    ],
    ids=["none", "list", "request-is-a-string", "password-is-a-list", "password-as-username", "username-is-a-dict",
         "password-as-source"],
)  # fmt: skip
def test_malformed_events_fail_closed_without_the_password(pools, lambda_context, caplog, event):
    with pytest.raises(trigger.MigrationError) as failure:
        trigger.handler(event, lambda_context)

    assert FAKE_PASSWORD not in str(failure.value) and failure.value.__cause__ is None
    [line] = log_lines(caplog)
    assert line["outcome"] in ("refused", "error") and line["final_status"] is None
    # The autouse fixture checks the log, stdout and stderr for the password after every test.


@pytest.mark.parametrize(
    "username",
    [
        'alice\n{"outcome": "migrated", "user": "forged"}',
        '", "outcome": "migrated',
        "alice\r\nSTART RequestId: forged",
        "a" * 1_000_000,
    ],
    ids=["newline-and-json", "json-quote", "crlf", "huge"],
)
def test_log_line_is_one_bounded_json_line_whatever_the_username(pools, lambda_context, caplog, username):
    with pytest.raises(trigger.Refused):
        sign_in(lambda_context, username, "wrong-but-fake")

    [record] = [r for r in caplog.records if r.name == "migration_trigger"]
    message = record.getMessage()
    assert "\n" not in message and "\r" not in message and len(message) < 1000
    line = json.loads(message)
    assert line["outcome"] == "refused" and line["user"] == trigger.user_ref(username, LOG_SECRET)
    assert "forged" not in message and "alice" not in message


def test_log_line_stays_bounded_whatever_the_trigger_source(pools, lambda_context, caplog):
    event = load_event("user_migration_authentication")
    event["triggerSource"] = "X\n" + "y" * 1_000_000

    with pytest.raises(trigger.MigrationError, match="Unsupported trigger source"):
        trigger.handler(event, lambda_context)

    [record] = [r for r in caplog.records if r.name == "migration_trigger"]
    assert "\n" not in record.getMessage() and len(record.getMessage()) < 1000
    assert json.loads(record.getMessage())["trigger"] == "malformed"


def test_log_user_is_keyed_and_follows_one_user_in_any_letter_case(monkeypatch):
    keyed = trigger.user_ref("alice", LOG_SECRET)
    unkeyed = trigger.hashlib.sha256(b"alice").hexdigest()
    assert keyed and keyed not in unkeyed, "no longer the records' (or anyone's) unkeyed hash"
    assert trigger.user_ref("Alice", LOG_SECRET) == keyed, "one user's lines, however they typed the name"
    assert trigger.user_ref("alice", "ef" * 32) != keyed
    assert trigger.user_ref("alice", None) is None and trigger.user_ref("alice", "not-a-key") is None
    index_item = trigger.index_key(LOG_SECRET, "username", "alice")
    assert keyed not in index_item, "nor a prefix of the sign-up index's item for the same user"
