"""Cognito's part in Lambda triggers, which moto does not play: a WSGI middleware around moto's server.

For a password sign-in (InitiateAuth USER_PASSWORD_AUTH, AdminInitiateAuth ADMIN_USER_PASSWORD_AUTH) or a
ForgotPassword on a pool whose LambdaConfig names a UserMigration function, when the user does not exist,
it builds the documented event, runs the deployed function (``lambda_runtime``), validates the answer as
Cognito does, creates the user, and lets the original call go on to moto. PostAuthentication runs after a
sign-in that issued tokens; PreSignUp before a SignUp. Failures reach the client with Cognito's error codes
and wording, e.g. ``UserLambdaValidationException: UserMigration failed with error <message>.``

The migration answer is held to seed 004's contract: in a pool with AliasAttributes a user who typed an
email or phone must get ``userAttributes.username`` back, a username may not look like an alias there, a
returned username must be free, and a verified alias another user holds fails with AliasExistsException
unless ``forceAliasCreation`` moves it. moto knows nothing of AliasAttributes, so a sign-in or
ForgotPassword with a verified alias is rewritten to the username it stands for before moto sees it.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.cognitoidp.models import (
    CognitoIdpBackend,
    CognitoIdpUser,
    CognitoIdpUserPool,
    CognitoIdpUserPoolAttribute,
    UserStatus,
    cognitoidp_backends,
)
from moto.core import DEFAULT_ACCOUNT_ID

from ..trigger.migration_trigger import EMAIL, PHONE
from . import lambda_states
from .cognito_patches import is_case_insensitive
from .lambda_runtime import FunctionError, FunctionSpec, FunctionTimeout, LambdaRuntime

COGNITO_TIMEOUT_S = 5.0  # fixed by Cognito for every trigger, whatever the function's own timeout
# Cognito retries a trigger that did not answer within 5 s: 3 attempts in all, each with its own 5 s (developer
# guide, "Customizing user pool workflows with Lambda triggers": "If it doesn't [respond within 5 seconds] and if
# the call can be retried, Amazon Cognito retries the call. After three unsuccessful attempts, the function times
# out"). An error the function answers with is its answer: not retried (a refusal is never asked three times).
COGNITO_ATTEMPTS = 3
TARGET_PREFIX = "AWSCognitoIdentityProviderService."
PASSWORD_FLOWS = {"USER_PASSWORD_AUTH", "ADMIN_USER_PASSWORD_AUTH", "ADMIN_NO_SRP_AUTH"}
FINAL_STATUSES = {"CONFIRMED", "RESET_REQUIRED"}
MESSAGE_ACTIONS = {"SUPPRESS", "RESEND"}
READ_ONLY_ATTRIBUTES = {"sub", "identities", "cognito:user_status"}
# Every pool has all standard attributes, even where moto keeps only those a given Schema names.
STANDARD_ATTRIBUTES = set(CognitoIdpUserPoolAttribute.STANDARD_SCHEMA) - READ_ONLY_ATTRIBUTES
_REGION_IN_AUTH = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/cognito-idp/")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class CognitoError(Exception):
    """An error answered to the client the way Cognito answers it."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TriggerStats:
    """What the emulator did, for tests and benchmarks: migrations by outcome, trigger runs by source."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}

    def add(self, key: str) -> None:
        with self._lock:
            self.counts[key] = self.counts.get(key, 0) + 1


class CognitoTriggerMiddleware:
    def __init__(self, app: WsgiApp, runtime: LambdaRuntime, account_id: str = DEFAULT_ACCOUNT_ID) -> None:
        self.app = app
        self.runtime = runtime
        self.account_id = account_id
        self.stats = TriggerStats()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
        if operation not in {"InitiateAuth", "AdminInitiateAuth", "ForgotPassword", "SignUp"}:
            return self.app(environ, start_response)

        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        request = json.loads(body or b"{}")
        region = _region_of(environ)
        try:
            backend = cognitoidp_backends[self.account_id][region]
            pool = _find_pool(backend, request)
            if pool is not None and self._before(operation, request, backend, pool):
                body = json.dumps(request).encode()
                environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
            status, headers, payload = _call(self.app, environ)
            if pool is not None and status.startswith("200"):
                payload = self._after(operation, request, backend, pool, payload)
        except CognitoError as exc:
            return _error(start_response, exc)
        start_response(status, headers)
        return [payload]

    # -- before moto sees the request ------------------------------------------------------------------

    def _before(
        self, operation: str, request: dict[str, Any], backend: CognitoIdpBackend, pool: CognitoIdpUserPool
    ) -> bool:
        """Runs what Cognito runs before the call; True when the request was changed: moto knows nothing of
        AliasAttributes, so a sign-in with an alias is rewritten to the username it stands for."""
        if operation == "SignUp":
            self._pre_sign_up(request, pool)
            return False
        if operation == "ForgotPassword":
            source, holder, key, password = "UserMigration_ForgotPassword", request, "Username", None
        elif request.get("AuthFlow") in PASSWORD_FLOWS:
            source, holder, key = "UserMigration_Authentication", request.get("AuthParameters") or {}, "USERNAME"
            password = holder.get("PASSWORD")
        else:
            return False
        typed = str(holder.get(key) or "")
        if not typed:
            return False
        user = find_user(pool, typed)
        function_arn = _lambda_config(pool).get("UserMigration")
        if user is None and function_arn:
            user = self._migrate(source, request, backend, pool, typed, password, function_arn)
        if user is None or pool._get_user(typed) is not None:
            return False
        holder[key] = user.username
        return True

    def _migrate(
        self,
        source: str,
        request: dict[str, Any],
        backend: CognitoIdpBackend,
        pool: CognitoIdpUserPool,
        username: str,
        password: str | None,
        function_arn: str,
    ) -> CognitoIdpUser:
        client_id = request.get("ClientId", "")
        event = _event(source, pool, username, client_id)
        event["request"] = {
            "validationData": request.get("ClientMetadata") or {},
            "clientMetadata": request.get("ClientMetadata") or {},
        }
        if password is not None:
            event["request"]["password"] = password
        response = self._invoke("UserMigration", function_arn, pool, client_id, event)
        migration = _validate_migration_response(response, pool, username)
        if response.get("enableSMSMFA"):
            _require_sms_mfa_possible(pool, migration.attributes)
        for holder, attribute in migration.aliases_taken:
            # forceAliasCreation: the alias moves to the new user; the previous holder can no longer use it.
            holder.update_attributes([{"Name": f"{attribute}_verified", "Value": "false"}])
        user = backend.admin_create_user(pool.id, migration.username, "SUPPRESS", password or "", migration.attributes)
        _keep_returned_sign_in_attributes(pool, user, migration.attributes)
        user.password = password if migration.final_status == "CONFIRMED" else None
        user.status = UserStatus[migration.final_status]
        if response.get("enableSMSMFA"):
            user.sms_mfa_enabled = True
            user.preferred_mfa_setting = "SMS_MFA"
        self.stats.add(f"migrated:{source}:{migration.final_status}")
        return user

    def _pre_sign_up(self, request: dict[str, Any], pool: CognitoIdpUserPool) -> None:
        function_arn = _lambda_config(pool).get("PreSignUp")
        if not function_arn:
            return
        client_id = request.get("ClientId", "")
        event = _event("PreSignUp_SignUp", pool, request.get("Username", ""), client_id)
        event["request"] = {
            "userAttributes": {a["Name"]: a["Value"] for a in request.get("UserAttributes") or []},
            "validationData": {a["Name"]: a["Value"] for a in request.get("ValidationData") or []},
            "clientMetadata": request.get("ClientMetadata") or {},
        }
        event["response"] = {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False}
        self._invoke("PreSignUp", function_arn, pool, client_id, event)

    # -- after moto answered ---------------------------------------------------------------------------

    def _after(
        self,
        operation: str,
        request: dict[str, Any],
        backend: CognitoIdpBackend,
        pool: CognitoIdpUserPool,
        payload: bytes,
    ) -> bytes:
        function_arn = _lambda_config(pool).get("PostAuthentication")
        if operation not in {"InitiateAuth", "AdminInitiateAuth"} or not function_arn:
            return payload
        if "AuthenticationResult" not in json.loads(payload or b"{}"):
            return payload
        if request.get("AuthFlow") not in PASSWORD_FLOWS:
            return payload  # refresh-token sign-ins do not run PostAuthentication
        user = find_user(pool, (request.get("AuthParameters") or {}).get("USERNAME", ""))
        if user is None:
            return payload
        client_id = request.get("ClientId", "")
        event = _event("PostAuthentication_Authentication", pool, user.username, client_id)
        event["request"] = {
            "userAttributes": dict(user.attribute_lookup),
            "newDeviceUsed": False,
            "clientMetadata": request.get("ClientMetadata") or {},
        }
        self._invoke("PostAuthentication", function_arn, pool, client_id, event)
        return payload

    # -- running a trigger ----------------------------------------------------------------------------

    def _invoke(
        self, trigger: str, function_arn: str, pool: CognitoIdpUserPool, client_id: str, event: dict[str, Any]
    ) -> dict[str, Any]:
        spec = self._function_spec(function_arn, pool, client_id)
        transition = lambda_states.STATES.current(spec.arn)
        if transition is not None and transition.status == lambda_states.PENDING:
            # Lambda refuses to invoke a Pending function; Cognito's wording for a failed invocation
            # ("<trigger> invocation failed due to error <code>.") is what clients report for other causes.
            self.stats.add(f"pending:{trigger}")
            raise CognitoError(
                "UnexpectedLambdaException", f"{trigger} invocation failed due to error ResourceConflictException."
            )
        if transition is not None and transition.previous is not None:  # an update runs the previous code
            spec = _as_before(spec, transition.previous)
        answer = self._attempts(trigger, spec, event)
        if not isinstance(answer, dict) or not isinstance(answer.get("response"), dict):
            raise CognitoError("InvalidLambdaResponseException", "Unrecognizable lambda output")
        response: dict[str, Any] = answer["response"]
        return response

    def _attempts(self, trigger: str, spec: FunctionSpec, event: dict[str, Any]) -> Any:
        """Runs the function as Cognito does: a timed-out attempt is retried with the same event, up to
        COGNITO_ATTEMPTS in all, each with its own 5 s; an error the function answers with is final."""
        failure = CognitoError("UserLambdaValidationException", f"{trigger} failed")
        for attempt in range(1, COGNITO_ATTEMPTS + 1):
            self.stats.add(f"invoked:{trigger}")
            if attempt > 1:
                self.stats.add(f"retried:{trigger}")
            try:
                return self.runtime.invoke(spec, json.loads(json.dumps(event)), COGNITO_TIMEOUT_S)
            except FunctionTimeout as exc:
                self.stats.add(f"timeout:{trigger}")
                failure = CognitoError(
                    "UserLambdaValidationException", f"{trigger} failed with error Task timed out after 5.00 seconds."
                )
                failure.__cause__ = exc
            except FunctionError as exc:
                self.stats.add(f"failed:{trigger}")
                raise CognitoError(
                    "UserLambdaValidationException", f"{trigger} failed with error {exc.message}."
                ) from exc
        raise failure

    def _function_spec(self, function_arn: str, pool: CognitoIdpUserPool, client_id: str) -> FunctionSpec:
        region = function_arn.split(":")[3] if function_arn.startswith("arn:") else pool.region
        missing = CognitoError("UserNotFoundException", f"Exception migrating user in app client {client_id}")
        try:
            function = lambda_backends[self.account_id][region].get_function(function_arn)
        except Exception as exc:  # moto raises its own not-found class: Cognito says the same thing for all
            raise missing from exc
        if not _cognito_may_invoke(function.policy.statements, pool.arn):
            raise missing
        if function.handler is None:  # a container image: there is no zip to run
            raise NotImplementedError(f"function {function.function_name}: the local AWS runs zip functions only")
        return FunctionSpec(
            name=function.function_name,
            arn=function.function_arn,
            region=region,
            handler=function.handler,
            code_bytes=function.code_bytes,
            environment=dict(function.environment_vars or {}),
            memory_mb=int(function.memory_size or 128),
            timeout_s=float(function.timeout or 3),
        )


def _as_before(spec: FunctionSpec, previous: lambda_states.Snapshot) -> FunctionSpec:
    return replace(
        spec,
        handler=previous.handler,
        code_bytes=previous.code_bytes,
        environment=previous.environment,
        memory_mb=previous.memory_mb,
    )


@dataclass
class Migration:
    """A migration answer Cognito accepted: what to create, and the aliases forceAliasCreation moves."""

    attributes: list[dict[str, str]]
    final_status: str
    username: str
    aliases_taken: list[tuple[CognitoIdpUser, str]] = field(default_factory=list)


def _validate_migration_response(response: dict[str, Any], pool: CognitoIdpUserPool, typed: str) -> Migration:
    """Checks the function's answer as Cognito does (seed 004's contract)."""
    attributes = response.get("userAttributes")
    final_status = response.get("finalUserStatus") or "RESET_REQUIRED"
    if not isinstance(attributes, dict):
        raise CognitoError("InvalidLambdaResponseException", "Invalid lambda response: userAttributes is required")
    if final_status not in FINAL_STATUSES:
        raise CognitoError("InvalidLambdaResponseException", f"Invalid finalUserStatus: {final_status}")
    action = response.get("messageAction")
    if action is not None and action not in MESSAGE_ACTIONS:
        raise CognitoError("InvalidLambdaResponseException", f"Invalid messageAction: {action}")
    attributes = {str(k): str(v) for k, v in attributes.items()}
    username = _migrated_username(pool, typed, attributes.pop("username", None))
    problems = [
        f"{name}: Attribute does not exist in the schema." for name in attributes if name in READ_ONLY_ATTRIBUTES
    ]
    problems += [
        f"{name}: Attribute does not exist in the schema."
        for name in attributes
        if name not in pool.schema_attributes and name not in STANDARD_ATTRIBUTES
    ]
    problems += [
        f"{name}: The attribute is required"
        for name, schema in pool.schema_attributes.items()
        if schema.required and name not in READ_ONLY_ATTRIBUTES and not attributes.get(name)
    ]
    if problems:
        raise CognitoError(
            "InvalidParameterException", "Attributes did not conform to the schema: " + " ".join(problems)
        )
    if final_status == "RESET_REQUIRED" and not any(
        attributes.get(f"{kind}_verified") == "true" and attributes.get(kind) for kind in ("email", "phone_number")
    ):
        raise CognitoError(
            "InvalidParameterException",
            "User pool must have a verified email or phone number to migrate a user with RESET_REQUIRED status",
        )
    taken = _aliases_held_by_others(pool, attributes)
    if taken and response.get("forceAliasCreation") is not True:
        raise CognitoError("AliasExistsException", f"An account with the given {taken[0][1]} already exists.")
    return Migration([{"Name": k, "Value": v} for k, v in attributes.items()], final_status, username, taken)


def _migrated_username(pool: CognitoIdpUserPool, typed: str, returned: str | None) -> str:
    """The new user's username: the one returned, else the one typed; an alias typed needs one returned."""
    aliases = pool.extended_config.get("AliasAttributes") or []
    typed_alias = next((kind for kind in aliases if _looks_like(typed, kind)), None)
    if typed_alias and not returned:
        raise CognitoError(
            "InvalidLambdaResponseException",
            f"Invalid lambda response: userAttributes.username is required when the user signs in with {typed_alias}",
        )
    username = returned or typed
    for kind in aliases:
        if _looks_like(username, kind):
            label = "email" if kind == "email" else "phone number"
            raise CognitoError(
                "InvalidParameterException",
                f"Username cannot be of {label} format, since user pool is configured for {label} alias.",
            )
    if returned and returned != typed and not _may_rename(pool, typed):
        # The current "Migrate user Lambda trigger" page: the username must match the request exactly, or be
        # omitted, unless the user signed in with an alias. Cognito's error is undocumented (assumed here).
        raise CognitoError(
            "UserLambdaValidationException",
            "UserMigration failed with error userAttributes.username must be the username the user signed in "
            "with, exactly, or be omitted (another username is allowed only for a sign-in with an alias).",
        )
    if returned and returned != typed and find_user(pool, returned) is not None:
        raise CognitoError("UsernameExistsException", "An account with the given username already exists.")
    return username


