"""Test helpers for the migration trigger: load it as Lambda does, canned events, fake Cognito clients."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from botocore.exceptions import ClientError

ROOT = Path(__file__).resolve().parents[1]
TRIGGER_FILE = ROOT / "lib" / "cognito_migration" / "trigger" / "migration_trigger.py"
EVENTS = Path(__file__).resolve().parent / "events"
FAKE_PASSWORD = "not-a-real-password"


def load_trigger() -> ModuleType:
    """The trigger imported as a top-level module `migration_trigger`, as it sits at the root of the zip."""
    if "migration_trigger" in sys.modules:
        return sys.modules["migration_trigger"]
    spec = importlib.util.spec_from_file_location("migration_trigger", TRIGGER_FILE)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["migration_trigger"] = module
    spec.loader.exec_module(module)
    return module


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of tests/events/<name>.json."""
    return json.loads((EVENTS / f"{name}.json").read_text())


@dataclass
class LambdaContext:
    function_name: str = "cognito-migration-trigger"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cognito-migration-trigger"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"

    def get_remaining_time_in_millis(self) -> int:
        return 5000


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext()


def client_error(code: str, operation: str, message: str = "fake") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@dataclass
class FakeUser:
    password: str = FAKE_PASSWORD
    attributes: dict[str, str] = field(default_factory=dict)
    enabled: bool = True
    status: str = "CONFIRMED"
    challenge: str | None = None  # what AdminInitiateAuth answers after a right password
    groups: list[str] = field(default_factory=list)
    mfa: list[str] = field(default_factory=list)  # AdminGetUser's UserMFASettingList, e.g. ["SOFTWARE_TOKEN_MFA"]
    sms_mfa_option: bool = False  # the legacy MFAOptions, the one MFA setting ListUsers shows


class FakePaginator:
    def __init__(self, pool: FakeCognito) -> None:
        self.pool = pool

    def paginate(self, UserPoolId: str, Username: str) -> Any:
        self.pool.calls.append(("admin_list_groups_for_user", UserPoolId))
        user = self.pool.user(Username, "AdminListGroupsForUser")
        groups = [{"GroupName": name, "UserPoolId": UserPoolId} for name in user.groups]
        size = self.pool.page_size
        for start in range(0, max(len(groups), 1), size):
            yield {"Groups": groups[start : start + size]}


