"""The local AWS over real HTTP: Cognito's Lambda triggers played by the emulator, with small hand-made
functions deployed as zips, and once with the real migration trigger against a seeded legacy pool."""

from __future__ import annotations

import io
import json
import os
import textwrap
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from cognito_migration import deploy, params
from cognito_migration.local.legacy import GROUP_NAMES, LegacyUser, seed_legacy_pool, wrong_password
from cognito_migration.local.server import LocalAWS

REGION = "us-east-1"
ACCOUNT = "123456789012"
PASSWORD_FLOWS = ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
SCHEMA_MESSAGE = "Attributes did not conform to the schema"
# Test users' passwords: made up here, valid for Cognito's default policy.
PASSWORD = "Migr4te!Passw0rd"
OTHER_PASSWORD = "Wr0ng!Passw0rd42"

# A function whose migration answer is the JSON in its RESPONSE variable, so each test states the answer.
ANSWERS_FROM_ENV = """
import json, os

def handler(event, context):
    event["response"] = json.loads(os.environ["RESPONSE"])
    return event
"""

# Logs the event it received, the password replaced by a marker, then migrates the user CONFIRMED.
ECHOES_EVENT = """
import copy, json

def handler(event, context):
    seen = copy.deepcopy(event)
    if "password" in seen.get("request", {}):
        seen["request"]["password"] = "<present>"
    print("EVENT " + json.dumps(seen, sort_keys=True))
    status = "CONFIRMED" if "password" in event["request"] else "RESET_REQUIRED"
    event["response"] = {
        "userAttributes": {"email": event["userName"] + "@example.com", "email_verified": "true"},
        "finalUserStatus": status,
        "messageAction": "SUPPRESS",
    }
    return event
"""


# --- helpers ------------------------------------------------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def zip_of(source: str, module: str = "handler.py") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(module, textwrap.dedent(source))
    return buffer.getvalue()


def error_of(exc_info: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc_info.value.response["Error"]
    return error["Code"], error["Message"]


@dataclass(frozen=True)
class Pool:
    id: str
    arn: str
    client_id: str


def make_pool(cognito: Any, *, case_sensitive: bool = False, schema: list[dict[str, Any]] | None = None) -> Pool:
    """A fresh pool with a unique name and an app client (no secret) allowing the password flows."""
    extra = {"Schema": schema} if schema is not None else {}
    pool = cognito.create_user_pool(
        PoolName=unique("pool"), UsernameConfiguration={"CaseSensitive": case_sensitive}, **extra
    )["UserPool"]
    client = cognito.create_user_pool_client(UserPoolId=pool["Id"], ClientName="app", ExplicitAuthFlows=PASSWORD_FLOWS)[
        "UserPoolClient"
    ]
    return Pool(pool["Id"], pool["Arn"], client["ClientId"])


def custom(name: str) -> dict[str, Any]:
    return {"Name": name, "AttributeDataType": "String", "Mutable": True}


@pytest.fixture(scope="module")
def role_arn(local_aws: LocalAWS) -> str:
    iam = boto3.client("iam", region_name=REGION, endpoint_url=local_aws.endpoint_url)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=unique("trigger-role"), AssumeRolePolicyDocument=json.dumps(trust))
    return str(role["Role"]["Arn"])


@pytest.fixture
def deploy_function(lam: Any, cognito: Any, role_arn: str) -> Callable[..., str]:
    """Deploys `source` as a function, lets Cognito invoke it for `permission_arn` (the pool's by default;
    None: no permission), and attaches it to the pool as `triggers`. Returns the function's name."""

    def deploy_it(
        pool: Pool,
        source: str | bytes,
        *,
        triggers: tuple[str, ...] = ("UserMigration",),
        environment: dict[str, str] | None = None,
        handler: str = "handler.handler",
        permission_arn: str | None = "",
    ) -> str:
        name = unique("fn")
        code = source if isinstance(source, bytes) else zip_of(source)
        arn = lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role_arn,
            Handler=handler,
            Timeout=30,
            Code={"ZipFile": code},
            Environment={"Variables": environment or {}},
        )["FunctionArn"]
        # A new function is Pending for a while, and Cognito cannot run it until it is Active.
        lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        if permission_arn is not None:
            lam.add_permission(
                FunctionName=name,
                StatementId="cognito",
                Action="lambda:InvokeFunction",
                Principal="cognito-idp.amazonaws.com",
                SourceArn=permission_arn or pool.arn,
                SourceAccount=ACCOUNT,
            )
        cognito.update_user_pool(UserPoolId=pool.id, LambdaConfig={trigger: arn for trigger in triggers})
        return name

    return deploy_it


