"""Cognito's CSV user import for the local AWS, which moto lacks: a WSGI layer in front of the server.

It answers GetCSVHeader, CreateUserImportJob, StartUserImportJob, DescribeUserImportJob,
ListUserImportJobs and StopUserImportJob with botocore's shapes, and serves the job's pre-signed URL
(``http://<host>/_local/import/<job-id>?X-Amz-Signature=...``) on the same server: the PUT must carry
``x-amz-server-side-encryption: aws:kms``, as Cognito's S3 URL requires. Starting a job runs it in a
background thread, Created -> Pending -> InProgress -> Succeeded / Failed (or Stopping -> Stopped), and
creates the users in moto's backend as RESET_REQUIRED, following the developer guide (the rules are in
``import_rules``): a pool without an auto-verified attribute does not start a job; the header must be the
pool's GetCSVHeader (any order); a file with a byte order mark or more than 500,000 users fails the job; a
row whose user already exists is SKIPPED; a row that breaks a row rule is FAILED, and the job goes on. One
line per row goes to CloudWatch Logs, group ``/aws/cognito/userpools/<pool>/<name>``, stream
``<job-id>/<job-name>``, naming the row by line number (the header is line 1), never its data.
The CloudWatchLogsRoleArn must be an IAM role that cognito-idp.amazonaws.com may assume, else the job fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool, UserStatus, cognitoidp_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.exceptions import JsonRESTError
from moto.iam.models import iam_backends
from moto.utilities.utils import get_partition

from . import import_rules as rules
from . import log_events
from .cognito_triggers import TARGET_PREFIX, CognitoError
from .import_rules import MFA_ENABLED, USERNAME

OPERATIONS = frozenset(
    {
        "GetCSVHeader",
        "CreateUserImportJob",
        "StartUserImportJob",
        "DescribeUserImportJob",
        "ListUserImportJobs",
        "StopUserImportJob",
    }
)
# GetCSVHeader's order in the developer guide; custom attributes follow the standard ones.
STANDARD_HEADER = (
    "name given_name family_name middle_name nickname preferred_username profile picture website email "
    "email_verified gender birthdate zoneinfo locale phone_number phone_number_verified address updated_at"
).split()
UPLOAD_PATH = "/_local/import/"
PRESIGNED_URL_TTL_S = 900
MAX_FILE_BYTES = 100 * 1000 * 1000
_REGION_IN_AUTH = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/cognito-idp/")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass
class ImportJob:
    job_id: str
    job_name: str
    pool_id: str
    region: str
    role_arn: str
    url: str
    created: float = field(default_factory=time.time)
    status: str = "Created"
    started: float | None = None
    completed: float | None = None
    imported: int = 0
    skipped: int = 0
    failed: int = 0
    message: str | None = None
    body: bytes | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        """UserImportJobType, as botocore's service model has it."""
        data: dict[str, Any] = {
            "JobName": self.job_name,
            "JobId": self.job_id,
            "UserPoolId": self.pool_id,
            "PreSignedUrl": self.url,
            "CreationDate": self.created,
            "Status": self.status,
            "CloudWatchLogsRoleArn": self.role_arn,
            "ImportedUsers": self.imported,
            "SkippedUsers": self.skipped,
            "FailedUsers": self.failed,
        }
        optional = {"StartDate": self.started, "CompletionDate": self.completed, "CompletionMessage": self.message}
        data.update({k: v for k, v in optional.items() if v is not None})
        return data


