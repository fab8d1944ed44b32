"""The local AWS's CSV user import over HTTP: boto3 for the Cognito calls, urllib for the pre-signed PUT."""

from __future__ import annotations

import fnmatch
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cognito_migration import user_import
from cognito_migration.local.server import LocalAWS

REGION = "us-east-1"
KMS = {"x-amz-server-side-encryption": "aws:kms"}
STANDARD = (
    "name given_name family_name middle_name nickname preferred_username profile picture website email "
    "email_verified gender birthdate zoneinfo locale phone_number phone_number_verified address updated_at"
).split()
FINAL = {"Succeeded", "Failed", "Stopped", "Expired"}


@pytest.fixture
def pool(cognito) -> Iterator[dict[str, Any]]:  # type: ignore[no-untyped-def]
    created = cognito.create_user_pool(
        PoolName=f"import-{uuid.uuid4().hex[:8]}",
        AutoVerifiedAttributes=["email"],
        UsernameConfiguration={"CaseSensitive": False},
        Schema=[
            {"Name": "email", "AttributeDataType": "String", "Required": True, "Mutable": True},
            {"Name": "name", "AttributeDataType": "String", "Required": False, "Mutable": True},
            {"Name": "phone_number", "AttributeDataType": "String", "Mutable": True},
            {"Name": "tier", "AttributeDataType": "String", "Mutable": True},
        ],
    )["UserPool"]
    yield created
    cognito.delete_user_pool(UserPoolId=created["Id"])


@pytest.fixture
def logs_role(iam) -> str:  # type: ignore[no-untyped-def]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "cognito-idp.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    name = f"import-logs-{uuid.uuid4().hex[:8]}"
    return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"])


def csv_text(header: list[str], users: list[dict[str, str]]) -> bytes:
    lines = [",".join(header)] + [",".join(u.get(c, "") for c in header) for u in users]
    return ("\n".join(lines) + "\n").encode()


def user(username: str, **attributes: str) -> dict[str, str]:
    return {
        "cognito:username": username,
        "cognito:mfa_enabled": "false",
        "email": f"{username}@example.com",
        "email_verified": "true",
        **attributes,
    }


