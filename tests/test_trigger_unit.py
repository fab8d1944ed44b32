"""Unit tests of the migration trigger: the handler called directly with fake old/new Cognito clients."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError

from trigger_support import (
    FAKE_PASSWORD,
    FakeCognito,
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


@pytest.fixture(autouse=True)
def settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OLD_REGION", "MFA_POLICY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("OLD_USER_POOL_ID", OLD_POOL)
    monkeypatch.setenv("OLD_CLIENT_ID", "oldpoolclient000000000001")
    monkeypatch.setenv("ALLOWED_ATTRIBUTES", ALLOWED)
    monkeypatch.setenv("ATTRIBUTE_DEFAULTS", json.dumps({"name": "Unknown"}))
    monkeypatch.setenv("LEGACY_SUB_ATTRIBUTE", "custom:legacy_sub")


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
    "failure",
    [
        client_error("TooManyRequestsException", "AdminInitiateAuth"),
        ReadTimeoutError(endpoint_url="https://cognito-idp.us-east-1.amazonaws.com/"),
    ],
    ids=["throttled", "timeout"],
)
def test_old_pool_failure_fails_closed(pools, lambda_context, caplog, failure):
    old, _ = pools
    old.fail_with = failure
    with pytest.raises(trigger.Unavailable) as unavailable:
        sign_in(lambda_context)
    assert str(unavailable.value) == trigger.UNAVAILABLE
    [line] = log_lines(caplog)
    assert line["outcome"] == "error" and line["reason"].startswith("aws_") and line["old_pool_calls"] == 1


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


def test_forgot_password_without_verified_contact_is_refused(pools, lambda_context):
    old, _ = pools
    old.users["alice"] = alice(attributes={"email_verified": "false", "phone_number": None})
    with pytest.raises(trigger.Refused, match="no verified email or phone"):
        forgot_password(lambda_context)


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
    event["triggerSource"] = "PreSignUp_AdminCreateUser"
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


def test_clients_are_created_once_with_short_timeouts(monkeypatch):
    monkeypatch.setattr(trigger, "_clients", {})
    old = trigger.client("old", "eu-west-1")
    assert trigger.client("old", "us-east-1") is old
    assert old.meta.region_name == "eu-west-1"
    assert old.meta.config.connect_timeout <= 2 and old.meta.config.read_timeout <= 2