def _may_rename(pool: CognitoIdpUserPool, typed: str) -> bool:
    """True when what was typed may be an alias of the pool: an email or phone number it accepts as one, or
    anything at all in a pool with preferred_username (the new pool cannot tell before the user exists)."""
    aliases = pool.extended_config.get("AliasAttributes") or []
    return "preferred_username" in aliases or any(_looks_like(typed, kind) for kind in aliases)


def _require_sms_mfa_possible(pool: CognitoIdpUserPool, attributes: list[dict[str, str]]) -> None:
    """enableSMSMFA needs the pool's MFA on (or optional), SMS configured with its role, and a phone number;
    otherwise the migration fails. The error's wording is undocumented (assumed here)."""
    sms = pool.extended_config.get("SmsConfiguration") or (pool.sms_mfa_config or {}).get("SmsConfiguration") or {}
    phone = any(a["Name"] == "phone_number" and a["Value"] for a in attributes)
    problems = [
        "the user pool's MFA configuration is OFF" if pool.mfa_config == "OFF" else "",
        "the user pool has no SMS configuration (SmsConfiguration.SnsCallerArn)" if not sms.get("SnsCallerArn") else "",
        "the user has no phone_number" if not phone else "",
    ]
    problems = [p for p in problems if p]
    if problems:
        raise CognitoError("InvalidParameterException", "enableSMSMFA cannot be honoured: " + "; ".join(problems) + ".")