class ImportJobs:
    """The import jobs of every pool in this process, and the thread that runs each started one.

    ``step_delay_s`` holds each status change for that long, so that polling clients see every status."""

    def __init__(self, account_id: str = DEFAULT_ACCOUNT_ID, step_delay_s: float = 0.05) -> None:
        self.account_id = account_id
        self.step_delay_s = step_delay_s
        self.jobs: dict[str, ImportJob] = {}
        self._lock = threading.Lock()
        self._stop_requested: set[str] = set()
        self._secret = secrets.token_bytes(16)

    # -- the API --------------------------------------------------------------------------------------

    def get_csv_header(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        pool = self._pool(region, request.get("UserPoolId", ""))
        return {"UserPoolId": pool.id, "CSVHeader": csv_header(pool)}

    def create(self, region: str, request: dict[str, Any], host: str) -> dict[str, Any]:
        pool = self._pool(region, request.get("UserPoolId", ""))
        job_id = "import-" + secrets.token_urlsafe(9).replace("_", "a").replace("-", "b")
        url = f"http://{host}{UPLOAD_PATH}{job_id}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={PRESIGNED_URL_TTL_S}"
        url += f"&X-Amz-SignedHeaders=host%3Bx-amz-server-side-encryption&X-Amz-Signature={self._signature(job_id)}"
        job = ImportJob(
            job_id, request.get("JobName", ""), pool.id, region, request.get("CloudWatchLogsRoleArn", ""), url
        )
        with self._lock:
            self.jobs[job_id] = job
        return {"UserImportJob": job.to_json()}

    def start(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        job = self._job(region, request)
        # "If the user pool has no auto-verified attributes, the import job will not start."
        rules.require_auto_verified(self._pool(region, job.pool_id))
        with self._lock:
            if job.status != "Created":
                raise CognitoError(
                    "PreconditionNotMetException", f"Job {job.job_id} is {job.status}: only a Created job starts"
                )
            job.status, job.started = "Pending", time.time()
        threading.Thread(target=self._run, args=(job,), name=f"import-{job.job_id}", daemon=True).start()
        return {"UserImportJob": job.to_json()}

    def stop(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        job = self._job(region, request)
        with self._lock:
            if job.status not in ("Pending", "InProgress"):
                raise CognitoError("PreconditionNotMetException", f"Job {job.job_id} is {job.status}: nothing to stop")
            job.status = "Stopping"
            self._stop_requested.add(job.job_id)
        return {"UserImportJob": job.to_json()}

    def describe(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        return {"UserImportJob": self._job(region, request).to_json()}

    def list_jobs(self, region: str, request: dict[str, Any]) -> dict[str, Any]:
        pool = self._pool(region, request.get("UserPoolId", ""))
        limit = int(request.get("MaxResults") or 0)
        if not 1 <= limit <= 60:
            raise CognitoError("InvalidParameterException", "MaxResults must be between 1 and 60")
        jobs = sorted((j for j in self.jobs.values() if j.pool_id == pool.id), key=lambda j: j.created)
        start = int(request.get("PaginationToken") or 0)
        page = [self._expire(j).to_json() for j in jobs[start : start + limit]]
        answer: dict[str, Any] = {"UserImportJobs": page}
        if start + limit < len(jobs):
            answer["PaginationToken"] = str(start + limit)
        return answer

    def upload(self, job_id: str, query: dict[str, list[str]], encryption: str, body: bytes) -> tuple[str, str]:
        """The pre-signed URL's PUT; returns (HTTP status, S3-style error code or '')."""
        job = self.jobs.get(job_id)
        if job is None:
            return "404 Not Found", "NoSuchKey"
        if not hmac.compare_digest((query.get("X-Amz-Signature") or [""])[0], self._signature(job_id)):
            return "403 Forbidden", "SignatureDoesNotMatch"
        if encryption != "aws:kms":
            return "400 Bad Request", "InvalidArgument: send the header x-amz-server-side-encryption: aws:kms"
        if self._expire(job).status != "Created":
            return "403 Forbidden", f"AccessDenied: job {job_id} is {job.status}; create a new job"
        if len(body) > MAX_FILE_BYTES:
            return "400 Bad Request", "EntityTooLarge: 100 MB per file at most"
        job.body = body
        return "200 OK", ""

    # -- running a job ---------------------------------------------------------------------------------

    def _run(self, job: ImportJob) -> None:
        time.sleep(self.step_delay_s)
        if self._settle_stop(job):
            return
        job.status = "InProgress"
        try:
            self._import(job)
        except CognitoError as exc:
            job.status, job.message = "Failed", exc.message
        else:
            if not self._settle_stop(job):
                time.sleep(self.step_delay_s)
                job.status, job.message = "Succeeded", "Import Job Completed Successfully."
        job.completed = time.time()

    def _settle_stop(self, job: ImportJob) -> bool:
        if job.job_id not in self._stop_requested:
            return False
        job.status, job.message, job.completed = "Stopped", "Import Job Stopped.", time.time()
        return True

    def _import(self, job: ImportJob) -> None:
        backend = cognitoidp_backends[self.account_id][job.region]
        pool = backend.user_pools.get(job.pool_id)
        if pool is None:
            raise CognitoError("ResourceNotFoundException", f"User pool {job.pool_id} was deleted.")
        self._require_logs_role(job)
        if job.body is None:
            raise CognitoError("InvalidParameterException", "No file was uploaded to the pre-signed URL.")
        auto_verified = rules.require_auto_verified(pool)  # the pool may have changed since the job started
        header, records = rules.parse(job.body, csv_header(pool))
        time.sleep(self.step_delay_s)
        for number, values in enumerate(records, start=2):
            if job.job_id in self._stop_requested:
                return
            outcome, text = import_row(backend, pool, header, values, auto_verified)
            if outcome == "SUCCEEDED":
                job.imported += 1
            elif outcome == "SKIPPED":
                job.skipped += 1
            else:
                job.failed += 1
            self._log(job, pool, f"[{outcome}] Line Number {number} - {text}")

    def _require_logs_role(self, job: ImportJob) -> None:
        iam = iam_backends[self.account_id][get_partition(job.region)]
        try:
            role = iam.get_role_by_arn(job.role_arn)
        except JsonRESTError:
            raise CognitoError(
                "InvalidParameterException", f"The CloudWatch Logs role {job.role_arn} does not exist."
            ) from None
        if "cognito-idp.amazonaws.com" not in (role.assume_role_policy_document or ""):
            raise CognitoError(
                "InvalidParameterException", f"cognito-idp.amazonaws.com cannot assume the role {job.role_arn}."
            )

    def _log(self, job: ImportJob, pool: CognitoIdpUserPool, message: str) -> None:
        group, stream = f"/aws/cognito/userpools/{pool.id}/{pool.name}", f"{job.job_id}/{job.job_name}"
        with self._lock:
            log_events.append(self.account_id, job.region, group, stream, message)

    # -- look-ups --------------------------------------------------------------------------------------

    def _pool(self, region: str, pool_id: str) -> CognitoIdpUserPool:
        pool = cognitoidp_backends[self.account_id][region].user_pools.get(pool_id)
        if pool is None:
            raise CognitoError("ResourceNotFoundException", f"User pool {pool_id} does not exist.")
        return pool

    def _job(self, region: str, request: dict[str, Any]) -> ImportJob:
        pool = self._pool(region, request.get("UserPoolId", ""))
        job = self.jobs.get(request.get("JobId", ""))
        if job is None or job.pool_id != pool.id:
            raise CognitoError("ResourceNotFoundException", f"Job {request.get('JobId')} does not exist.")
        return self._expire(job)

    def _expire(self, job: ImportJob) -> ImportJob:
        """A job never started expires with its pre-signed URL."""
        if job.status == "Created" and time.time() - job.created > PRESIGNED_URL_TTL_S:
            job.status, job.completed = "Expired", time.time()
        return job

    def _signature(self, job_id: str) -> str:
        return hmac.new(self._secret, job_id.encode(), hashlib.sha256).hexdigest()


def csv_header(pool: CognitoIdpUserPool) -> list[str]:
    """GetCSVHeader: the standard attributes, the pool's custom attributes, then the two cognito: columns."""
    custom = [name for name in pool.schema_attributes if name.startswith("custom:")]
    return [*STANDARD_HEADER, *custom, MFA_ENABLED, USERNAME]


def import_row(
    backend: CognitoIdpBackend, pool: CognitoIdpUserPool, header: list[str], values: list[str], auto: list[str]
) -> tuple[str, str]:
    """Imports one row: ('SUCCEEDED' | 'SKIPPED' | 'FAILED', the log line's text)."""
    if len(values) != len(header):
        return "FAILED", "The record does not have as many columns as the header."
    if rules.row_chars(values) > rules.MAX_ROW_CHARS:
        return "FAILED", f"The record is longer than {rules.MAX_ROW_CHARS:,} characters."
    record = {name: value.strip() for name, value in zip(header, values, strict=True)}
    username, mfa = record[USERNAME], record[MFA_ENABLED].lower()
    attributes = {k: v for k, v in record.items() if v and not k.startswith("cognito:")}
    problem = rules.row_problem(pool, username, mfa, attributes, auto)
    if problem:
        return "FAILED", problem
    if pool._get_user(username) is not None:
        return "SKIPPED", "The user already exists."
    try:
        user = backend.admin_create_user(
            pool.id, username, "SUPPRESS", "", [{"Name": k, "Value": v} for k, v in attributes.items()]
        )
    except JsonRESTError as exc:
        return "FAILED", f"The user data doesn't match the schema: {exc.message}"
    user.password, user.status = None, UserStatus.RESET_REQUIRED
    if mfa == "true":
        user.sms_mfa_enabled, user.preferred_mfa_setting = True, "SMS_MFA"
    return "SUCCEEDED", "The import succeeded."


class ImportJobsLayer:
    """The WSGI layer: the import-job operations and the upload URL; everything else goes to ``app``."""

    def __init__(self, app: WsgiApp, jobs: ImportJobs) -> None:
        self.app = app
        self.jobs = jobs

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path.startswith(UPLOAD_PATH):
            return self._upload(environ, start_response, path[len(UPLOAD_PATH) :])
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        if operation not in OPERATIONS:
            return self.app(environ, start_response)
        request = json.loads(_body(environ) or b"{}")
        match = _REGION_IN_AUTH.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = match.group(1) if match else "us-east-1"
        handlers: dict[str, Callable[[], dict[str, Any]]] = {
            "GetCSVHeader": lambda: self.jobs.get_csv_header(region, request),
            "CreateUserImportJob": lambda: self.jobs.create(region, request, environ.get("HTTP_HOST", "127.0.0.1")),
            "StartUserImportJob": lambda: self.jobs.start(region, request),
            "DescribeUserImportJob": lambda: self.jobs.describe(region, request),
            "ListUserImportJobs": lambda: self.jobs.list_jobs(region, request),
            "StopUserImportJob": lambda: self.jobs.stop(region, request),
        }
        try:
            payload, status = json.dumps(handlers[operation]()).encode(), "200 OK"
        except CognitoError as exc:
            payload, status = json.dumps({"__type": exc.code, "message": exc.message}).encode(), "400 Bad Request"
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("Content-Length", str(len(payload)))]
        if status != "200 OK":
            headers.append(("x-amzn-ErrorType", json.loads(payload)["__type"]))
        start_response(status, headers)
        return [payload]

    def _upload(self, environ: dict[str, Any], start_response: Callable[..., Any], job_id: str) -> list[bytes]:
        if environ.get("REQUEST_METHOD") != "PUT":
            status, error = "405 Method Not Allowed", "MethodNotAllowed: PUT the CSV file"
        else:
            encryption = environ.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION", "")
            query = parse_qs(environ.get("QUERY_STRING", ""))
            status, error = self.jobs.upload(job_id, query, encryption, _body(environ))
        code, _, message = error.partition(": ")
        payload = f"<Error><Code>{code}</Code><Message>{message or code}</Message></Error>".encode() if error else b""
        headers = [("Content-Length", str(len(payload)))]
        headers.append(("Content-Type", "application/xml") if error else ("ETag", f'"{os.urandom(8).hex()}"'))
        start_response(status, headers)
        return [payload]


def _body(environ: dict[str, Any]) -> bytes:
    length = environ.get("CONTENT_LENGTH")
    stream = environ["wsgi.input"]
    return stream.read(int(length)) if length else stream.read()
