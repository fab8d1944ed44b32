"""Faults on request: throttling, server errors and latency for chosen operations, at chosen rates.

The outermost layer of the local AWS, so the runbook's own calls and the deployed trigger's calls meet the
same faults, as they would in an account under load:

    aws.faults.add("ListUsers", throttle=0.2)          # 20% TooManyRequestsException
    aws.faults.add("*", error=0.05, latency_s=0.1)      # 5% InternalErrorException, 100 ms on every call
    aws.faults.add("CreateFunction", fail_first=2, code="InvalidParameterValueException",
                   message="The role defined for the function cannot be assumed by Lambda.")
    aws.faults.add("ListUsers", fail_after=40, code="InternalErrorException", message="...")  # the 41st on
    aws.faults.expire_credentials(after=40)             # every call after the 40th: ExpiredTokenException

With ``aws.faults.enforce_quotas()`` it also answers TooManyRequestsException above Cognito's
request-rate quotas, per category (``quotas.QUOTAS``), and above 5 requests/s of one operation against one
pool in the pool-resource and pool-client categories (``quotas.POOL_LIMITED``), as AWS does; ``latency_s``
adds a fixed delay to every call, so scans can be measured under realistic conditions on one machine.

Rules are also set over HTTP (``POST /_local/faults`` with a JSON list of rules, ``DELETE`` to clear), so
a process that only knows the endpoint (a notebook kernel, a benchmark) can drive them. Draws come from a
seeded random generator: a run with the same rules and calls meets the same faults.
"""

from __future__ import annotations

import io
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from ..quotas import PER_POOL_OPERATION_RPS, POOL_LIMITED, QUOTAS, quota_category

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# A JSON-protocol service's answer to a request signed with expired temporary credentials (HTTP 400; the
# README's fidelity ledger gives the sources).
EXPIRED_TOKEN = ("ExpiredTokenException", "The security token included in the request is expired")
CONTROL_PATH = "/_local/faults"


@dataclass(frozen=True)
class FaultRule:
    """Faults for one operation (its X-Amz-Target action, e.g. ``ListUsers``; ``*`` for every call)."""

    operation: str
    throttle: float = 0.0  # share of calls answered TooManyRequestsException
    error: float = 0.0  # share of calls answered InternalErrorException (HTTP 500)
    latency_s: float = 0.0  # added to every matching call
    fail_first: int = 0  # answer the first N matching calls with `code` / `message` (HTTP 400)
    fail_after: int | None = None  # answer every matching call after the first N with `code` / `message`
    code: str = ""
    message: str = ""

    def __post_init__(self) -> None:
        if not (0 <= self.throttle <= 1 and 0 <= self.error <= 1 and self.throttle + self.error <= 1):
            raise ValueError(f"{self.operation}: throttle and error are shares between 0 and 1, together at most 1")
        if self.latency_s < 0:
            raise ValueError(f"{self.operation}: latency_s must not be negative")
        if (self.fail_first or self.fail_after is not None) and not self.code:
            raise ValueError(f"{self.operation}: fail_first or fail_after needs the error code to answer")
        if self.fail_after is not None and self.fail_after < 0:
            raise ValueError(f"{self.operation}: fail_after counts calls: 0 or more")


