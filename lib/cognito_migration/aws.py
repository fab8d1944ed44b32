"""Sessions, clients, the request-rate budget and the one pagination helper.

AWS is reached only through boto3's standard configuration (profile, Region, AWS_ENDPOINT_URL): the local
AWS is just another endpoint, so nothing here knows whether it is local.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import boto3
import pandas as pd
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    NoCredentialsError,
    NoRegionError,
    TokenRetrievalError,
    UnauthorizedSSOTokenError,
)

from .params import Params
from .quotas import QUOTAS, ceiling, quota_category

if TYPE_CHECKING:  # boto3-stubs: a development dependency, not a runtime one
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_lambda import LambdaClient

# Bounded standard retries (exponential backoff with jitter), under the runbook's own budget. Not botocore's
# adaptive mode: its client-side rate limiter would slow each client on its own, stacked on RateLimiter, which
# already slows every call of a quota category together after throttling (and is what the operator sets).
# One controller per category, with the rate it shows in the step's usage table, is easier to reason about.
RETRY_CONFIG = Config(retries={"max_attempts": 8, "mode": "standard"}, connect_timeout=5, read_timeout=30)

T = TypeVar("T")
# The services the runbook calls (requirements-dev.txt installs boto3-stubs for each).
Service = Literal["cognito-idp", "dynamodb", "iam", "lambda", "logs", "sts"]


class AwsSetupError(RuntimeError):
    """The AWS account cannot be reached as configured; the message says what to set."""


def session(params: Params) -> boto3.Session:
    """A session for the operator's profile and Region. Its credentials come from boto3's chain and stay the
    chain's object: SSO, assume-role profiles, credential processes and instance roles give refreshable
    credentials, which every client built from the session (``client``) renews itself before they expire,
    so a read of hours outlives them. Keys that cannot refresh (exported AWS_* variables) expire:
    ``credentials_expired`` tells that error apart, and the reads stop with what to renew."""
    try:
        return boto3.Session(profile_name=params.aws_profile, region_name=params.region)
    except Exception as exc:  # botocore raises ProfileNotFound and friends: all mean the same to an operator
        raise AwsSetupError(f"aws_profile: {params.aws_profile!r} cannot be used ({exc}); fix ~/.aws/config") from exc


def client(sess: boto3.Session, service: Service) -> Any:
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
    """A request-rate budget shared by every call of a run that spends one quota category.

    ``rate`` requests per second, ``burst`` at once at most (default 1). Each request takes the next send
    slot, 1/rate after the previous one; a slot is never earlier than ``burst - 1`` slots before now, so time
    left unused (an idle moment) is not saved up for a burst: no window of t seconds holds more than
    burst + rate x t requests, however short the read. Slots are kept from one request to the next, not
    measured from when a caller woke up, so a late wake-up does not cost the budget a slot (a token bucket
    holding one token lost ~6% of its rate that way). Thread-safe. Adaptive: when requests had to be retried
    (production is using the quota too), the rate drops to 70% (not below a tenth of the budget) and climbs
    back 5% per clean request, never above the budget.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.budget = rate
        self.rate = rate
        self.capacity = burst if burst is not None else 1.0
        self._next_slot = time.monotonic()
        self._lock = threading.Lock()
        self.waited_s = 0.0
        self.requests = 0  # pages paid for, retries included
        self.retries = 0  # requests botocore repeated after throttling or a server error

    def acquire(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(self._next_slot, now - (self.capacity - 1) / self.rate)
            self._next_slot = slot + 1 / self.rate
            self.requests += 1
            wait = slot - now
            if wait > 0:
                self.waited_s += wait
        if wait > 0:
            time.sleep(wait)

    def charge_retries(self, retries: int) -> None:
        """Retried requests spent quota too: pay for them, so the average rate stays within the budget."""
        for _ in range(retries):
            self.acquire()
        with self._lock:
            self.retries += retries
            if retries:
                self.rate = max(self.budget / 10, self.rate * 0.7)
            else:
                self.rate = min(self.budget, self.rate * 1.05)


class Budget:
    """The run's request-rate budget: one RateLimiter per quota category, shared by every call that spends it.
    Rates come from ``rate_limits`` and ``list_rate_limit`` (UserList); the default is half the quota, or half
    of 5/s in the categories Cognito also limits per operation and pool (``quotas.ceiling``)."""

    def __init__(self, params: Params) -> None:
        self._rates = {category: ceiling(category) / 2 for category in QUOTAS}
        self._rates.update(params.rate_limits)
        self._rates["UserList"] = params.list_rate_limit
        self._limiters: dict[str, RateLimiter] = {}
        self._lock = threading.Lock()

    def limiter(self, category: str) -> RateLimiter:
        with self._lock:
            if category not in self._limiters:
                self._limiters[category] = RateLimiter(self._rates[category])
            return self._limiters[category]

    def for_operation(self, cognito: Any, operation: str) -> RateLimiter | None:
        """The limiter of the category a client method (e.g. ``list_users``) spends; None outside the table."""
        category = quota_category(cognito.meta.method_to_api_mapping.get(operation, operation))
        return self.limiter(category) if category else None

    def usage(self) -> pd.DataFrame:
        """Per category used so far: requests (retries included), retries, seconds waited, the current
        adaptive rate and the budget."""
        with self._lock:
            limiters = dict(self._limiters)
        rows = [
            {
                "category": category,
                "requests": lim.requests,
                "retries": lim.retries,
                "waited_s": round(lim.waited_s, 1),
                "rate": round(lim.rate, 2),
                "budget": lim.budget,
            }
            for category, lim in sorted(limiters.items())
        ]
        return pd.DataFrame(rows, columns=["category", "requests", "retries", "waited_s", "rate", "budget"])


def paginate(
    cognito: Any, operation: str, result_key: str, limiter: RateLimiter | Budget | None = None, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    """Every item of every page of a list call, each page (and each of its retries, bounded by botocore's
    retry configuration) paid for from ``limiter`` when one is given."""
    for page in pages(cognito, operation, result_key, limiter, **kwargs):
        yield from page


def pages(
    cognito: Any,
    operation: str,
    result_key: str,
    limiter: RateLimiter | Budget | None = None,
    stop: threading.Event | None = None,
    **kwargs: Any,
) -> Iterator[list[dict[str, Any]]]:
    """``paginate``, a page's items at a time. Once ``stop`` is set, raises Stopped instead of sending the next
    request: a reader told to stop never takes a half-read listing for a whole one (a listing whose last page
    is in hand needs no request, and ends normally)."""
    if isinstance(limiter, Budget):
        limiter = limiter.for_operation(cognito, operation)
    responses = iter(cognito.get_paginator(operation).paginate(**kwargs))
    while True:
        if stop is not None and stop.is_set():
            raise Stopped(f"{operation} stopped before its next page")
        if limiter is not None:
            limiter.acquire()
        page = next(responses, None)  # the paginator sends the request here
        if page is None:
            return
        if limiter is not None:
            limiter.charge_retries(page.get("ResponseMetadata", {}).get("RetryAttempts", 0))
        yield list(page.get(result_key, []))
        if not (page.get("PaginationToken") or page.get("NextToken")):
            return  # the last page: no request follows, so no token is spent on it


class Stopped(RuntimeError):
    """A paged listing stopped before its end because its reader was told to (``pages``' ``stop``)."""


# What AWS answers a request signed with credentials that expired or were never (or are no longer) valid:
# STS's and the query services' ExpiredToken, the JSON services' (Cognito's) ExpiredTokenException, a
# signature too old (RequestExpired), and an unknown key (InvalidClientTokenId, UnrecognizedClientException).
EXPIRED_CREDENTIALS = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "InvalidClientTokenId", "UnrecognizedClientException"}
)