def answers(response: dict[str, Any]) -> dict[str, str]:
    """The environment of an ANSWERS_FROM_ENV function."""
    return {"RESPONSE": json.dumps(response)}


def confirmed(email: str = "bob@example.com", **attributes: str) -> dict[str, Any]:
    return {
        "userAttributes": {"email": email, "email_verified": "true", **attributes},
        "finalUserStatus": "CONFIRMED",
        "messageAction": "SUPPRESS",
    }


def sign_in(cognito: Any, pool: Pool, username: str, password: str = PASSWORD, **extra: Any) -> dict[str, Any]:
    return dict(
        cognito.initiate_auth(
            ClientId=pool.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
            **extra,
        )
    )


def user_exists(cognito: Any, pool: Pool, username: str) -> bool:
    try:
        cognito.admin_get_user(UserPoolId=pool.id, Username=username)
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "UserNotFoundException"
        return False
    return True


def attributes_of(cognito: Any, pool: Pool, username: str) -> dict[str, str]:
    user = cognito.admin_get_user(UserPoolId=pool.id, Username=username)
    return {a["Name"]: a["Value"] for a in user["UserAttributes"]}


def log_messages(logs: Any, function_name: str, until: Callable[[list[str]], bool], timeout_s: float = 10) -> list[str]:
    """The function's CloudWatch log lines, polled until `until` holds (the emulator forwards them async)."""
    group = f"/aws/lambda/{function_name}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            events = logs.filter_log_events(logGroupName=group)["events"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            events = []
        messages = [e["message"] for e in events]
        if until(messages) or time.monotonic() > deadline:
            return messages
        time.sleep(0.05)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- UserMigration on sign-in ------------------------------------------------------------------------------


def test_migration_confirmed_keeps_password_and_answers_tokens(cognito, local_aws, deploy_function):
    pool = make_pool(cognito)
    deploy_function(pool, ANSWERS_FROM_ENV, environment=answers(confirmed(name="Bob")))
    invoked = local_aws.middleware.stats.counts.get("invoked:UserMigration", 0)
    invocations = local_aws.runtime.stats.invocations

    first = sign_in(cognito, pool, "bob")
    second = sign_in(cognito, pool, "bob")

    assert {"IdToken", "AccessToken", "RefreshToken"} <= set(first["AuthenticationResult"])
    assert "AccessToken" in second["AuthenticationResult"]
    user = cognito.admin_get_user(UserPoolId=pool.id, Username="bob")
    assert user["UserStatus"] == "CONFIRMED"
    assert attributes_of(cognito, pool, "bob")["name"] == "Bob"
    # The second sign-in found the user: the password was kept, the trigger did not run again.
    assert local_aws.middleware.stats.counts["invoked:UserMigration"] == invoked + 1
    assert local_aws.runtime.stats.invocations == invocations + 1


def test_migration_admin_user_password_auth_migrates(cognito, deploy_function):
    pool = make_pool(cognito)
    deploy_function(pool, ANSWERS_FROM_ENV, environment=answers(confirmed()))

    answer = cognito.admin_initiate_auth(
        UserPoolId=pool.id,
        ClientId=pool.client_id,
        AuthFlow="ADMIN_USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "bob", "PASSWORD": PASSWORD},
    )

    assert "AccessToken" in answer["AuthenticationResult"]
    assert cognito.admin_get_user(UserPoolId=pool.id, Username="bob")["UserStatus"] == "CONFIRMED"


def test_migration_reset_required_answers_password_reset_required(cognito, deploy_function):
    pool = make_pool(cognito)
    deploy_function(pool, ANSWERS_FROM_ENV, environment=answers({**confirmed(), "finalUserStatus": "RESET_REQUIRED"}))

    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "bob")

    assert error_of(exc_info)[0] == "PasswordResetRequiredException"
    assert cognito.admin_get_user(UserPoolId=pool.id, Username="bob")["UserStatus"] == "RESET_REQUIRED"