class FaultInjector:
    """WSGI layer answering a share of calls with AWS's throttling or server errors."""

    def __init__(self, app: WsgiApp, seed: int = 1) -> None:
        self.app = app
        self._rules: dict[str, FaultRule] = {}
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {}
        self._failed_first: dict[str, int] = {}
        self._calls: dict[str, int] = {}  # matching calls per rule, for fail_after
        self._quotas: dict[str, _Bucket] = {}
        self._per_pool: dict[tuple[str, str], _Bucket] = {}  # (operation, pool id): the 5 RPS per-pool limit
        self._scale = 1.0
        self._latency_s = 0.0
        self.served: dict[str, int] = {}  # requests per quota category that got through (for benchmarks)

    def add(self, operation: str, **faults: Any) -> None:
        """Sets the faults of ``operation`` (see FaultRule for the keywords), replacing earlier ones."""
        rule = FaultRule(operation, **faults)
        with self._lock:
            self._rules[operation] = rule
            self._failed_first[operation] = 0
            self._calls[operation] = 0

    def expire_credentials(self, after: int = 0, operation: str = "*") -> None:
        """Every call (or every call of ``operation``) after the first ``after`` is refused as AWS refuses a
        request signed with expired temporary credentials, until the rule is cleared (the credentials renewed).
        Cognito, a JSON service, answers ExpiredTokenException (STS and the query services: ExpiredToken)."""
        self.add(operation, fail_after=after, code=EXPIRED_TOKEN[0], message=EXPIRED_TOKEN[1])

    def enforce_quotas(self, scale: float = 1.0, latency_s: float = 0.0) -> None:
        """Answers TooManyRequestsException above ``scale`` x each category's quota (quotas.QUOTAS), and delays
        every call by ``latency_s`` (a round trip to a real Region is ~50-150 ms)."""
        with self._lock:
            self._quotas = {category: _Bucket(rate * scale) for category, (rate, _) in QUOTAS.items()}
            self._per_pool, self._scale = {}, scale
            self._latency_s = latency_s

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()
            self.injected.clear()
            self._quotas.clear()
            self._per_pool.clear()
            self._latency_s = 0.0
            self.served.clear()

    @property
    def rules(self) -> list[FaultRule]:
        with self._lock:
            return list(self._rules.values())

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == CONTROL_PATH:
            return self._control(environ, start_response)
        operation = operation_of(environ)
        fault, latency, rule = self._draw(operation)
        latency += self._latency_s
        if latency:
            time.sleep(latency)
        if not fault and not self._within_quota(operation, environ):
            return _answer(start_response, "400 Bad Request", "TooManyRequestsException", "Too many requests")
        if fault in ("fail_first", "fail_after") and rule is not None:
            return _answer(start_response, "400 Bad Request", rule.code, rule.message)
        if fault == "throttle":
            return _answer(start_response, "400 Bad Request", "TooManyRequestsException", "Too many requests")
        if fault == "error":
            return _answer(start_response, "500 Internal Server Error", "InternalErrorException", "Internal error")
        return self.app(environ, start_response)

    def _within_quota(self, operation: str, environ: dict[str, Any]) -> bool:
        category = quota_category(operation)
        bucket = self._quotas.get(category or "")
        pool_bucket = self._pool_bucket(operation, environ) if bucket is not None and category in POOL_LIMITED else None
        with self._lock:
            if bucket is not None and not (bucket.take() and (pool_bucket is None or pool_bucket.take())):
                key = f"{operation}:quota"
                self.injected[key] = self.injected.get(key, 0) + 1
                return False
            if category:
                self.served[category] = self.served.get(category, 0) + 1
        return True

    def _pool_bucket(self, operation: str, environ: dict[str, Any]) -> _Bucket:
        """The bucket of this operation against the request's pool (read from the body, which is put back)."""
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            pool_id = str(json.loads(body or b"{}").get("UserPoolId", ""))
        except (ValueError, AttributeError):
            pool_id = ""
        with self._lock:
            key = (operation, pool_id)
            if key not in self._per_pool:
                self._per_pool[key] = _Bucket(PER_POOL_OPERATION_RPS * self._scale)
            return self._per_pool[key]

    def _draw(self, operation: str) -> tuple[str, float, FaultRule | None]:
        with self._lock:
            rule = (self._rules.get(operation) or self._rules.get("*")) if operation else None
            if rule is None:
                return "", 0.0, None
            self._calls[rule.operation] = calls = self._calls.get(rule.operation, 0) + 1
            if self._failed_first.get(rule.operation, 0) < rule.fail_first:
                self._failed_first[rule.operation] = self._failed_first.get(rule.operation, 0) + 1
                fault = "fail_first"
            elif rule.fail_after is not None and calls > rule.fail_after:
                fault = "fail_after"
            else:
                draw = self._random.random()
                fault = "throttle" if draw < rule.throttle else "error" if draw < rule.throttle + rule.error else ""
            if fault:
                key = f"{operation}:{fault}"
                self.injected[key] = self.injected.get(key, 0) + 1
            return fault, rule.latency_s, rule

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "DELETE":
            self.clear()
        elif method == "POST":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            try:
                rules = [FaultRule(**r) for r in json.loads(body or b"[]")]
            except (TypeError, ValueError) as exc:
                return _answer(start_response, "400 Bad Request", "ValidationException", str(exc))
            for rule in rules:
                self.add(**asdict(rule))
        payload = json.dumps({"rules": [asdict(r) for r in self.rules], "injected": self.injected}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


class _Bucket:
    """A server-side token bucket: ``rate`` requests per second, bursts of one second's worth."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.updated = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


# Lambda's REST operations the runbook calls, by method and path (JSON services name theirs in X-Amz-Target).
_LAMBDA_OPERATIONS = (
    ("POST", re.compile(r"^/2015-03-31/functions/?$"), "CreateFunction"),
    ("PUT", re.compile(r"^/2015-03-31/functions/[^/]+/code$"), "UpdateFunctionCode"),
    ("PUT", re.compile(r"^/2015-03-31/functions/[^/]+/configuration$"), "UpdateFunctionConfiguration"),
    ("POST", re.compile(r"^/2015-03-31/functions/[^/]+/policy$"), "AddPermission"),
)


def operation_of(environ: dict[str, Any]) -> str:
    """The API operation of a request: the X-Amz-Target action, or a known Lambda REST route; '' otherwise."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rpartition(".")[2]
    method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
    return next((name for verb, route, name in _LAMBDA_OPERATIONS if verb == method and route.match(path)), "")


def _answer(start_response: Callable[..., Any], status: str, code: str, message: str) -> list[bytes]:
    payload = json.dumps({"__type": code, "message": message}).encode()
    start_response(
        status,
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(payload))),
            ("x-amzn-ErrorType", code),
        ],
    )
    return [payload]