def _aliases_held_by_others(pool: CognitoIdpUserPool, attributes: dict[str, str]) -> list[tuple[CognitoIdpUser, str]]:
    """(other user, attribute) for each verified alias of the new user that another user already holds."""
    held = []
    for kind in pool.extended_config.get("AliasAttributes") or []:
        value = attributes.get(kind)
        if value and (kind == "preferred_username" or attributes.get(f"{kind}_verified") == "true"):
            holder = _alias_holder(pool, kind, value)
            if holder is not None:
                held.append((holder, kind))
    return held


def _looks_like(name: str, kind: str) -> bool:
    return bool((kind == "email" and EMAIL.match(name)) or (kind == "phone_number" and PHONE.match(name)))


def _alias_holder(pool: CognitoIdpUserPool, kind: str, value: str) -> CognitoIdpUser | None:
    """The user whose verified alias `kind` is `value`, by the pool's case rules."""
    fold = str.casefold if is_case_insensitive(pool) else str
    for user in pool.users.values():
        held = user.attribute_lookup.get(kind)
        verified = kind == "preferred_username" or user.attribute_lookup.get(f"{kind}_verified") == "true"
        if held and verified and fold(held) == fold(value):
            return user
    return None


def find_user(pool: CognitoIdpUserPool, name: str) -> CognitoIdpUser | None:
    """The user a sign-in name stands for: a username (or UsernameAttributes value), else a verified alias."""
    if not name:
        return None
    user = pool._get_user(name)
    if user is not None:
        return user
    for kind in pool.extended_config.get("AliasAttributes") or []:
        holder = _alias_holder(pool, kind, name)
        if holder is not None:
            return holder
    return None