def client_with(cognito: Any, pool: Pool, prevent_user_existence_errors: str) -> Pool:
    """The same pool through another app client allowing the password flows, with the given setting."""
    client = cognito.create_user_pool_client(
        UserPoolId=pool.id,
        ClientName=unique("app"),
        ExplicitAuthFlows=PASSWORD_FLOWS,
        PreventUserExistenceErrors=prevent_user_existence_errors,
    )["UserPoolClient"]
    return Pool(pool.id, pool.arn, client["ClientId"])


def reset_required_user(cognito: Any, pool: Pool, username: str) -> None:
    cognito.admin_create_user(
        UserPoolId=pool.id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": f"{username}@example.com"},
            {"Name": "email_verified", "Value": "true"},
        ],
    )
    cognito.admin_set_user_password(UserPoolId=pool.id, Username=username, Password=PASSWORD, Permanent=True)
    cognito.admin_reset_user_password(UserPoolId=pool.id, Username=username)


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("LEGACY", ("PasswordResetRequiredException", "Password reset required for the user")),
        ("ENABLED", ("NotAuthorizedException", "Incorrect username or password.")),
    ],
)
def test_prevent_user_existence_errors_hides_a_required_reset_behind_incorrect_password(cognito, setting, expected):
    # Developer guide, "Requiring imported users to reset their passwords": NotAuthorizedException when
    # PreventUserExistenceErrors is enabled, otherwise PasswordResetRequiredException; for both password flows.
    pool = client_with(cognito, make_pool(cognito), setting)
    reset_required_user(cognito, pool, "rita")
    assert cognito.admin_get_user(UserPoolId=pool.id, Username="rita")["UserStatus"] == "RESET_REQUIRED"

    with pytest.raises(ClientError) as user_flow:
        sign_in(cognito, pool, "rita")
    with pytest.raises(ClientError) as admin_flow:
        cognito.admin_initiate_auth(
            UserPoolId=pool.id,
            ClientId=pool.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "rita", "PASSWORD": PASSWORD},
        )

    assert error_of(user_flow) == expected
    assert error_of(admin_flow) == expected


def test_a_client_created_without_the_setting_is_legacy(cognito):
    pool = make_pool(cognito)  # no PreventUserExistenceErrors given: LEGACY, as the API's default
    reset_required_user(cognito, pool, "rob")

    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "rob")

    assert error_of(exc_info)[0] == "PasswordResetRequiredException"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("LEGACY", ("UserNotFoundException", "User does not exist.")),
        ("ENABLED", ("NotAuthorizedException", "Incorrect username or password.")),
    ],
)
def test_prevent_user_existence_errors_hides_an_unknown_user_at_sign_in(cognito, setting, expected):
    pool = client_with(cognito, make_pool(cognito), setting)  # no trigger: nobody migrates

    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "nobody")

    assert error_of(exc_info) == expected


def test_forgot_password_of_an_unknown_user_is_user_not_found_unless_existence_errors_are_prevented(cognito):
    pool = make_pool(cognito)
    legacy, enabled = client_with(cognito, pool, "LEGACY"), client_with(cognito, pool, "ENABLED")

    with pytest.raises(ClientError) as exc_info:
        cognito.forgot_password(ClientId=legacy.client_id, Username="nobody")
    simulated = cognito.forgot_password(ClientId=enabled.client_id, Username="nobody")

    assert error_of(exc_info) == ("UserNotFoundException", "Username/client id combination not found.")
    assert "CodeDeliveryDetails" in simulated  # "a code was sent to a simulated destination"
    assert not user_exists(cognito, pool, "nobody")


def test_migration_function_error_is_user_lambda_validation_exception(cognito, deploy_function):
    pool = make_pool(cognito)
    deploy_function(
        pool,
        """
        def handler(event, context):
            raise ValueError("no such legacy user")
    """,
    )

    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "bob")

    assert error_of(exc_info) == (
        "UserLambdaValidationException",
        "UserMigration failed with error no such legacy user.",
    )
    assert not user_exists(cognito, pool, "bob")