def credentials_expired(exc: BaseException) -> bool:
    """Whether AWS refused the request for its credentials, or botocore could not refresh them (an SSO
    session that ended): renewing them is the fix."""
    return error_code(exc) in EXPIRED_CREDENTIALS or isinstance(exc, UnauthorizedSSOTokenError | TokenRetrievalError)


def error_code(exc: BaseException) -> str:
    """The AWS error code of a ClientError, '' for anything else."""
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def absent_as_none(call: Callable[[], T], *codes: str) -> T | None:
    """What ``call`` returns, or None where AWS answers one of ``codes`` (the thing is not there)."""
    try:
        return call()
    except ClientError as exc:
        if error_code(exc) not in codes:
            raise
        return None


def retry_while_role_propagates(
    call: Callable[[], T],
    code: str,
    delays: tuple[float, ...],
    sleep: Callable[[float], None] | None = None,
    on_retry: Callable[[int, float, ClientError], None] | None = None,
    give_up: Callable[[ClientError, int], Exception] | None = None,
) -> T:
    """What ``call`` returns, calling it again after each of ``delays`` while AWS refuses it with ``code``
    naming a role: IAM is eventually consistent, so a role just created is refused for a few seconds.
    ``on_retry(attempt, delay, error)`` before each wait. Bounded: after the last attempt the error from
    ``give_up(error, attempts)``, or the ClientError itself without ``give_up``."""
    for attempt, delay in enumerate((*delays, None), start=1):
        try:
            return call()
        except ClientError as exc:
            if error_code(exc) != code or "role" not in str(exc).lower():
                raise
            if delay is None:
                if give_up is None:
                    raise
                raise give_up(exc, attempt) from exc
            if on_retry is not None:
                on_retry(attempt, delay, exc)
            # Looked up now, not bound as a default: a test's patch of time.sleep still applies.
            (sleep or time.sleep)(delay)
    raise AssertionError("unreachable")