def _cognito_may_invoke(statements: list[dict[str, Any]], pool_arn: str) -> bool:
    for statement in statements:
        principal = statement.get("Principal")
        service = principal.get("Service") if isinstance(principal, dict) else principal
        if service != "cognito-idp.amazonaws.com" or statement.get("Effect", "Allow") != "Allow":
            continue
        if statement.get("Action") not in ("lambda:InvokeFunction", "lambda:*"):
            continue
        source_arn = (statement.get("Condition") or {}).get("ArnLike", {}).get("AWS:SourceArn")
        if source_arn in (None, pool_arn):
            return True
    return False


def _event(source: str, pool: CognitoIdpUserPool, username: str, client_id: str) -> dict[str, Any]:
    return {
        "version": "1",
        "triggerSource": source,
        "region": pool.region,
        "userPoolId": pool.id,
        "userName": username,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": client_id},
        "request": {},
        "response": {},
    }


def _lambda_config(pool: CognitoIdpUserPool) -> dict[str, str]:
    return pool.extended_config.get("LambdaConfig") or {}


def _find_pool(backend: CognitoIdpBackend, request: dict[str, Any]) -> CognitoIdpUserPool | None:
    if request.get("UserPoolId"):
        return backend.user_pools.get(request["UserPoolId"])
    client_id = request.get("ClientId")
    return next((p for p in backend.user_pools.values() if client_id in p.clients), None)


