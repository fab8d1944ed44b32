"""Sessions, clients, the request-rate budget and the one pagination helper.

AWS is reached only through boto3's standard configuration (profile, Region, AWS_ENDPOINT_URL): the local
AWS is just another endpoint, so nothing here knows whether it is local.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError

from .params import Params

# Bounded, adaptive retries: throttling is expected when production shares the quota.
RETRY_CONFIG = Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=5, read_timeout=30)


class AwsSetupError(RuntimeError):
    """The AWS account cannot be reached as configured; the message says what to set."""


def session(params: Params) -> boto3.Session:
    """A session for the operator's profile and Region."""
    try:
        return boto3.Session(profile_name=params.aws_profile, region_name=params.region)
    except Exception as exc:  # botocore raises ProfileNotFound and friends: all mean the same to an operator
        raise AwsSetupError(f"aws_profile: {params.aws_profile!r} cannot be used ({exc}); fix ~/.aws/config") from exc


def client(sess: boto3.Session, service: str) -> Any:
    """A client with the runbook's retry configuration."""
    return sess.client(service, config=RETRY_CONFIG)


def caller_identity(sess: boto3.Session) -> dict[str, str]:
    """Who this run acts as: recorded in run.json."""
    try:
        identity = client(sess, "sts").get_caller_identity()
    except (NoCredentialsError, NoRegionError) as exc:
        raise AwsSetupError(f"no AWS credentials or Region ({exc}): set aws_profile, or AWS_PROFILE / keys") from exc
    return {key: identity[key] for key in ("Account", "Arn", "UserId")}


class RateLimiter:
    """A token bucket shared by every call of a run that spends one quota category.

    ``rate`` requests per second on average, bursts of at most ``burst``. Thread-safe.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()
        self.waited_s = 0.0
        self.requests = 0  # pages paid for, retries included
        self.retries = 0  # requests botocore repeated after throttling or a server error

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    self.requests += 1
                    return
                wait = (1 - self._tokens) / self.rate
            self.waited_s += wait
            time.sleep(wait)

    def charge_retries(self, retries: int) -> None:
        """Retried requests spent quota too: pay for them, so the average rate stays within the budget."""
        for _ in range(retries):
            self.acquire()
        with self._lock:
            self.retries += retries


def paginate(
    cognito: Any, operation: str, result_key: str, limiter: RateLimiter | None = None, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    """Every item of every page of a list call, each page (and each of its retries, bounded by botocore's
    retry configuration) paid for from ``limiter`` when one is given."""
    pages = iter(cognito.get_paginator(operation).paginate(**kwargs))
    while True:
        if limiter is not None:
            limiter.acquire()
        page = next(pages, None)  # the paginator sends the request here
        if page is None:
            return
        if limiter is not None:
            limiter.charge_retries(page.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        yield from page.get(result_key, [])
        if not (page.get("PaginationToken") or page.get("NextToken")):
            return  # the last page: no request follows, so no token is spent on it


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, '' for anything else."""
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


class Connections:
    """The clients a step uses, built once from the parameters, and the run's request-rate budget."""

    def __init__(self, params: Params) -> None:
        self.session = session(params)
        self.cognito = client(self.session, "cognito-idp")
        self.iam = client(self.session, "iam")
        self.lam = client(self.session, "lambda")
        self.list_limiter = RateLimiter(params.list_rate_limit)


def connect(params: Params) -> Connections:
    """Clients for a step: the notebooks call this instead of building clients themselves."""
    return Connections(params)


# Cognito's request-rate quotas per account and Region (AWS-FACTS.md, developer guide "quotas"): requests/s
# and the operations that spend each. Shared by every pool in the Region, production traffic included.
QUOTAS: dict[str, tuple[float, tuple[str, ...]]] = {
    "UserAuthentication": (
        120,
        ("InitiateAuth", "AdminInitiateAuth", "RespondToAuthChallenge", "AdminRespondToAuthChallenge"),
    ),
    "UserCreation": (50, ("AdminCreateUser", "SignUp")),
    "UserAccountRecovery": (
        30,
        ("ForgotPassword", "ConfirmForgotPassword", "AdminSetUserPassword", "AdminResetUserPassword"),
    ),
    "UserRead": (120, ("AdminGetUser", "GetUser")),
    "UserUpdate": (
        25,
        (
            "AdminAddUserToGroup",
            "AdminRemoveUserFromGroup",
            "AdminUpdateUserAttributes",
            "AdminDeleteUserAttributes",
            "AdminDeleteUser",
            "AdminDisableUser",
            "AdminEnableUser",
            "AdminConfirmSignUp",
        ),
    ),
    "UserResourceRead": (50, ("AdminListGroupsForUser",)),
    "UserList": (30, ("ListUsers", "ListUsersInGroup")),
    "UserPoolRead": (15, ("DescribeUserPool", "ListUserPools")),
    "UserPoolUpdate": (15, ("CreateUserPool", "UpdateUserPool", "DeleteUserPool")),
    "UserPoolResourceRead": (
        20,
        (
            "ListGroups",
            "GetGroup",
            "GetCSVHeader",
            "DescribeUserImportJob",
            "ListUserImportJobs",
            "ListUserPoolClients",
            "DescribeUserPoolClient",
            "ListIdentityProviders",
            "ListResourceServers",
            "DescribeUserPoolDomain",
        ),
    ),
    "UserPoolResourceUpdate": (
        15,
        (
            "CreateGroup",
            "UpdateGroup",
            "DeleteGroup",
            "CreateUserImportJob",
            "StartUserImportJob",
            "CreateUserPoolClient",
            "UpdateUserPoolClient",
            "CreateUserPoolDomain",
        ),
    ),
}
_CATEGORY_OF = {operation: category for category, (_, operations) in QUOTAS.items() for operation in operations}


def quota_category(operation: str) -> str | None:
    """The quota category an operation spends (None for operations outside the table)."""
    return _CATEGORY_OF.get(operation)
