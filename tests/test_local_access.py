"""The local AWS lets in only this run's credentials: another local user cannot replace the trigger's code
(the attack: UpdateFunctionCode with any key, then a sign-in runs it with the typed password)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from cognito_migration import deploy
from cognito_migration.local.access import KEY_HEADER, new_credentials
from cognito_migration.local.server import LocalAWS

REGION = "us-east-1"


def client_as(local_aws: LocalAWS, service: str, credentials: dict[str, str]) -> Any:
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=local_aws.endpoint_url,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
    )


def test_every_run_has_credentials_of_its_own() -> None:
    first, second = new_credentials(), new_credentials()
    assert first["AWS_ACCESS_KEY_ID"] != second["AWS_ACCESS_KEY_ID"]
    assert len(first["AWS_ACCESS_KEY_ID"]) == 20 and first["AWS_ACCESS_KEY_ID"] != "testing"


def test_another_key_cannot_replace_the_triggers_code(local_aws: LocalAWS, lam, iam) -> None:
    role = iam.create_role(RoleName="access-test-role", AssumeRolePolicyDocument=json.dumps(deploy.TRUST_POLICY))
    code = deploy.build_package().zip_bytes
    lam.create_function(
        FunctionName="access-test-trigger",
        Role=role["Role"]["Arn"],
        Runtime="python3.12",
        Handler="migration_trigger.handler",
        Code={"ZipFile": code},
    )
    lam.get_waiter("function_active_v2").wait(FunctionName="access-test-trigger")
    before = lam.get_function(FunctionName="access-test-trigger")["Configuration"]["CodeSha256"]

    for intruder in ({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}, new_credentials()):
        with pytest.raises(ClientError) as refused:
            client_as(local_aws, "lambda", intruder).update_function_code(
                FunctionName="access-test-trigger", ZipFile=b"PK\x05\x06" + b"\x00" * 18
            )
        error = refused.value.response["Error"]
        assert (error["Code"], error["Message"]) == (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
        with pytest.raises(ClientError, match="UnrecognizedClientException"):
            client_as(local_aws, "cognito-idp", intruder).list_user_pools(MaxResults=10)

    assert lam.get_function(FunctionName="access-test-trigger")["Configuration"]["CodeSha256"] == before


def test_iam_answers_an_unknown_key_as_iam_does(local_aws: LocalAWS) -> None:
    with pytest.raises(ClientError) as refused:
        client_as(local_aws, "iam", new_credentials()).list_roles()
    assert refused.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_what_aws_serves_unsigned_stays_open(local_aws: LocalAWS, cognito) -> None:
    pool = cognito.create_user_pool(PoolName="access-open")["UserPool"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="app", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]
    stranger = client_as(local_aws, "cognito-idp", new_credentials())  # InitiateAuth is sent unsigned

    with pytest.raises(ClientError) as answer:
        stranger.initiate_auth(
            ClientId=client["ClientId"],
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "nobody", "PASSWORD": "Nobody-1234"},
        )
    assert answer.value.response["Error"]["Code"] != "UnrecognizedClientException"


def test_a_signed_operation_without_any_key_is_refused(local_aws: LocalAWS) -> None:
    request = urllib.request.Request(
        local_aws.endpoint_url,
        data=b"{}",
        method="POST",
        headers={
            "X-Amz-Target": "AWSCognitoIdentityProviderService.ListUserPools",
            "Content-Type": "application/x-amz-json-1.1",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 403
    assert json.loads(refused.value.read())["__type"] == "MissingAuthenticationTokenException"


def test_the_fault_controls_want_the_key_too(local_aws: LocalAWS) -> None:
    url = f"{local_aws.endpoint_url}/_local/faults"
    rules = json.dumps([{"operation": "ListUsers", "throttle": 1.0}]).encode()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(url, data=rules, method="POST"))
    assert refused.value.code == 403
    assert local_aws.faults is not None and local_aws.faults.rules == []
    key = {KEY_HEADER: local_aws.credentials["AWS_ACCESS_KEY_ID"]}
    urllib.request.urlopen(urllib.request.Request(url, method="DELETE", headers=key))
