"""Cognito user import jobs, from the caller's side: the CloudWatch Logs role they need, creating a job,
uploading its CSV to the pre-signed URL, polling it to the end, and reading back the rows it skipped or
failed from its log. ``cutover`` runs them; the local AWS answers them (``local/import_jobs.py``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from . import records
from .aws import absent_as_none, error_code, paginate, retry_while_role_propagates
from .params import Params

FINAL = frozenset({"Succeeded", "Failed", "Stopped", "Expired"})
POLL_FIRST_S, POLL_MAX_S, POLL_TIMEOUT_S = 0.2, 15.0, 12 * 3600.0
ROLE_RETRY_DELAYS_S = (1, 2, 3, 5, 8)  # a new role may not be assumable by Cognito for a few seconds
LOGS_POLICY_NAME = "cognito-import-logs"


class ImportJobError(RuntimeError):
    """An import job could not be run to its end; the message names the job and what to do."""


def logs_role_name(params: Params) -> str:
    return f"{params.migration_function_name[:48]}-import-logs"


def pool_arn(region: str, account: str, pool_id: str | None) -> str:
    """The new pool's ARN; without a pool id, any pool of the account in the Region."""
    return f"arn:aws:cognito-idp:{region}:{account}:userpool/{pool_id or '*'}"


def logs_trust(region: str, account: str, pool_id: str | None = None) -> dict[str, Any]:
    """Cognito may assume the role only for the new pool's import jobs. Without the conditions any pool, in
    any account, could name this role in its own import job (a confused deputy) and write to its logs."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "cognito-idp.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account},
                    "ArnLike": {"aws:SourceArn": pool_arn(region, account, pool_id)},
                },
            }
        ],
    }


def logs_policy(region: str, account: str, pool_id: str | None = None) -> dict[str, Any]:
    """What Cognito needs to write an import job's log: only the new pool's log group, which Cognito names
    /aws/cognito/userpools/<pool id>/<pool name> (its streams are <job id>/<job name>, under the group's ARN).
    Without a pool id: every pool's import log group, still not the rest of /aws/cognito/."""
    group = f"/aws/cognito/userpools/{pool_id}/*" if pool_id else "/aws/cognito/userpools/*"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                ],
                "Resource": [f"arn:aws:logs:{region}:{account}:log-group:{group}"],
            }
        ],
    }


def ensure_logs_role(iam: Any, role_name: str, region: str, account: str, pool_id: str | None = None) -> str:
    """The CloudWatchLogsRoleArn of import jobs into ``pool_id``: assumable by Cognito for that pool only,
    writing only its import log group. A role found from an earlier run gets the trust and the policy
    rewritten where they differ (an older, broader role is narrowed). Without ``pool_id``, any pool of the
    account in the Region."""
    trust, policy = logs_trust(region, account, pool_id), logs_policy(region, account, pool_id)
    role = _get_role(iam, role_name)
    if role is None:
        role = iam.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=json.dumps(trust),
            Description="Cognito user import jobs write their logs",
            Tags=[{"Key": "cognito-migration", "Value": "import-logs"}],
        )["Role"]
    elif _document(role["AssumeRolePolicyDocument"]) != trust:
        iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(trust))
    if _inline_policy(iam, role_name) != policy:
        iam.put_role_policy(RoleName=role_name, PolicyName=LOGS_POLICY_NAME, PolicyDocument=json.dumps(policy))
    return str(role["Arn"])


def _get_role(iam: Any, role_name: str) -> dict[str, Any] | None:
    found = absent_as_none(lambda: iam.get_role(RoleName=role_name), "NoSuchEntity")
    return None if found is None else dict(found["Role"])


def _inline_policy(iam: Any, role_name: str) -> dict[str, Any] | None:
    found = absent_as_none(lambda: iam.get_role_policy(RoleName=role_name, PolicyName=LOGS_POLICY_NAME), "NoSuchEntity")
    return None if found is None else _document(found["PolicyDocument"])