def put(url: str, body: bytes, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, data=body, method="PUT", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def wait(cognito, pool_id: str, job_id: str, timeout: float = 10) -> tuple[dict[str, Any], list[str]]:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = cognito.describe_user_import_job(UserPoolId=pool_id, JobId=job_id)["UserImportJob"]
        if not seen or seen[-1] != job["Status"]:
            seen.append(job["Status"])
        if job["Status"] in FINAL:
            return job, seen
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not end: {seen}")


def new_job(cognito, pool_id: str, role: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return cognito.create_user_import_job(JobName="stragglers", UserPoolId=pool_id, CloudWatchLogsRoleArn=role)[
        "UserImportJob"
    ]


def optional_mfa(cognito, pool_id: str, level: str = "OPTIONAL") -> None:  # type: ignore[no-untyped-def]
    cognito.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        SmsMfaConfiguration={"SmsConfiguration": {"SnsCallerArn": "arn:aws:iam::123456789012:role/sns"}},
        MfaConfiguration=level,
    )


def run_job(cognito, pool_id: str, role: str, body: bytes) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    job = new_job(cognito, pool_id, role)
    assert put(job["PreSignedUrl"], body, KMS) == 200
    cognito.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
    return wait(cognito, pool_id, job["JobId"])[0]


def log_lines(logs, pool: dict[str, Any], job: dict[str, Any]) -> list[str]:  # type: ignore[no-untyped-def]
    group = f"/aws/cognito/userpools/{pool['Id']}/{pool['Name']}"
    stream = f"{job['JobId']}/{job['JobName']}"
    return [e["message"] for e in logs.get_log_events(logGroupName=group, logStreamName=stream)["events"]]


def test_csv_header_is_the_pools_attributes_then_the_cognito_columns(cognito, pool) -> None:
    header = cognito.get_csv_header(UserPoolId=pool["Id"])

    assert header["UserPoolId"] == pool["Id"]
    assert header["CSVHeader"] == [*STANDARD, "custom:tier", "cognito:mfa_enabled", "cognito:username"]


def test_csv_header_of_an_unknown_pool_is_not_found(cognito) -> None:
    with pytest.raises(ClientError) as error:
        cognito.get_csv_header(UserPoolId=f"{REGION}_Nope00000")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_import_job_runs_to_the_end_and_creates_users_reset_required(cognito, logs, pool, logs_role) -> None:
    header = cognito.get_csv_header(UserPoolId=pool["Id"])["CSVHeader"]
    optional_mfa(cognito, pool["Id"])  # bo keeps SMS MFA: the pool's MFA must not be OFF
    cognito.admin_create_user(UserPoolId=pool["Id"], Username="Existing", MessageAction="SUPPRESS")
    rows = [
        user("ann", name="Ann Lee", **{"custom:tier": "pro"}),
        user("bo", phone_number="+15550000002", phone_number_verified="true", **{"cognito:mfa_enabled": "true"}),
        user("existing"),  # differs by case from a user the case-insensitive pool holds: skipped
        user("cy", email_verified="false"),  # no auto-verified attribute set to true
        user("dee", phone_number="(555) 000-0003"),  # not E.164
    ]
    job = new_job(cognito, pool["Id"], logs_role)
    assert job["Status"] == "Created" and job["JobId"].startswith("import-")
    assert job["PreSignedUrl"].startswith(cognito.meta.endpoint_url + "/_local/import/" + job["JobId"])

    assert put(job["PreSignedUrl"], csv_text(header, rows), KMS) == 200
    started = cognito.start_user_import_job(UserPoolId=pool["Id"], JobId=job["JobId"])["UserImportJob"]
    assert started["Status"] == "Pending"
    done, seen = wait(cognito, pool["Id"], job["JobId"])

    assert seen[-1] == "Succeeded" and "InProgress" in seen, seen
    assert (done["ImportedUsers"], done["SkippedUsers"], done["FailedUsers"]) == (2, 1, 2)
    assert done["CompletionDate"] >= done["StartDate"] >= done["CreationDate"]
    ann = cognito.admin_get_user(UserPoolId=pool["Id"], Username="ann")
    attributes = {a["Name"]: a["Value"] for a in ann["UserAttributes"]}
    assert ann["UserStatus"] == "RESET_REQUIRED" and ann["Enabled"] is True
    assert attributes["custom:tier"] == "pro" and attributes["name"] == "Ann Lee"
    assert "SMS_MFA" in cognito.admin_get_user(UserPoolId=pool["Id"], Username="bo").get("UserMFASettingList", [])
    for refused in ("cy", "dee"):
        with pytest.raises(ClientError):
            cognito.admin_get_user(UserPoolId=pool["Id"], Username=refused)

    group = f"/aws/cognito/userpools/{pool['Id']}/{pool['Name']}"
    lines = [
        e["message"]
        for e in logs.get_log_events(logGroupName=group, logStreamName=f"{job['JobId']}/stragglers")["events"]
    ]
    assert lines[0] == "[SUCCEEDED] Line Number 2 - The import succeeded."
    assert lines[2] == "[SKIPPED] Line Number 4 - The user already exists."
    assert lines[3].startswith("[FAILED] Line Number 5 - The User Record does not set any of the auto verified")
    assert lines[4] == "[FAILED] Line Number 6 - The user data doesn't match the schema: Invalid phone number format."
    assert not any("@example.com" in line for line in lines), "the log names rows by line number, never their data"


def test_upload_needs_the_kms_header_and_the_signature(cognito, pool, logs_role) -> None:
    job = new_job(cognito, pool["Id"], logs_role)
    body = csv_text(cognito.get_csv_header(UserPoolId=pool["Id"])["CSVHeader"], [user("eve")])

    assert put(job["PreSignedUrl"], body) == 400
    assert put(job["PreSignedUrl"].replace("X-Amz-Signature=", "X-Amz-Signature=0"), body, KMS) == 403
    assert put(job["PreSignedUrl"].replace(job["JobId"], "import-unknown"), body, KMS) == 404
    assert put(job["PreSignedUrl"], body, KMS) == 200


def test_header_other_than_get_csv_header_fails_the_job(cognito, pool, logs_role) -> None:
    job = new_job(cognito, pool["Id"], logs_role)
    put(job["PreSignedUrl"], csv_text(["cognito:username", "email", "email_verified"], [user("fay")]), KMS)
    cognito.start_user_import_job(UserPoolId=pool["Id"], JobId=job["JobId"])

    done, _ = wait(cognito, pool["Id"], job["JobId"])

    assert done["Status"] == "Failed"
    assert (
        "does not match GetCSVHeader" in done["CompletionMessage"]
        and "cognito:mfa_enabled" in done["CompletionMessage"]
    )


def test_a_role_cognito_cannot_assume_fails_the_job(cognito, iam, pool) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam.create_role(RoleName=f"not-cognito-{uuid.uuid4().hex[:8]}", AssumeRolePolicyDocument=json.dumps(trust))
    job = new_job(cognito, pool["Id"], role["Role"]["Arn"])
    put(job["PreSignedUrl"], csv_text(cognito.get_csv_header(UserPoolId=pool["Id"])["CSVHeader"], [user("gus")]), KMS)
    cognito.start_user_import_job(UserPoolId=pool["Id"], JobId=job["JobId"])

    done, _ = wait(cognito, pool["Id"], job["JobId"])

    assert done["Status"] == "Failed" and "cannot assume" in done["CompletionMessage"]
    assert done["ImportedUsers"] == 0


def test_a_job_starts_once_and_stops_when_asked(cognito, local_aws: LocalAWS, pool, logs_role) -> None:
    assert local_aws.import_jobs is not None
    jobs = local_aws.import_jobs.jobs
    saved, jobs.step_delay_s = jobs.step_delay_s, 0.5
    try:
        job = new_job(cognito, pool["Id"], logs_role)
        put(
            job["PreSignedUrl"],
            csv_text(cognito.get_csv_header(UserPoolId=pool["Id"])["CSVHeader"], [user("hal")]),
            KMS,
        )
        cognito.start_user_import_job(UserPoolId=pool["Id"], JobId=job["JobId"])
        with pytest.raises(ClientError) as again:
            cognito.start_user_import_job(UserPoolId=pool["Id"], JobId=job["JobId"])
        stopping = cognito.stop_user_import_job(UserPoolId=pool["Id"], JobId=job["JobId"])["UserImportJob"]
        done, _ = wait(cognito, pool["Id"], job["JobId"])
    finally:
        jobs.step_delay_s = saved

    assert again.value.response["Error"]["Code"] == "PreconditionNotMetException"
    assert stopping["Status"] == "Stopping"
    assert done["Status"] == "Stopped" and done["ImportedUsers"] == 0
    with pytest.raises(ClientError) as late:
        cognito.stop_user_import_job(UserPoolId=pool["Id"], JobId=job["JobId"])
    assert late.value.response["Error"]["Code"] == "PreconditionNotMetException"


def test_import_jobs_are_listed_a_page_at_a_time(cognito, pool, logs_role) -> None:
    created = [new_job(cognito, pool["Id"], logs_role)["JobId"] for _ in range(3)]

    first = cognito.list_user_import_jobs(UserPoolId=pool["Id"], MaxResults=2)
    rest = cognito.list_user_import_jobs(UserPoolId=pool["Id"], MaxResults=2, PaginationToken=first["PaginationToken"])

    assert [j["JobId"] for j in first["UserImportJobs"] + rest["UserImportJobs"]] == created
    assert "PaginationToken" not in rest
    assert {j["Status"] for j in first["UserImportJobs"]} == {"Created"}


def test_unknown_job_is_not_found(cognito, pool) -> None:
    with pytest.raises(ClientError) as error:
        cognito.describe_user_import_job(UserPoolId=pool["Id"], JobId="import-doesnotexist")
    assert error.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- the import-logs role, as cutover creates it (security review, finding 4) ----------------------------

BROAD_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "cognito-idp.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def role_documents(iam, name: str) -> tuple[dict[str, Any], dict[str, Any]]:  # type: ignore[no-untyped-def]
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    policy = iam.get_role_policy(RoleName=name, PolicyName=user_import.LOGS_POLICY_NAME)["PolicyDocument"]
    return trust, policy


def test_logs_role_is_assumable_for_the_new_pool_only_and_writes_only_its_log_group(cognito, iam, logs, pool) -> None:
    account = pool["Arn"].split(":")[4]
    name = f"import-logs-{uuid.uuid4().hex[:8]}"

    arn = user_import.ensure_logs_role(iam, name, REGION, account, pool["Id"])

    trust, policy = role_documents(iam, name)
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "cognito-idp.amazonaws.com"}
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": pool["Arn"]},
    }
    (resource,) = policy["Statement"][0]["Resource"]
    assert resource == f"arn:aws:logs:{REGION}:{account}:log-group:/aws/cognito/userpools/{pool['Id']}/*"
    # The role still does its job: the local AWS's import job logs to the group the policy names.
    header = cognito.get_csv_header(UserPoolId=pool["Id"])["CSVHeader"]
    job = new_job(cognito, pool["Id"], arn)
    assert put(job["PreSignedUrl"], csv_text(header, [user("ivy")]), KMS) == 200
    cognito.start_user_import_job(UserPoolId=pool["Id"], JobId=job["JobId"])
    assert wait(cognito, pool["Id"], job["JobId"])[0]["Status"] == "Succeeded"
    groups = [g["arn"] for g in logs.describe_log_groups(logGroupNamePrefix="/aws/cognito/")["logGroups"]]
    written = [g for g in groups if f"/userpools/{pool['Id']}/" in g]
    assert written and all(fnmatch.fnmatchcase(g.removesuffix(":*"), resource) for g in written)
    other_pool = f"arn:aws:logs:{REGION}:{account}:log-group:/aws/cognito/userpools/{REGION}_Other0001/other"
    assert not fnmatch.fnmatchcase(other_pool, resource)