def test_migration_timeout_kills_worker_is_retried_and_next_invocation_starts_cold(
    cognito, logs, local_aws, deploy_function
):
    pool = make_pool(cognito, schema=[custom("pid")])
    name = deploy_function(
        pool,
        """
        import os, time

        def handler(event, context):
            print(f"PID {os.getpid()}", flush=True)
            if event["userName"] == "slow":
                time.sleep(6)
            event["response"] = {
                "userAttributes": {"email": "x@example.com", "custom:pid": str(os.getpid())},
                "finalUserStatus": "CONFIRMED",
            }
            return event
    """,
    )
    stats = local_aws.runtime.stats
    timeouts, cold_starts = stats.timeouts, stats.cold_starts
    retried = local_aws.middleware.stats.counts.get("retried:UserMigration", 0)

    started = time.monotonic()
    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "slow")
    elapsed = time.monotonic() - started
    sign_in(cognito, pool, "fast")

    assert error_of(exc_info) == (
        "UserLambdaValidationException",
        "UserMigration failed with error Task timed out after 5.00 seconds.",
    )
    # Cognito's three attempts, each killed at its own 5 s (the function's Timeout is 30 s: Cognito's wins).
    assert 14.5 <= elapsed < 17
    assert stats.timeouts == timeouts + 3
    assert local_aws.middleware.stats.counts["retried:UserMigration"] == retried + 2
    assert not user_exists(cognito, pool, "slow")
    # Each slow worker is gone; every attempt and the next sign-in ran in a new process.
    assert stats.cold_starts == cold_starts + 4
    lines = log_messages(logs, name, lambda m: sum(x.startswith("PID ") for x in m) >= 4)
    *slow_pids, fast_pid = (int(line.split()[1]) for line in lines if line.startswith("PID "))
    slow_pid = slow_pids[0]
    assert all(not pid_alive(pid) for pid in slow_pids)
    assert not pid_alive(slow_pid)
    assert fast_pid != slow_pid
    assert int(attributes_of(cognito, pool, "fast")["custom:pid"]) == fast_pid
    assert user_exists(cognito, pool, "fast")


def test_migration_invalid_final_user_status_is_invalid_lambda_response(cognito, deploy_function):
    pool = make_pool(cognito)
    deploy_function(pool, ANSWERS_FROM_ENV, environment=answers({**confirmed(), "finalUserStatus": "ACTIVE"}))

    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "bob")

    code, message = error_of(exc_info)
    assert code == "InvalidLambdaResponseException"
    assert "finalUserStatus" in message
    assert not user_exists(cognito, pool, "bob")


@pytest.mark.parametrize("attribute", ["sub", "custom:unknown", "nickname_typo"])
def test_migration_attribute_outside_schema_is_refused(cognito, deploy_function, attribute):
    pool = make_pool(cognito)
    deploy_function(pool, ANSWERS_FROM_ENV, environment=answers(confirmed(**{attribute: "x"})))

    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "bob")

    code, message = error_of(exc_info)
    assert code == "InvalidParameterException"
    assert message.startswith(SCHEMA_MESSAGE)
    assert attribute in message
    assert cognito.list_users(UserPoolId=pool.id)["Users"] == []


def test_migration_missing_required_attribute_is_refused(cognito, deploy_function):
    schema = [
        {"Name": "email", "AttributeDataType": "String", "Mutable": True, "Required": True},
        {"Name": "name", "AttributeDataType": "String", "Mutable": True, "Required": True},
    ]
    pool = make_pool(cognito, schema=schema)
    deploy_function(pool, ANSWERS_FROM_ENV, environment=answers(confirmed()))

    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "bob")

    code, message = error_of(exc_info)
    assert code == "InvalidParameterException"
    assert message.startswith(SCHEMA_MESSAGE)
    assert "name" in message
    assert cognito.list_users(UserPoolId=pool.id)["Users"] == []


def test_migration_without_invoke_permission_is_user_not_found(cognito, deploy_function):
    pool = make_pool(cognito)
    deploy_function(pool, ANSWERS_FROM_ENV, environment=answers(confirmed()), permission_arn=None)

    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "bob")

    assert error_of(exc_info) == (
        "UserNotFoundException",
        f"Exception migrating user in app client {pool.client_id}",
    )
    assert not user_exists(cognito, pool, "bob")