def _document(document: Any) -> dict[str, Any]:
    # boto3 decodes IAM's URL-encoded JSON into a dict; some endpoints answer the JSON text.
    return json.loads(document) if isinstance(document, str) else dict(document)


def create_job(cognito: Any, pool_id: str, name: str, role_arn: str, sleep: Callable[[float], None]) -> dict[str, Any]:
    job: dict[str, Any] = retry_while_role_propagates(
        lambda: cognito.create_user_import_job(JobName=name, UserPoolId=pool_id, CloudWatchLogsRoleArn=role_arn)[
            "UserImportJob"
        ],
        "InvalidParameterException",
        ROLE_RETRY_DELAYS_S,
        sleep=sleep,
    )
    return job


def upload(url: str, body: bytes, job_id: str) -> None:
    """PUT the CSV to the job's pre-signed URL; Cognito's bucket requires KMS encryption."""
    request = urllib.request.Request(
        url,
        data=body,
        method="PUT",
        headers={"x-amz-server-side-encryption": "aws:kms", "Content-Type": "text/csv"},
    )
    try:
        with urllib.request.urlopen(request, timeout=300):
            return
    except urllib.error.HTTPError as exc:
        # The URL's query carries the signature: never put it in a message.
        raise ImportJobError(
            f"upload of job {job_id} refused: HTTP {exc.code} {exc.read()[:200]!r}; create a new job (re-run)"
        ) from None


def import_windows(cognito: Any, pool_id: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """When each of the pool's import jobs ran (start, end; a running job until now): the users created then
    came by import, not lazily. Every page of ListUserImportJobs (botocore has no paginator for it)."""
    now = pd.Timestamp.now(tz="UTC")
    windows, token = [], None
    while True:
        page = cognito.list_user_import_jobs(
            UserPoolId=pool_id, MaxResults=60, **({"PaginationToken": token} if token else {})
        )
        for job in page.get("UserImportJobs", []):
            if job.get("StartDate") is not None:
                end = job.get("CompletionDate")
                windows.append((_utc(job["StartDate"]), now if end is None else _utc(end)))
        token = page.get("PaginationToken")
        if not token:
            return windows


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def poll(cognito: Any, pool_id: str, job_id: str, sleep: Callable[[float], None]) -> dict[str, Any]:
    """DescribeUserImportJob until the job ends, backing off to one call per 15 s (its quota is shared)."""
    waited, interval = 0.0, POLL_FIRST_S
    while True:
        job: dict[str, Any] = cognito.describe_user_import_job(UserPoolId=pool_id, JobId=job_id)["UserImportJob"]
        if job["Status"] in FINAL:
            return job
        if waited > POLL_TIMEOUT_S:
            raise ImportJobError(
                f"import job {job_id} is still {job['Status']} after {waited / 3600:.0f} h: follow it with "
                "DescribeUserImportJob, or stop it with StopUserImportJob"
            )
        sleep(interval)
        waited, interval = waited + interval, min(POLL_MAX_S, interval * 2)


def job_problems(
    logs: Any, pool: Mapping[str, Any], job: dict[str, Any], usernames: list[str], mask: records.Masker
) -> list[dict[str, Any]]:
    """The rows the job skipped or failed, from its CloudWatch log (which names rows by line number: the
    header is line 1), with the user named (masked) from the file we wrote."""
    group = f"/aws/cognito/userpools/{pool['Id']}/{pool['Name']}"
    stream = f"{job['JobId']}/{job['JobName']}"
    try:
        events = list(paginate(logs, "filter_log_events", "events", logGroupName=group, logStreamNames=[stream]))
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
        return []
    problems = []
    for event in events:
        outcome, _, rest = event["message"].partition("] Line Number ")
        if outcome not in ("[FAILED", "[SKIPPED"):
            continue
        number, _, detail = rest.partition(" - ")
        index = int(number) - 2 if number.isdigit() else -1
        name = usernames[index] if 0 <= index < len(usernames) else ""
        problems.append(
            {
                "line": int(number) if number.isdigit() else None,
                "outcome": outcome.strip("["),
                "username": mask.text(name),
                "detail": detail,
            }
        )
    return problems