class Connections:
    """The clients a step uses, built once from the parameters, the run's request-rate budget, and who the
    step acts as (refused in any account but ``aws_account_id`` when that is set)."""

    def __init__(self, params: Params) -> None:
        self.session = session(params)
        self.identity = caller_identity(self.session)
        if params.aws_account_id and self.identity["Account"] != params.aws_account_id:
            raise AwsSetupError(
                f"aws_account_id: these credentials act as {self.identity['Arn']} in account "
                f"{self.identity['Account']}, not {params.aws_account_id}: switch credentials (aws_profile, "
                "AWS_PROFILE) or correct aws_account_id; nothing was read or written"
            )
        self.cognito: CognitoIdentityProviderClient = client(self.session, "cognito-idp")
        self.iam: IAMClient = client(self.session, "iam")
        self.lam: LambdaClient = client(self.session, "lambda")
        self.dynamodb: DynamoDBClient = client(self.session, "dynamodb")  # the sign-up index (signup_index)
        self.budget = Budget(params)
        self.list_limiter = self.budget.limiter("UserList")


def connect(params: Params) -> Connections:
    """Clients for a step: the notebooks call this instead of building clients themselves."""
    return Connections(params)


class WholeTable:
    """A table shown with every value whole. pandas cuts a cell at 50 characters: a record whose records folder
    or caller ARN ends in "..." no longer says where it was written or who acted."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame

    def __repr__(self) -> str:
        with pd.option_context("display.max_colwidth", None, "display.width", None):
            return repr(self.frame)

    def _repr_html_(self) -> str:
        with pd.option_context("display.max_colwidth", None):
            return self.frame.to_html(notebook=True)


def where(params: Params, conn: Connections) -> WholeTable:
    """Where a step is about to act, shown first in every notebook: environment, account and caller,
    Region, endpoint, pools, and whether it may write."""
    endpoint = str(conn.cognito.meta.endpoint_url)
    loopback = any(host in endpoint for host in ("://127.0.0.1", "://localhost", "://[::1]"))
    rows = [
        ("environment", params.env),
        (
            "parameters",
            "the runner's complete set (run.json)"
            if params.run_dir and not Path(params.run_dir).name.startswith("manual-")
            else f"by hand: this notebook's edits over params/{params.env}.yaml",
        ),
        ("AWS account", conn.identity["Account"] + (" (as aws_account_id requires)" if params.aws_account_id else "")),
        ("caller", conn.identity["Arn"]),
        ("Region", params.region),
        ("endpoint", endpoint + (" (the local AWS)" if loopback else "")),
        ("old pool", params.old_user_pool_id),
        ("new pool", f"{params.new_pool_name} (found by name and tag)"),
        ("writes", "no: dry_run" if params.dry_run else "yes, where this step writes (dry_run is false)"),
        ("cutover confirmed", "by cutover_confirm" if params.cutover_confirm else "no (step 6: its button asks)"),
        ("records", str(params.records_dir)),
    ]
    return WholeTable(pd.DataFrame(rows, columns=["where", "value"]).set_index("where"))