def test_migration_permission_for_another_pool_is_user_not_found(cognito, deploy_function):
    pool, other = make_pool(cognito), make_pool(cognito)
    deploy_function(pool, ANSWERS_FROM_ENV, environment=answers(confirmed()), permission_arn=other.arn)

    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "bob")

    assert error_of(exc_info) == (
        "UserNotFoundException",
        f"Exception migrating user in app client {pool.client_id}",
    )
    assert not user_exists(cognito, pool, "bob")


def test_migration_function_sees_its_environment_and_the_local_endpoint(cognito, local_aws, deploy_function):
    pool = make_pool(cognito, schema=[custom("greeting"), custom("endpoint"), custom("region")])
    deploy_function(
        pool,
        """
        import os

        def handler(event, context):
            event["response"] = {
                "userAttributes": {
                    "email": "bob@example.com",
                    "custom:greeting": os.environ["GREETING"],
                    "custom:endpoint": os.environ["AWS_ENDPOINT_URL"],
                    "custom:region": os.environ["AWS_REGION"],
                },
                "finalUserStatus": "CONFIRMED",
            }
            return event
    """,
        environment={"GREETING": "hello from the function's configuration"},
    )

    sign_in(cognito, pool, "bob")

    attributes = attributes_of(cognito, pool, "bob")
    assert attributes["custom:greeting"] == "hello from the function's configuration"
    assert attributes["custom:endpoint"] == local_aws.endpoint_url
    assert attributes["custom:region"] == REGION


def test_migration_function_output_lands_in_cloudwatch_logs(cognito, logs, deploy_function):
    pool = make_pool(cognito)
    name = deploy_function(
        pool,
        """
        import logging

        def handler(event, context):
            print("printed by the function")
            logging.getLogger("app").info("logged by the function")
            attributes = {"email": "bob@example.com"}
            event["response"] = {"userAttributes": attributes, "finalUserStatus": "CONFIRMED"}
            return event
    """,
    )

    sign_in(cognito, pool, "bob")

    messages = log_messages(logs, name, lambda m: len(" ".join(m).split("by the function")) >= 3)
    text = "\n".join(messages)
    assert "printed by the function" in text
    assert "logged by the function" in text
    streams = logs.describe_log_streams(logGroupName=f"/aws/lambda/{name}")["logStreams"]
    assert len(streams) == 1
    assert "[$LATEST]" in streams[0]["logStreamName"]


def test_migration_event_has_the_documented_shape(cognito, logs, deploy_function):
    pool = make_pool(cognito)
    name = deploy_function(pool, ECHOES_EVENT)

    sign_in(cognito, pool, "bob", ClientMetadata={"app": "web"})

    line = next(
        m for m in log_messages(logs, name, lambda m: any(x.startswith("EVENT ") for x in m)) if m.startswith("EVENT ")
    )
    event = json.loads(line[len("EVENT ") :])
    assert set(event["callerContext"]) == {"awsSdkVersion", "clientId"}
    event["callerContext"].pop("awsSdkVersion")
    assert event == {
        "version": "1",
        "triggerSource": "UserMigration_Authentication",
        "region": REGION,
        "userPoolId": pool.id,
        "userName": "bob",
        "callerContext": {"clientId": pool.client_id},
        "request": {
            "password": "<present>",
            "validationData": {"app": "web"},
            "clientMetadata": {"app": "web"},
        },
        "response": {},
    }


def test_forgot_password_of_unknown_user_migrates_reset_required(cognito, logs, deploy_function):
    pool = make_pool(cognito)
    name = deploy_function(pool, ECHOES_EVENT)

    answer = cognito.forgot_password(ClientId=pool.client_id, Username="carol")

    assert "CodeDeliveryDetails" in answer
    assert cognito.admin_get_user(UserPoolId=pool.id, Username="carol")["UserStatus"] == "RESET_REQUIRED"
    line = next(
        m for m in log_messages(logs, name, lambda m: any(x.startswith("EVENT ") for x in m)) if m.startswith("EVENT ")
    )
    event = json.loads(line[len("EVENT ") :])
    assert event["triggerSource"] == "UserMigration_ForgotPassword"
    assert event["userName"] == "carol"
    assert "password" not in event["request"]


# --- PostAuthentication and PreSignUp ----------------------------------------------------------------------