def _region_of(environ: dict[str, Any]) -> str:
    match = _REGION_IN_AUTH.search(environ.get("HTTP_AUTHORIZATION", ""))
    return match.group(1) if match else "us-east-1"


def _call(app: WsgiApp, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        captured["status"], captured["headers"] = status, headers

    chunks = app(environ, start_response)
    try:
        payload = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    return captured["status"], captured["headers"], payload


def _error(start_response: Callable[..., Any], error: CognitoError) -> list[bytes]:
    payload = json.dumps({"__type": error.code, "message": error.message}).encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "application/x-amz-json-1.1"),
            ("Content-Length", str(len(payload))),
            ("x-amzn-ErrorType", error.code),
        ],
    )
    return [payload]


def _keep_returned_sign_in_attributes(
    pool: CognitoIdpUserPool, user: CognitoIdpUser, attributes: list[dict[str, str]]
) -> None:
    """In a pool signing in by email or phone number, moto writes the name as typed into that attribute over
    what the trigger returned; the user keeps the value the trigger returned (the old pool's spelling, e.g.
    ann@example.com for a user who typed ANN@EXAMPLE.COM). Undocumented: the ledger (docs/fidelity.md) says so."""
    returned = {a["Name"]: a["Value"] for a in attributes}
    kept = [
        {"Name": name, "Value": returned[name]}
        for name in pool.extended_config.get("UsernameAttributes") or []
        if returned.get(name)
    ]
    if kept:
        user.update_attributes(kept)