def test_a_logs_role_left_broad_by_an_earlier_run_is_narrowed(iam, pool) -> None:
    account = pool["Arn"].split(":")[4]
    name = f"import-logs-{uuid.uuid4().hex[:8]}"
    iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(BROAD_TRUST))
    broad = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [f"arn:aws:logs:{REGION}:{account}:log-group:/aws/cognito/*"],
            }
        ],
    }
    iam.put_role_policy(RoleName=name, PolicyName=user_import.LOGS_POLICY_NAME, PolicyDocument=json.dumps(broad))

    first = user_import.ensure_logs_role(iam, name, REGION, account, pool["Id"])
    again = user_import.ensure_logs_role(iam, name, REGION, account, pool["Id"])

    assert first == again
    assert role_documents(iam, name) == (
        user_import.logs_trust(REGION, account, pool["Id"]),
        user_import.logs_policy(REGION, account, pool["Id"]),
    )


def test_without_a_pool_the_logs_role_still_names_the_account_and_its_pools_only(iam) -> None:
    name = f"import-logs-{uuid.uuid4().hex[:8]}"

    user_import.ensure_logs_role(iam, name, REGION, "123456789012")

    trust, policy = role_documents(iam, name)
    assert trust["Statement"][0]["Condition"] == {
        "StringEquals": {"aws:SourceAccount": "123456789012"},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cognito-idp:{REGION}:123456789012:userpool/*"},
    }
    assert policy["Statement"][0]["Resource"] == [
        f"arn:aws:logs:{REGION}:123456789012:log-group:/aws/cognito/userpools/*"
    ]


# --- the developer guide's rules ("Creating the user import .csv file") -------------------------------------


@pytest.mark.parametrize(
    ("level", "refused", "accepted"),
    [("OFF", "true", "false"), ("ON", "false", "true"), ("OPTIONAL", "", "true")],
)
def test_mfa_enabled_must_match_the_pools_mfa_configuration(
    cognito, logs, pool, logs_role, level: str, refused: str, accepted: str
) -> None:
    if level != "OFF":
        optional_mfa(cognito, pool["Id"], level)
    header = cognito.get_csv_header(UserPoolId=pool["Id"])["CSVHeader"]
    phone = {"phone_number": "+15550000010", "phone_number_verified": "true"}
    rows = [user("wrong", **phone, **{"cognito:mfa_enabled": refused}), user("right", **phone)]
    rows[1]["cognito:mfa_enabled"] = accepted

    done = run_job(cognito, pool["Id"], logs_role, csv_text(header, rows))

    assert (done["ImportedUsers"], done["FailedUsers"]) == (1, 1)
    lines = log_lines(logs, pool, done)
    assert lines[0].startswith("[FAILED] Line Number 2 - cognito:mfa_enabled must be")
    assert f"MFA configuration is {level}" in lines[0]


def test_row_formats_birthdate_updated_at_length_and_trimming(cognito, logs, pool, logs_role) -> None:
    header = cognito.get_csv_header(UserPoolId=pool["Id"])["CSVHeader"]
    rows = [
        user("iso-birthdate", birthdate="1985-02-01"),
        user("iso-updated", updated_at="2024-05-01T10:00:00Z"),
        user("too-long", name="x" * 16_000),
        user("good", birthdate="02/01/1985", updated_at="1471453471", name="  Good Name  "),
        user("spaced", email=" spaced@example.com ", email_verified=" TRUE "),
    ]

    done = run_job(cognito, pool["Id"], logs_role, csv_text(header, rows))

    assert (done["ImportedUsers"], done["FailedUsers"]) == (2, 3)
    lines = log_lines(logs, pool, done)
    assert lines[0].endswith("birthdate must be in the format mm/dd/yyyy.")
    assert lines[1].endswith("updated_at must be epoch time in seconds.")
    assert lines[2] == "[FAILED] Line Number 4 - The record is longer than 16,000 characters."
    good = cognito.admin_get_user(UserPoolId=pool["Id"], Username="good")
    assert {"Name": "name", "Value": "Good Name"} in good["UserAttributes"], "values are trimmed"
    spaced = cognito.admin_get_user(UserPoolId=pool["Id"], Username="spaced")
    assert {"Name": "email", "Value": "spaced@example.com"} in spaced["UserAttributes"]


def test_a_file_with_a_byte_order_mark_fails_the_job(cognito, pool, logs_role) -> None:
    header = cognito.get_csv_header(UserPoolId=pool["Id"])["CSVHeader"]

    done = run_job(cognito, pool["Id"], logs_role, b"\xef\xbb\xbf" + csv_text(header, [user("bom")]))

    assert done["Status"] == "Failed" and "without a byte order mark" in done["CompletionMessage"]
    assert done["ImportedUsers"] == 0


def test_a_file_holds_at_most_500000_users(monkeypatch: pytest.MonkeyPatch) -> None:
    from cognito_migration.local import import_rules
    from cognito_migration.local.cognito_triggers import CognitoError

    assert import_rules.MAX_USERS_PER_FILE == 500_000
    monkeypatch.setattr(import_rules, "MAX_USERS_PER_FILE", 2)  # the rule, without a 500,001-line file
    header = ["cognito:username", "cognito:mfa_enabled"]
    import_rules.parse(csv_text(header, [user("a"), user("b")]), header)
    with pytest.raises(CognitoError, match="at most 2 per file"):
        import_rules.parse(csv_text(header, [user("a"), user("b"), user("c")]), header)


def test_a_pool_without_an_auto_verified_attribute_does_not_start_a_job(cognito, pool, logs_role) -> None:
    bare = cognito.create_user_pool(PoolName=f"bare-{uuid.uuid4().hex[:8]}")["UserPool"]
    try:
        job = new_job(cognito, bare["Id"], logs_role)
        header = cognito.get_csv_header(UserPoolId=bare["Id"])["CSVHeader"]
        assert put(job["PreSignedUrl"], csv_text(header, [user("nobody")]), KMS) == 200

        with pytest.raises(ClientError) as error:
            cognito.start_user_import_job(UserPoolId=bare["Id"], JobId=job["JobId"])

        assert error.value.response["Error"]["Code"] == "InvalidParameterException"
        assert "no auto-verified attributes" in error.value.response["Error"]["Message"]
        described = cognito.describe_user_import_job(UserPoolId=bare["Id"], JobId=job["JobId"])["UserImportJob"]
        assert described["Status"] == "Created"
    finally:
        cognito.delete_user_pool(UserPoolId=bare["Id"])


@pytest.mark.parametrize("level", ["OFF", "ON", "OPTIONAL"])
def test_the_runbooks_own_import_file_passes_every_rule(cognito, pool, logs_role, level: str) -> None:
    import pandas as pd

    from cognito_migration import report, stragglers
    from cognito_migration.params import Params

    if level != "OFF":
        optional_mfa(cognito, pool["Id"], level)
    described = cognito.describe_user_pool(UserPoolId=pool["Id"])["UserPool"]
    classified = pd.DataFrame(
        {
            "username": ["ann", "bo"],
            "state": [report.NOT_YET, report.NOT_YET],
            "email": ["ann@example.com", "bo@example.com"],
            "email_verified": ["true", "true"],
            "phone_number": ["+15550000020", "+15550000021"],
            "phone_number_verified": ["true", "false"],
            "birthdate": ["1985-02-01", None],  # ListUsers' OIDC form
            "updated_at": ["2016-08-17T17:04:31Z", "1471453471"],
            "name": ["  Ann, with a comma  ", "Bo"],
            "legacy_sms_mfa": [True, False],
        }
    )
    params = Params(old_user_pool_id="us-east-1_Old00001", old_client_id="c", mfa_policy="sms")
    header = cognito.get_csv_header(UserPoolId=pool["Id"])["CSVHeader"]
    built = stragglers.build(
        classified,
        header,
        stragglers.trigger_settings(params, described),
        described["AutoVerifiedAttributes"],
        params.mfa_policy,
        mfa_configuration=described["MfaConfiguration"],
    )
    assert built.usernames == ["ann", "bo"], built.excluded

    done = run_job(cognito, pool["Id"], logs_role, stragglers.encode(built.header, built.rows))

    assert (done["Status"], done["ImportedUsers"], done["FailedUsers"]) == ("Succeeded", 2, 0)
    ann = cognito.admin_get_user(UserPoolId=pool["Id"], Username="ann")
    attributes = {a["Name"]: a["Value"] for a in ann["UserAttributes"]}
    assert (attributes["birthdate"], attributes["updated_at"]) == ("02/01/1985", "1471453471")