def existing_user(cognito: Any, pool: Pool, username: str = "dave") -> None:
    cognito.admin_create_user(
        UserPoolId=pool.id,
        Username=username,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}],
    )
    cognito.admin_set_user_password(UserPoolId=pool.id, Username=username, Password=PASSWORD, Permanent=True)


def test_post_authentication_runs_after_sign_in_with_user_attributes(cognito, logs, local_aws, deploy_function):
    pool = make_pool(cognito)
    existing_user(cognito, pool)
    name = deploy_function(
        pool,
        """
        import json

        def handler(event, context):
            print("POSTAUTH " + json.dumps({"source": event["triggerSource"], "request": event["request"]}))
            return event
    """,
        triggers=("PostAuthentication",),
    )
    runs = local_aws.middleware.stats.counts.get("invoked:PostAuthentication", 0)

    answer = sign_in(cognito, pool, "dave")

    assert "AccessToken" in answer["AuthenticationResult"]
    assert local_aws.middleware.stats.counts["invoked:PostAuthentication"] == runs + 1
    line = next(
        m
        for m in log_messages(logs, name, lambda m: any(x.startswith("POSTAUTH ") for x in m))
        if m.startswith("POSTAUTH ")
    )
    seen = json.loads(line[len("POSTAUTH ") :])
    assert seen["source"] == "PostAuthentication_Authentication"
    assert seen["request"]["userAttributes"]["email"] == "dave@example.com"
    assert "sub" in seen["request"]["userAttributes"]
    assert set(seen["request"]) == {"userAttributes", "newDeviceUsed", "clientMetadata"}


def test_post_authentication_failure_withholds_tokens(cognito, deploy_function):
    pool = make_pool(cognito)
    existing_user(cognito, pool)
    deploy_function(
        pool,
        """
        def handler(event, context):
            raise RuntimeError("groups could not be copied")
    """,
        triggers=("PostAuthentication",),
    )

    with pytest.raises(ClientError) as exc_info:
        sign_in(cognito, pool, "dave")

    assert error_of(exc_info) == (
        "UserLambdaValidationException",
        "PostAuthentication failed with error groups could not be copied.",
    )


def test_pre_sign_up_refusal_refuses_sign_up(cognito, deploy_function):
    pool = make_pool(cognito)
    deploy_function(
        pool,
        """
        def handler(event, context):
            if event["triggerSource"] == "PreSignUp_SignUp":
                raise Exception("sign-ups are closed during the migration")
            return event
    """,
        triggers=("PreSignUp",),
    )

    with pytest.raises(ClientError) as exc_info:
        cognito.sign_up(
            ClientId=pool.client_id,
            Username="eve",
            Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": "eve@example.com"}],
        )

    assert error_of(exc_info) == (
        "UserLambdaValidationException",
        "PreSignUp failed with error sign-ups are closed during the migration.",
    )
    assert not user_exists(cognito, pool, "eve")


# --- cognito_patches: where moto differs from AWS -------------------------------------------------------


def test_case_insensitive_pool_treats_usernames_differing_by_case_as_one_user(cognito, local_aws, deploy_function):
    pool = make_pool(cognito, case_sensitive=False)
    deploy_function(pool, ANSWERS_FROM_ENV, environment=answers(confirmed()))
    invoked = local_aws.middleware.stats.counts.get("invoked:UserMigration", 0)

    sign_in(cognito, pool, "Bob")
    answer = sign_in(cognito, pool, "bob")

    assert "AccessToken" in answer["AuthenticationResult"]
    assert local_aws.middleware.stats.counts["invoked:UserMigration"] == invoked + 1
    assert [u["Username"] for u in cognito.list_users(UserPoolId=pool.id)["Users"]] == ["Bob"]
    assert cognito.admin_get_user(UserPoolId=pool.id, Username="bob")["Username"] == "Bob"
    with pytest.raises(ClientError) as exc_info:
        cognito.admin_create_user(UserPoolId=pool.id, Username="BOB", MessageAction="SUPPRESS")
    assert error_of(exc_info)[0] == "UsernameExistsException"