class FakeCognito:
    """Just enough of a cognito-idp client for the trigger, with Cognito's error codes."""

    def __init__(
        self,
        users: dict[str, FakeUser] | None = None,
        groups: set[str] | None = None,
        page_size: int = 10,
        fail_with: Exception | None = None,
        aliases: tuple[str, ...] = (),
    ) -> None:
        self.users = users or {}
        self.groups = groups if groups is not None else set()
        self.page_size = page_size
        self.fail_with = fail_with
        self.aliases = aliases  # attributes accepted in place of the username, as AliasAttributes
        self.calls: list[tuple[str, str]] = []

    def username_of(self, name: str) -> str | None:
        if name in self.users:
            return name
        return next((u for u, user in self.users.items() for a in self.aliases if user.attributes.get(a) == name), None)

    def user(self, username: str, operation: str) -> FakeUser:
        if self.fail_with is not None:
            raise self.fail_with
        found = self.username_of(username)
        if found is None:
            raise client_error("UserNotFoundException", operation, "User does not exist.")
        return self.users[found]

    def list_users(self, UserPoolId: str, Filter: str, Limit: int = 60) -> dict[str, Any]:
        """Exact, case-sensitive matches, as moto answers (AWS documents username as case-sensitive)."""
        self.calls.append(("list_users", UserPoolId))
        if self.fail_with is not None:
            raise self.fail_with
        match = re.fullmatch(r'(\w+) = "(.*)"', Filter)
        assert match, Filter
        name, value = match.group(1), match.group(2).replace('\\"', '"')
        found = [
            u for u, user in self.users.items() if (u if name == "username" else user.attributes.get(name)) == value
        ]
        return {"Users": [self.row(u) for u in found][:Limit]}

    def row(self, username: str) -> dict[str, Any]:
        """A ListUsers row: `Attributes`, and of the MFA settings only MFAOptions."""
        described = self.describe(username)
        hidden = ("UserAttributes", "UserMFASettingList", "PreferredMfaSetting")
        return {k: v for k, v in described.items() if k not in hidden} | {"Attributes": described["UserAttributes"]}

    def describe(self, username: str) -> dict[str, Any]:
        user = self.users[username]
        return {
            "Username": username,
            "UserAttributes": [{"Name": k, "Value": v} for k, v in user.attributes.items()],
            "Enabled": user.enabled,
            "UserStatus": user.status,
            "UserMFASettingList": list(user.mfa),
            "PreferredMfaSetting": user.mfa[0] if user.mfa else "",
            "MFAOptions": [{"DeliveryMedium": "SMS", "AttributeName": "phone_number"}] if user.sms_mfa_option else [],
        }

    def admin_delete_user_attributes(
        self, UserPoolId: str, Username: str, UserAttributeNames: list[str]
    ) -> dict[str, Any]:
        self.calls.append(("admin_delete_user_attributes", UserPoolId))
        user = self.user(Username, "AdminDeleteUserAttributes")
        for name in UserAttributeNames:
            user.attributes.pop(name, None)
        return {}

    def admin_initiate_auth(
        self, UserPoolId: str, ClientId: str, AuthFlow: str, AuthParameters: dict[str, str]
    ) -> dict[str, Any]:
        self.calls.append(("admin_initiate_auth", UserPoolId))
        assert AuthFlow == "ADMIN_USER_PASSWORD_AUTH"
        user = self.user(AuthParameters["USERNAME"], "AdminInitiateAuth")
        if AuthParameters["PASSWORD"] != user.password:
            raise client_error("NotAuthorizedException", "AdminInitiateAuth", "Bad password")
        if user.status == "UNCONFIRMED":
            raise client_error("UserNotConfirmedException", "AdminInitiateAuth", "User is not confirmed.")
        if user.status == "RESET_REQUIRED":
            raise client_error("PasswordResetRequiredException", "AdminInitiateAuth", "Reset required")
        if user.challenge:
            return {"ChallengeName": user.challenge, "Session": "fake-session", "ChallengeParameters": {}}
        return {"AuthenticationResult": {"AccessToken": "fake", "IdToken": "fake", "RefreshToken": "fake"}}

    def admin_get_user(self, UserPoolId: str, Username: str) -> dict[str, Any]:
        self.calls.append(("admin_get_user", UserPoolId))
        self.user(Username, "AdminGetUser")
        return self.describe(self.username_of(Username) or Username)

    def get_paginator(self, operation: str) -> FakePaginator:
        assert operation == "admin_list_groups_for_user"
        return FakePaginator(self)

    def admin_add_user_to_group(self, UserPoolId: str, Username: str, GroupName: str) -> dict[str, Any]:
        self.calls.append(("admin_add_user_to_group", UserPoolId))
        if GroupName not in self.groups:
            raise client_error("ResourceNotFoundException", "AdminAddUserToGroup", "Group not found.")
        user = self.user(Username, "AdminAddUserToGroup")
        user.groups.append(GroupName)
        return {}


class FakeIndex:
    """The sign-up index's GetItem, over the keys of `values` ((kind, value) pairs) under `secret`."""

    def __init__(self, trigger: ModuleType, secret: str, table: str, values: tuple[tuple[str, str], ...] = ()) -> None:
        self.table = table
        self.keys = {trigger.index_key(secret, kind, value) for kind, value in values}
        self.calls: list[str] = []
        self.fail_with: Exception | None = None

    def get_item(self, TableName: str, Key: dict[str, dict[str, str]]) -> dict[str, Any]:
        self.calls.append(Key["k"]["S"])
        if self.fail_with is not None:
            raise self.fail_with
        if TableName != self.table:
            raise client_error("ResourceNotFoundException", "GetItem", "Requested resource not found")
        return {"Item": {"k": Key["k"], "kind": {"S": "?"}}} if Key["k"]["S"] in self.keys else {}


class FakeSTS:
    """AssumeRole answering credentials that expire `lifetime` from now."""

    def __init__(self, lifetime: timedelta = timedelta(hours=1)) -> None:
        self.lifetime = lifetime
        self.requests: list[dict[str, Any]] = []

    def assume_role(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIAFAKE{len(self.requests):08d}",
                "SecretAccessKey": "fake-secret-key",
                "SessionToken": "fake-session-token",
                "Expiration": datetime.now(UTC) + self.lifetime,
            }
        }


def alice(**overrides: Any) -> FakeUser:
    """An ordinary old-pool user with a verified email and phone and a few attributes."""
    attributes = {
        "sub": "0b5e2d8c-1111-4c2a-9e0f-5a6b7c8d9e0f",
        "email": "alice@example.com",
        "email_verified": "true",
        "phone_number": "+15555550100",
        "phone_number_verified": "true",
        "custom:tier": "gold",
        "locale": "en",
    }
    attributes.update(overrides.pop("attributes", {}))
    return FakeUser(attributes={k: v for k, v in attributes.items() if v is not None}, **overrides)