def test_update_user_pool_with_only_lambda_config_keeps_case_insensitivity(cognito, deploy_function):
    pool = make_pool(cognito, case_sensitive=False)

    deploy_function(pool, ANSWERS_FROM_ENV, environment=answers(confirmed()))

    described = cognito.describe_user_pool(UserPoolId=pool.id)["UserPool"]
    assert described["UsernameConfiguration"] == {"CaseSensitive": False}
    assert "UserMigration" in described["LambdaConfig"]


def test_unconfirmed_user_sign_in_answers_not_confirmed_or_incorrect_password(cognito):
    pool = make_pool(cognito)
    cognito.sign_up(
        ClientId=pool.client_id,
        Username="frank",
        Password=PASSWORD,
        UserAttributes=[{"Name": "email", "Value": "frank@example.com"}],
    )

    with pytest.raises(ClientError) as right:
        sign_in(cognito, pool, "frank")
    with pytest.raises(ClientError) as wrong:
        sign_in(cognito, pool, "frank", OTHER_PASSWORD)
    with pytest.raises(ClientError) as admin_right:
        cognito.admin_initiate_auth(
            UserPoolId=pool.id,
            ClientId=pool.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "frank", "PASSWORD": PASSWORD},
        )

    assert error_of(right) == ("UserNotConfirmedException", "User is not confirmed.")
    assert error_of(wrong) == ("NotAuthorizedException", "Incorrect username or password.")
    assert error_of(admin_right) == ("UserNotConfirmedException", "User is not confirmed.")


def test_wrong_password_message_does_not_name_the_user(cognito):
    pool = make_pool(cognito)
    existing_user(cognito, pool, "grace")

    with pytest.raises(ClientError) as exc_info:
        cognito.admin_initiate_auth(
            UserPoolId=pool.id,
            ClientId=pool.client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "grace", "PASSWORD": OTHER_PASSWORD},
        )

    assert error_of(exc_info) == ("NotAuthorizedException", "Incorrect username or password.")


def test_confirm_forgot_password_ends_a_required_reset(cognito):
    pool = make_pool(cognito)
    existing_user(cognito, pool, "heidi")
    cognito.admin_update_user_attributes(
        UserPoolId=pool.id, Username="heidi", UserAttributes=[{"Name": "email_verified", "Value": "true"}]
    )
    cognito.admin_reset_user_password(UserPoolId=pool.id, Username="heidi")  # as an imported user arrives
    assert cognito.admin_get_user(UserPoolId=pool.id, Username="heidi")["UserStatus"] == "RESET_REQUIRED"

    cognito.forgot_password(ClientId=pool.client_id, Username="heidi")
    cognito.confirm_forgot_password(
        ClientId=pool.client_id, Username="heidi", ConfirmationCode="123456", Password=OTHER_PASSWORD
    )

    assert cognito.admin_get_user(UserPoolId=pool.id, Username="heidi")["UserStatus"] == "CONFIRMED"
    assert "AccessToken" in sign_in(cognito, pool, "heidi", OTHER_PASSWORD)["AuthenticationResult"]


# --- the real migration trigger against a seeded legacy pool ---------------------------------------------


def pick(users: list[LegacyUser], condition: Callable[[LegacyUser], bool]) -> LegacyUser:
    return next(u for u in users if condition(u) and not {"case_duplicate_username", "case_duplicate_email"} & u.quirks)


def test_real_trigger_migrates_legacy_users(cognito, logs, local_aws, deploy_function):
    legacy = seed_legacy_pool(users=200, seed=3, region=REGION)
    settings = params.validate(
        {
            "region": REGION,
            "old_user_pool_id": legacy.pool_id,
            "old_client_id": legacy.migration_client_id,
            "new_pool_name": unique("users-v2"),
            "migration_function_name": unique("migration"),
            "target_required_attributes": ["email", "name"],
            "attribute_defaults": {"name": "Unknown"},
        }
    )
    pool = make_pool(
        cognito,
        case_sensitive=False,
        schema=[
            {"Name": "email", "AttributeDataType": "String", "Mutable": True, "Required": True},
            {"Name": "name", "AttributeDataType": "String", "Mutable": True, "Required": True},
            custom("tier"),
            {"Name": "signup_year", "AttributeDataType": "Number", "Mutable": True},
        ],
    )
    for group in GROUP_NAMES:
        cognito.create_group(UserPoolId=pool.id, GroupName=group)
    environment = deploy.function_environment(settings, cognito.describe_user_pool(UserPoolId=pool.id)["UserPool"])
    name = deploy_function(
        pool,
        deploy.build_package().zip_bytes,
        handler=deploy.HANDLER,
        environment=environment,
        triggers=("UserMigration", "PostAuthentication"),
    )

    happy = pick(
        legacy.users,
        lambda u: (
            u.status == "CONFIRMED"
            and u.enabled
            and u.mfa is None
            and len(u.groups) >= 2
            and "name" in u.attributes
            and "custom:tier" in u.attributes
            and u.attributes["email_verified"] == "true"
        ),
    )
    wrong = pick(legacy.users, lambda u: u.status == "CONFIRMED" and u.enabled and u.mfa is None and u is not happy)
    sms = pick(legacy.users, lambda u: u.mfa == "SMS_MFA" and u.enabled)
    disabled = pick(legacy.users, lambda u: not u.enabled)
    unconfirmed = pick(legacy.users, lambda u: u.status == "UNCONFIRMED" and u.enabled)
    used_passwords = [legacy.password(u.username) for u in (happy, sms, disabled, unconfirmed)]
    used_passwords.append(wrong_password(wrong.username, legacy.seed))

    # A CONFIRMED user in groups, right password: tokens, attributes and groups in the new pool.
    answer = sign_in(cognito, pool, happy.username, legacy.password(happy.username))
    assert "AccessToken" in answer["AuthenticationResult"]
    migrated = cognito.admin_get_user(UserPoolId=pool.id, Username=happy.username)
    assert migrated["UserStatus"] == "CONFIRMED"
    attributes = {a["Name"]: a["Value"] for a in migrated["UserAttributes"]}
    for key in ("email", "email_verified", "name", "custom:tier", "custom:signup_year"):
        assert attributes[key] == happy.attributes[key], key
    assert attributes["sub"] != happy.sub
    groups = cognito.admin_list_groups_for_user(UserPoolId=pool.id, Username=happy.username)["Groups"]
    assert sorted(g["GroupName"] for g in groups) == sorted(happy.groups)
    # The password was kept: the second sign-in needs no migration.
    assert (
        "AccessToken" in sign_in(cognito, pool, happy.username, legacy.password(happy.username))["AuthenticationResult"]
    )

    # Wrong password: refused, nobody created.
    with pytest.raises(ClientError) as refused:
        sign_in(cognito, pool, wrong.username, wrong_password(wrong.username, legacy.seed))
    assert error_of(refused) == (
        "UserLambdaValidationException",
        "UserMigration failed with error Incorrect username or password.",
    )
    assert not user_exists(cognito, pool, wrong.username)

    # SMS MFA: the second factor cannot be checked, so the user must reset the password.
    with pytest.raises(ClientError) as reset:
        sign_in(cognito, pool, sms.username, legacy.password(sms.username))
    assert error_of(reset)[0] == "PasswordResetRequiredException"
    assert cognito.admin_get_user(UserPoolId=pool.id, Username=sms.username)["UserStatus"] == "RESET_REQUIRED"

    # Disabled and unconfirmed users: refused with the one generic message, nobody created.
    for user in (disabled, unconfirmed):
        with pytest.raises(ClientError) as not_migrated:
            sign_in(cognito, pool, user.username, legacy.password(user.username))
        assert error_of(not_migrated) == (
            "UserLambdaValidationException",
            "UserMigration failed with error Incorrect username or password.",
        )
        assert not user_exists(cognito, pool, user.username)

    # One JSON line per invocation: 2 (migrate + groups) + 1 (groups) + 1 reset + 3 refusals (a refusal is the
    # function's answer: Cognito does not ask again). No password.
    lines = log_messages(logs, name, lambda m: sum("{" in x for x in m) >= 7)
    records = [json.loads(x[x.index("{") :]) for x in lines if "{" in x]
    outcomes = [record["outcome"] for record in records]
    assert sorted(outcomes) == sorted(["migrated", "groups_copied", "groups_copied", "migrated"] + ["refused"] * 3)
    assert sum(r["old_pool_calls"] for r in records if r["outcome"] == "refused") <= 3 * 2
    text = "\n".join(lines)
    assert not any(password in text for password in used_passwords), "a password reached the trigger's log"
    assert happy.attributes["email"] not in text
