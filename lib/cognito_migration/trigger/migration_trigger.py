"""Cognito Lambda trigger that moves users from an old user pool into the new pool it is attached to.

Attach it to the NEW pool as its UserMigration, PostAuthentication (group copy) and PreSignUp (squatting
guard) trigger. Handler: ``migration_trigger.handler``; one file, stdlib and boto3 only. Trigger sources:
  UserMigration_Authentication       the old pool checks the password (ADMIN_USER_PASSWORD_AUTH); returns the
                                     user's attributes, CONFIRMED (password kept) or RESET_REQUIRED.
  UserMigration_ForgotPassword       a known user with a verified email or phone, as RESET_REQUIRED (under
                                     MFA_POLICY refuse, an MFA user is refused here too: see OLD_MFA_CONFIGURATION).
  PostAuthentication_Authentication  adds the user to the new pool's groups it holds in the old pool, once:
                                     only while the user carries the marker custom:groups_pending.
  PreSignUp_SignUp / _ExternalProvider  refuses a sign-up whose username, email (or phone number, when the new
                                     pool signs in by phone) belongs to an old-pool user, ignoring letter case
                                     (that user must sign in to move, not be squatted). It reads the sign-up index
                                     (GetItem, never the old pool). PreSignUp_AdminCreateUser passes.
Any other source raises: the function fails closed.

Environment variables (missing or invalid ones raise ConfigurationError; nobody is migrated):
  OLD_USER_POOL_ID      required. The pool users come from.
  OLD_CLIENT_ID         required. An old-pool app client (no secret) allowing ALLOW_ADMIN_USER_PASSWORD_AUTH.
  OLD_REGION            the old pool's region; default: AWS_REGION.
  OLD_ROLE_ARN          a role to assume for every old-pool call (old pool in another account); refreshed
  OLD_EXTERNAL_ID         before it expires. OLD_EXTERNAL_ID: the external id that role's trust policy asks for.
  OLD_SIGN_IN_ATTRIBUTES  attributes the old pool accepts in place of a username ("email,phone_number"): its
                        AliasAttributes or UsernameAttributes. Other aliases are looked up with ListUsers.
  NEW_USERNAME_ATTRIBUTES the new pool's UsernameAttributes ("email"): users sign in with these, not a username.
  NEW_ALIAS_ATTRIBUTES  the new pool's AliasAttributes: a user who typed one gets the old username back.
  NEW_CASE_SENSITIVE    "true" or "false" (default): the new pool's username case sensitivity.
  MFA_POLICY            when the password is right but the old pool asks for a second factor (which the
                        trigger cannot check): reset_required (default) migrates as RESET_REQUIRED; sms as
                        CONFIRMED with SMS MFA if the phone number is verified, else RESET_REQUIRED; refuse
                        (on every path: forgot-password and a temporary password too, not only an MFA challenge).
  OLD_MFA_CONFIGURATION the old pool's MfaConfiguration: ON, OPTIONAL or OFF. Under refuse it says who is an MFA
                        user without a sign-in to prove it: ON, everyone (a user without a factor is made to set
                        one up); OPTIONAL, users AdminGetUser shows with an MFA setting (UserMFASettingList,
                        PreferredMfaSetting, MFAOptions); OFF, nobody. Unset: unknown, treated as OPTIONAL
                        (users with an MFA setting are refused). That misses only the users of an ON pool who
                        never enrolled a factor; refusing everyone instead would stop every forgot-password of an
                        OFF or OPTIONAL pool whose function lacks the variable. Step 3 always sets it.
  ALLOWED_ATTRIBUTES    optional comma-separated names the NEW pool's schema accepts, e.g.
                        "email,email_verified,name,custom:tier"; others are dropped (one unknown attribute
                        fails the migration). `sub` is always dropped. Listing custom:groups_pending turns on
                        the one-time group copy; without it PostAuthentication copies on every sign-in.
  ATTRIBUTE_MAP         optional JSON object {"new attribute": rule}, applied first. A rule is an old
                        attribute name (rename), a list of names (the first non-empty), or an object with
                        "from" (name or list), "join" (list, joined with "separator", default " ") and/or
                        "default". "username" names the old username. A rule that yields nothing keeps the
                        old value of the same name, then its default.
  ATTRIBUTE_DEFAULTS    optional JSON object {"attribute": "default"} filling what is still missing or empty.
  LEGACY_SUB_ATTRIBUTE  optional custom attribute, e.g. "custom:legacy_sub", receiving the old `sub`.
  SIGNUP_INDEX_TABLE    the DynamoDB table of the sign-up index (partition key "k", a string): one item per
                        HMAC-SHA256 of "<kind>:<value>" (NFKC, case-folded) of every old-pool username, email
                        and phone number. Without it (or its key) every sign-up is refused: the guard fails closed.
  SIGNUP_INDEX_KEY      the HMAC key of those items (64 hex digits), so the table holds no readable or
                        guessable-by-hash personal data. Migrations do not need either variable.

What callers see (Cognito shows "UserMigration failed with error <message>."):
  Refused("Incorrect username or password")  wrong password; unknown, unconfirmed, disabled or reset-required
                                              user; and every forgot-password refusal (no password was
                                              proven): one message, so nobody can probe which users exist.
  Refused(<clear message>)                    the password is proven but the user cannot be migrated: MFA
                                              refused, no verified email or phone, a case collision...
  Refused(SIGN_UP_REFUSAL)                    a sign-up matching an old-pool user: one message whatever matched.
  Unavailable("Migration is temporarily unavailable, please try again later")
                                              the old pool failed or could not answer in what was
                                              left of Cognito's 5 s, or anything unexpected happened.
  ConfigurationError(<names the variable>)    the function is misconfigured.
Each invocation logs one JSON line: trigger, outcome, final_status, ms, old_pool_calls, new_pool_calls,
sts_calls, index_calls, cold_start, reason and `user`, an HMAC prefix of the username under SIGNUP_INDEX_KEY (see
user_ref); never the password, the event, the attributes or the email.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import re
import secrets
import time
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

LOGGER = logging.getLogger("migration_trigger")
LOGGER.setLevel(logging.INFO)
# One line per invocation: botocore's INFO chatter ("Found credentials...") would come between them.
logging.getLogger("botocore").setLevel(logging.WARNING)

GENERIC_REFUSAL = "Incorrect username or password"
UNAVAILABLE = "Migration is temporarily unavailable, please try again later"
# The guard's one answer, whether a username, an email or a phone number matched: Cognito's own SignUp reveals
# taken usernames of the new pool, but the guard must not turn the old pool's emails into an oracle.
SIGN_UP_REFUSAL = "This sign-up cannot be completed. If you already have an account, sign in or reset your password"
MFA_CHALLENGES = frozenset({"SMS_MFA", "SOFTWARE_TOKEN_MFA", "SELECT_MFA_TYPE", "EMAIL_OTP", "MFA_SETUP"})
# A tuple, not a set: params names them in this order in its message.
MFA_POLICIES = ("reset_required", "sms", "refuse")
MFA_CONFIGURATIONS = frozenset({"ON", "OPTIONAL", "OFF"})
MFA_REFUSAL = "Accounts with multi-factor authentication cannot be migrated at sign-in. Contact support."
SIGN_IN_ATTRIBUTES = frozenset({"email", "phone_number", "preferred_username"})
MIGRATION_SOURCES = frozenset({"UserMigration_Authentication", "UserMigration_ForgotPassword"})
SIGN_UP_SOURCES = frozenset({"PreSignUp_SignUp", "PreSignUp_ExternalProvider", "PreSignUp_AdminCreateUser"})
TRIGGER_SOURCES = MIGRATION_SOURCES | SIGN_UP_SOURCES | {"PostAuthentication_Authentication"}
# Set on every migrated user when the new schema declares it; PostAuthentication copies the groups of users
# carrying it, then deletes it, so later sign-ins never call the old pool.
GROUPS_MARKER = "custom:groups_pending"
# Cognito owns these; returning one fails the migration.
NEVER_RETURNED = frozenset({"sub", "identities", "username"})
MAX_ALIAS_CANDIDATES = 5  # users sharing one alias whose password is tried; more is an operator's problem
CREDENTIALS_MARGIN_S = 300  # assumed-role credentials are renewed when they have less than this left

# Cognito waits 5 s for the whole trigger, then retries it (3 attempts in all, each with its own 5 s). Every
# call is sized from what is left of the invocation's 5 s, so a slow old pool fails the attempt closed
# (Unavailable) while the function still answers, instead of being killed: Cognito then retries a live container.
COGNITO_LIMIT_S = 5.0
SAFETY_MARGIN_S = 0.25  # kept for answering: the response, the runtime, the network back to Cognito
COLD_INIT_S = 0.5  # a cold start's import (boto3 ~0.45 s measured): Cognito waits for it, the context does not
CONNECT_TIMEOUT_S = 0.3  # a connection to Cognito in the same Region takes milliseconds
MIN_READ_S = 0.25  # a call with less than this left is not started: it fails closed at once
TIMEOUT_STEP_S = 0.25  # read timeouts are rounded down to this step: one client per step, created when first used
MAX_ATTEMPTS = 2  # per call, when time is left: a throttled or refused connection is retried, a slow answer not
RETRYABLE_CODES = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "InternalErrorException", "ServiceUnavailable"}
)
RETRYABLE_ERRORS = (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError)
# STS runs once per container and hour; its call is budgeted like the others but needs no step of its own.
BOTO_CONFIG = Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=2, retries={"total_max_attempts": 1})
# The old pool's answer to a name and password is remembered for this long: Cognito retries a failed attempt
# (3 in all) with the same event, and asking again would make the old pool send a second SMS code, or count
# a wrong password three times towards its lockout. Keyed by an HMAC with a per-container key: the password
# itself is never kept; another password is always asked.
PROOF_TTL_S = 30.0
MAX_PROOFS = 1000

# Old-pool errors that mean "this user may not sign in", all answered with GENERIC_REFUSAL.
REFUSAL_CODES = {
    "NotAuthorizedException": "not_authorized",
    "UserNotFoundException": "user_not_found",
    "UserNotConfirmedException": "not_confirmed",
    "PasswordResetRequiredException": "password_reset_required",
}
# What a typed sign-in name must look like for Cognito to read it as that alias (the local AWS uses these too).
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
PHONE = re.compile(r"^\+[0-9]{6,15}$")
# params checks OLD_ROLE_ARN and OLD_EXTERNAL_ID with these before step 3 deploys them.
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_INDEX_KEY = re.compile(r"^[0-9a-f]{64}$")
_SOURCE_SHAPE = re.compile(r"^[A-Za-z]{1,40}_[A-Za-z_]{1,40}$")  # how Cognito names trigger sources
INDEX_KEY_ATTRIBUTE = "k"  # the sign-up index's partition key


class Credentials(TypedDict, total=False):
    """An assumed role's keys, as boto3.client takes them (none: the function's own)."""

    aws_access_key_id: str
    aws_secret_access_key: str
    aws_session_token: str


# Injection seam: a client under a bare role ("old", "new", "sts") serves every budget; tests put fakes here.
# Otherwise clients are created once per container and read timeout ("old@2.5"), from one boto3 session.
# _credentials and _expires hold an assumed role's credentials and when they run out (epoch seconds).
_clients: dict[str, Any] = {}
_credentials: dict[str, Credentials] = {}
_expires: dict[str, float] = {}
_container = {"invocations": 0}
_LOADED_AT = time.monotonic()  # after the imports: a cold start's import time is COLD_INIT_S, assumed
_session: list[Any] = []
# Retried invocations of the same sign-in or group copy: what an earlier attempt already proved or did.
_proofs: dict[str, tuple[float, str | None, str | None]] = {}  # key -> (until, challenge, refusal reason)
_copied: dict[tuple[str, str], float] = {}
_PROOF_KEY = secrets.token_bytes(32)


class MigrationError(Exception):
    """Root of everything the trigger raises on purpose. str() is shown to the user; `reason` is logged."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ConfigurationError(MigrationError):
    """An environment variable is missing or invalid; the message names it and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "configuration")


class Refused(MigrationError):
    """This user must not be migrated (or sign up)."""


class Unavailable(MigrationError):
    """The old pool could not answer, or something unexpected happened. The message never carries details."""

    def __init__(self, reason: str) -> None:
        super().__init__(UNAVAILABLE, reason)


@dataclass(frozen=True)
class Budget:
    """What is left of the invocation's time: every AWS call must have returned by `deadline` (monotonic)."""

    deadline: float

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def read_timeout(self) -> float:
        """The read timeout of the next call: what is left after connecting, rounded down to a step; raises
        Unavailable (no call is made) when that is too little for any answer."""
        usable = self.left() - CONNECT_TIMEOUT_S
        if usable < MIN_READ_S:
            raise Unavailable("no_time_left")
        return max(MIN_READ_S, int(usable / TIMEOUT_STEP_S + 1e-9) * TIMEOUT_STEP_S)  # 1e-9: float noise


def budget_for(context: Any, started: float, cold_start: bool) -> Budget:
    """The invocation's deadline: Cognito's 5 s (less a cold start's initialisation, which Cognito waits for
    too) or the function's own remaining time if shorter, less a safety margin."""
    # A container initialised long before its first invocation (Lambda may do so) is charged at most twice
    # the allowance: stricter than needed, never more lenient.
    spent = COLD_INIT_S + min(max(0.0, started - _LOADED_AT), COLD_INIT_S) if cold_start else 0.0
    left = COGNITO_LIMIT_S - spent
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        left = min(left, remaining() / 1000)
    return Budget(started + left - SAFETY_MARGIN_S)


@dataclass(frozen=True)
class AttributeRule:
    """How one new attribute is made from the old user: the first non-empty source (or all of them joined),
    else the default."""

    sources: tuple[str, ...] = ()
    join: bool = False
    separator: str = " "
    default: str | None = None

    def value(self, old: Mapping[str, str], username: str | None) -> str | None:
        values = [(username or "") if s == "username" else old.get(s, "") for s in self.sources]
        values = [v for v in values if v.strip()]
        found = self.separator.join(values) if self.join else next(iter(values), "")
        return found or None


@dataclass(frozen=True)
class Settings:
    old_user_pool_id: str
    old_client_id: str
    old_region: str
    mfa_policy: str = "reset_required"
    allowed_attributes: frozenset[str] | None = None
    attribute_defaults: Mapping[str, str] = field(default_factory=dict)
    legacy_sub_attribute: str | None = None
    attribute_map: Mapping[str, AttributeRule] = field(default_factory=dict)
    old_role_arn: str | None = None
    old_external_id: str | None = None
    old_sign_in_attributes: frozenset[str] = frozenset()
    new_username_attributes: frozenset[str] = frozenset()
    new_alias_attributes: frozenset[str] = frozenset()
    new_case_sensitive: bool = False
    signup_index_table: str | None = None
    signup_index_key: str | None = None
    old_mfa_configuration: str | None = None  # None: unknown (OLD_MFA_CONFIGURATION unset)

    @property
    def groups_marker(self) -> bool:
        """True when the new schema has the marker, so the group copy runs once per user."""
        return self.allowed_attributes is not None and GROUPS_MARKER in self.allowed_attributes


@dataclass(frozen=True)
class SignInOutcome:
    final_status: str
    reason: str
    enable_sms_mfa: bool = False


@dataclass(frozen=True)
class OldUser:
    """An old-pool user as AdminGetUser or ListUsers describes it. ``mfa``: an MFA setting is visible;
    ``mfa_known``: the answer was AdminGetUser's, which shows every factor (ListUsers only MFAOptions)."""

    username: str
    attributes: list[dict[str, str]]
    enabled: bool
    status: str
    mfa: bool = False
    mfa_known: bool = False

    @classmethod
    def from_api(cls, user: Mapping[str, Any], complete: bool = False) -> OldUser:
        """``complete``: ``user`` is AdminGetUser's answer (else a ListUsers row)."""
        return cls(
            str(user.get("Username", "")),
            list(user.get("UserAttributes") or user.get("Attributes") or []),
            bool(user.get("Enabled", True)),
            str(user.get("UserStatus", "")),
            bool(user.get("UserMFASettingList") or user.get("PreferredMfaSetting") or user.get("MFAOptions")),
            complete,
        )

    def attribute(self, name: str) -> str:
        return next((a.get("Value", "") for a in self.attributes if a["Name"] == name), "")


@dataclass
class Invocation:
    """What the one log line of an invocation reports."""

    trigger: str
    user: str | None
    cold_start: bool = False
    outcome: str = "error"
    final_status: str | None = None
    reason: str = "unexpected"
    old_pool_calls: int = 0
    new_pool_calls: int = 0
    sts_calls: int = 0
    index_calls: int = 0
    budget_ms: int = 0
    proof_reused: bool = False
    groups_added: list[str] | None = None
    groups_missing: list[str] | None = None


# --- configuration -------------------------------------------------------------------------------------


def parse_attribute_map(value: object, name: str = "ATTRIBUTE_MAP") -> dict[str, AttributeRule]:
    """The rules of an attribute map (already decoded from JSON); ConfigurationError names what to fix."""
    if not isinstance(value, dict):
        raise ConfigurationError(f'{name} must be a JSON object such as {{"name": ["full_name", "nickname"]}}')
    return {target: _parse_rule(target, spec, name) for target, spec in value.items()}


def _parse_rule(target: object, spec: object, name: str) -> AttributeRule:
    if not isinstance(target, str) or not target or target in NEVER_RETURNED or target.startswith("cognito:"):
        raise ConfigurationError(f"{name}: {target!r} cannot be set: Cognito manages it; remove it")

    def names(value: object, key: str) -> tuple[str, ...]:
        listed = [value] if isinstance(value, str) else value
        if not isinstance(listed, list) or not listed or not all(isinstance(n, str) and n for n in listed):
            raise ConfigurationError(f"{name}: {target}.{key} must be an attribute name or a list of names")
        return tuple(listed)

    if isinstance(spec, (str, list)):
        return AttributeRule(names(spec, "from"))
    if not isinstance(spec, dict) or not spec or set(spec) - {"from", "join", "separator", "default"}:
        raise ConfigurationError(
            f"{name}: {target} must be a name, a list of names, or an object with from, join, separator, default"
        )
    if "from" in spec and "join" in spec:
        raise ConfigurationError(f"{name}: {target} has both from and join: keep one")
    default, separator = spec.get("default"), spec.get("separator", " ")
    if (default is not None and not isinstance(default, str)) or not isinstance(separator, str):
        raise ConfigurationError(f"{name}: {target}.default and .separator must be strings")
    if "from" in spec or "join" in spec:
        key = "join" if "join" in spec else "from"
        return AttributeRule(names(spec[key], key), key == "join", separator, default)
    if default is None:
        raise ConfigurationError(f"{name}: {target} needs from, join or default")
    return AttributeRule(default=default)


def _names(environ: Mapping[str, str], name: str, allowed: frozenset[str] | None = None) -> frozenset[str]:
    text = environ.get(name, "").strip()
    names = frozenset(n.strip() for n in text.split(",") if n.strip())
    if allowed is not None and names - allowed:
        raise ConfigurationError(f"{name}={text!r}: use names among {sorted(allowed)}")
    return names


def _json(environ: Mapping[str, str], name: str) -> Any:
    try:
        return json.loads(environ.get(name, "").strip() or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{name} is not valid JSON ({exc.msg})") from None


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Read and validate the configuration; raises ConfigurationError naming the variable to fix."""

    def required(name: str) -> str:
        value = environ.get(name, "").strip()
        if not value:
            raise ConfigurationError(f"{name} is not set: set it on the trigger function")
        return value

    old_user_pool_id, old_client_id = required("OLD_USER_POOL_ID"), required("OLD_CLIENT_ID")
    old_region = environ.get("OLD_REGION", "").strip() or environ.get("AWS_REGION", "").strip()
    if not old_region:
        raise ConfigurationError("OLD_REGION is not set and neither is AWS_REGION: set OLD_REGION")
    mfa_policy = environ.get("MFA_POLICY", "").strip() or "reset_required"
    if mfa_policy not in MFA_POLICIES:
        raise ConfigurationError(f"MFA_POLICY={mfa_policy!r} is invalid: use one of {sorted(MFA_POLICIES)}")

    allowed_text = environ.get("ALLOWED_ATTRIBUTES", "").strip()
    allowed = frozenset(n.strip() for n in allowed_text.split(",") if n.strip()) if allowed_text else None

    defaults = _json(environ, "ATTRIBUTE_DEFAULTS")
    if not isinstance(defaults, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in defaults.items()
    ):
        raise ConfigurationError('ATTRIBUTE_DEFAULTS must be a JSON object of strings, e.g. {"name": "-"}')
    if "sub" in defaults:
        raise ConfigurationError("ATTRIBUTE_DEFAULTS may not set `sub`: Cognito assigns it")
    attribute_map = parse_attribute_map(_json(environ, "ATTRIBUTE_MAP"))

    legacy_sub = environ.get("LEGACY_SUB_ATTRIBUTE", "").strip() or None
    if legacy_sub is not None and not legacy_sub.startswith("custom:"):
        raise ConfigurationError(f"LEGACY_SUB_ATTRIBUTE={legacy_sub!r} must be a custom attribute (custom:x)")

    # Anything we would send must be in the schema, or every migration fails; better to say so now.
    sent_by_config = set(defaults) | set(attribute_map) | ({legacy_sub} if legacy_sub else set())
    outside = sorted(sent_by_config - allowed) if allowed is not None else []
    if outside:
        raise ConfigurationError(
            f"{outside} are set by ATTRIBUTE_MAP/ATTRIBUTE_DEFAULTS/LEGACY_SUB_ATTRIBUTE but missing "
            "from ALLOWED_ATTRIBUTES: add them there (and to the new pool's schema)"
        )

    role_arn = environ.get("OLD_ROLE_ARN", "").strip() or None
    external_id = environ.get("OLD_EXTERNAL_ID", "").strip() or None
    if role_arn is not None and not ROLE_ARN.match(role_arn):
        raise ConfigurationError(f"OLD_ROLE_ARN={role_arn!r} is not an IAM role ARN (arn:aws:iam::<account>:role/x)")
    if external_id is not None and (role_arn is None or not EXTERNAL_ID.match(external_id)):
        raise ConfigurationError(
            "OLD_EXTERNAL_ID needs OLD_ROLE_ARN and 2-1224 characters among letters, digits and +=,.@:/-"
        )
    old_mfa = environ.get("OLD_MFA_CONFIGURATION", "").strip().upper() or None
    if old_mfa is not None and old_mfa not in MFA_CONFIGURATIONS:
        raise ConfigurationError(
            f"OLD_MFA_CONFIGURATION={old_mfa!r}: set the old pool's MfaConfiguration, one of "
            f"{sorted(MFA_CONFIGURATIONS)}"
        )
    case_text = environ.get("NEW_CASE_SENSITIVE", "").strip().lower() or "false"
    if case_text not in ("true", "false"):
        raise ConfigurationError(f"NEW_CASE_SENSITIVE={case_text!r}: use true or false")
    index_table = environ.get("SIGNUP_INDEX_TABLE", "").strip() or None
    index_key = environ.get("SIGNUP_INDEX_KEY", "").strip() or None
    if index_table is not None and not _TABLE_NAME.match(index_table):
        raise ConfigurationError(f"SIGNUP_INDEX_TABLE={index_table!r} is not a DynamoDB table name")
    if index_key is not None and not _INDEX_KEY.match(index_key):
        raise ConfigurationError("SIGNUP_INDEX_KEY must be 64 lowercase hex digits (a 256-bit HMAC key)")
    return Settings(
        old_user_pool_id,
        old_client_id,
        old_region,
        mfa_policy,
        allowed,
        defaults,
        legacy_sub,
        attribute_map,
        role_arn,
        external_id,
        _names(environ, "OLD_SIGN_IN_ATTRIBUTES", SIGN_IN_ATTRIBUTES),
        _names(environ, "NEW_USERNAME_ATTRIBUTES", frozenset({"email", "phone_number"})),
        _names(environ, "NEW_ALIAS_ATTRIBUTES", SIGN_IN_ATTRIBUTES),
        case_text == "true",
        index_table,
        index_key,
        old_mfa,
    )


# --- pure decisions ------------------------------------------------------------------------------------


def build_user_attributes(
    old_attributes: list[dict[str, str]],
    allowed: frozenset[str] | set[str] | None,
    defaults: Mapping[str, str],
    legacy_sub_attribute: str | None,
    attribute_map: Mapping[str, AttributeRule] | None = None,
    username: str | None = None,
) -> dict[str, str]:
    """The userAttributes to return for a user whose old-pool attributes are `old_attributes` (and whose old
    username is `username`): the map first, then the defaults, then the old sub; only `allowed` names."""
    old = {a["Name"]: a.get("Value", "") for a in old_attributes}
    # Empty (or blank) values carry nothing and can fail the new schema's format checks.
    attributes = {name: value for name, value in old.items() if value.strip()}
    for name, rule in (attribute_map or {}).items():
        value = rule.value(old, username) or attributes.get(name) or rule.default
        if value:
            attributes[name] = value
    for name, default in defaults.items():
        attributes[name] = attributes.get(name) or default
    if legacy_sub_attribute and old.get("sub"):
        attributes[legacy_sub_attribute] = old["sub"]
    return {
        name: value
        for name, value in attributes.items()
        if name not in NEVER_RETURNED and not name.startswith("cognito:") and (allowed is None or name in allowed)
    }


def is_verified(attributes: Mapping[str, str], contact: str) -> bool:
    """True when `contact` ("email" or "phone_number") is set and marked verified."""
    return bool(attributes.get(contact)) and attributes.get(f"{contact}_verified", "").lower() == "true"


def require_verified_contact(attributes: Mapping[str, str]) -> None:
    # A RESET_REQUIRED user must receive a reset code; without a verified address they would be stuck.
    if not (is_verified(attributes, "email") or is_verified(attributes, "phone_number")):
        raise Refused(
            "Account cannot be migrated: it has no verified email or phone number to reset the "
            "password with. Contact support.",
            "no_verified_contact",
        )


def sign_in_outcome(challenge: str | None, mfa_policy: str, attributes: Mapping[str, str]) -> SignInOutcome:
    """What a sign-in whose password the old pool accepted becomes in the new pool; raises Refused."""
    if challenge is None:
        return SignInOutcome("CONFIRMED", "password_kept")
    if challenge == "NEW_PASSWORD_REQUIRED":
        # The password was a temporary one set by an admin: it must not become the user's password.
        return SignInOutcome("RESET_REQUIRED", "temporary_password")
    if challenge not in MFA_CHALLENGES:
        raise Refused("Account cannot be migrated at sign-in. Contact support.", "unsupported_challenge")
    # The password is proven, the second factor is not: never CONFIRMED without one.
    if mfa_policy == "refuse":
        raise Refused(MFA_REFUSAL, "mfa_refused")
    if mfa_policy == "sms" and is_verified(attributes, "phone_number"):
        return SignInOutcome("CONFIRMED", "mfa_sms", enable_sms_mfa=True)
    return SignInOutcome("RESET_REQUIRED", "mfa_reset_required")


def sign_in_kind(typed: str, settings: Settings) -> str:
    """What the user typed, as the NEW pool reads it: "username", or the alias attribute it is."""
    accepted = settings.new_username_attributes | settings.new_alias_attributes
    if "email" in accepted and EMAIL.match(typed):
        return "email"
    if "phone_number" in accepted and PHONE.match(typed):
        return "phone_number"
    return "username"


def require_accepted_name(kind: str, settings: Settings) -> None:
    """An email-as-username pool signs nobody in by username: say so before looking anybody up, so the
    answer is the same whether the user exists or not."""
    if settings.new_username_attributes and kind == "username":
        accepted = " or ".join(sorted(settings.new_username_attributes)).replace("_", " ")
        raise Refused(f"Sign in with your {accepted} instead of your username", "username_not_accepted")


def new_username(typed: str, kind: str, old_username: str, settings: Settings) -> str | None:
    """The `username` to return (None: the one typed), by the contract and the new pool's case rules.
    The contract (the current "Migrate user Lambda trigger" page) wants the request's userName exactly, or
    nothing, unless an alias the new pool accepts was typed; so another spelling of what was typed (the old
    pool's letter case) is never returned: omitting it satisfies the older text as well."""
    if settings.new_username_attributes:
        return None  # Cognito names the user after the email or phone it was typed as
    if "email" in settings.new_alias_attributes and EMAIL.match(old_username):
        raise Refused(
            "Account cannot be migrated: its username is an email address, which this pool does not accept "
            "as a username. Contact support",
            "username_is_email",
        )
    if kind != "username":
        return old_username  # the contract: an alias was typed, so return the (unique) username
    if typed == old_username:
        return None
    if typed.casefold() == old_username.casefold():
        if settings.new_case_sensitive:
            # Created as typed, the user would be a stranger to the next sign-in spelled as registered.
            raise Refused(
                "Sign in with your username exactly as you registered it: letter case matters", "case_mismatch"
            )
        return None  # a case-insensitive pool: the user is created as typed and found in any case later
    if "preferred_username" not in settings.new_alias_attributes:
        # An alias only the old pool accepts: the new pool would never find the user by it again.
        raise Refused("Sign in with your username", "alias_not_accepted")
    return old_username  # a preferred_username the old pool resolved


def user_ref(username: object, secret: str | None) -> str | None:
    """A short reference to a username for the logs, so an operator can follow one user's lines (any letter
    case): keyed with the function's SIGNUP_INDEX_KEY, unlike the records' tokens (another key) and the index's
    items (another prefix), so nobody without that key can link a log line to a record or test a guessed name.
    None without a valid key."""
    if not isinstance(username, str) or not username or not isinstance(secret, str) or not _INDEX_KEY.match(secret):
        return None
    return index_key(secret, "log", username)[:12]


def fold(value: str) -> str:
    """The spelling two values share when they differ only by letter case or Unicode compatibility form
    (``Zed.Mixedcase``, ``ZED.MIXEDCASE`` and ``ｚｅｄ.mixedcase`` all fold to ``zed.mixedcase``)."""
    return unicodedata.normalize("NFKC", value).casefold()


def index_key(secret: str, kind: str, value: str) -> str:
    """The sign-up index's key for an old-pool `kind` ("username", "email", "phone_number") of `value`: an
    HMAC, so the table neither shows the value nor lets anyone test a guess without the function's key."""
    message = f"{kind}:{fold(value)}".encode()
    return hmac.new(bytes.fromhex(secret), message, hashlib.sha256).hexdigest()


def filter_expression(attribute: str, value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{attribute} = "{escaped}"'


# --- AWS access ----------------------------------------------------------------------------------------


def client(role: str, region: str, read_timeout: float | None = None) -> Any:
    """The client of `role` ("old", "new", "sts", "index": the sign-up index's DynamoDB): an injected one, else
    one per read timeout, created once per container (botocore fixes timeouts per client; another client of
    the same session costs ~10 ms)."""
    if role in _clients:
        return _clients[role]
    key = f"{role}@{read_timeout}"
    if key not in _clients:
        service: Literal["sts", "dynamodb", "cognito-idp"] = (
            "sts" if role == "sts" else "dynamodb" if role == "index" else "cognito-idp"
        )
        config = BOTO_CONFIG if read_timeout is None else call_config(read_timeout)
        _clients[key] = boto3.client(service, region_name=region, config=config, **_credentials.get(role, {}))
    return _clients[key]


def call_config(read_timeout: float) -> Config:
    # One attempt per request: BudgetedClient retries only while time is left, which botocore cannot know.
    return Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=read_timeout, retries={"total_max_attempts": 1})


class BudgetedClient:
    """A Cognito client whose every request fits the invocation's budget: sized from what is left, never
    started without enough left, retried (once) only when the failure was quick. Each request sent counts in
    the log line's `<side>_pool_calls` (pages of a listing are counted by group_names)."""

    def __init__(self, make: Any, budget: Budget, run: Invocation, side: str) -> None:
        self._make, self._budget, self._run, self._side = make, budget, run, side

    def __getattr__(self, operation: str) -> Any:
        return lambda **request: self.call(operation, request)

    def get_paginator(self, operation: str) -> Any:
        # Pages share the client sized when the listing starts (a user's groups fit in one or two pages).
        return self._make(self._budget.read_timeout()).get_paginator(operation)

    def call(self, operation: str, request: dict[str, Any]) -> Any:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            cognito = self._make(self._budget.read_timeout())
            counter = f"{self._side}_pool_calls"  # a request sent, retries included; one not started is not
            setattr(self._run, counter, getattr(self._run, counter) + 1)
            try:
                return getattr(cognito, operation)(**request)
            except ClientError as exc:
                if attempt == MAX_ATTEMPTS or error_code(exc) not in RETRYABLE_CODES:
                    raise
            except RETRYABLE_ERRORS:
                if attempt == MAX_ATTEMPTS:
                    raise
            time.sleep(max(0.0, min(random.uniform(0.02, 0.1), self._budget.left() - CONNECT_TIMEOUT_S)))
        raise AssertionError("unreachable: the last attempt returns or raises")


def old_pool(settings: Settings, run: Invocation, budget: Budget) -> BudgetedClient:
    """The old pool's client: this function's credentials, or the assumed role's, renewed before expiry."""
    if (
        settings.old_role_arn is not None
        and "old" not in _clients
        and _expires.get("old", 0.0) - time.time() <= CREDENTIALS_MARGIN_S
    ):
        assume_old_role(settings, run, budget)
    return BudgetedClient(lambda read: client("old", settings.old_region, read), budget, run, "old")


def assume_old_role(settings: Settings, run: Invocation, budget: Budget) -> None:
    sts = client("sts", os.environ.get("AWS_REGION") or settings.old_region)
    request = {"RoleArn": settings.old_role_arn, "RoleSessionName": "cognito-user-migration"}
    if settings.old_external_id:
        request["ExternalId"] = settings.old_external_id
    budget.read_timeout()  # not started without time to finish
    run.sts_calls += 1
    try:
        credentials = sts.assume_role(**request)["Credentials"]
    except ClientError as exc:
        raise Unavailable(f"sts_{error_code(exc)}") from None
    except BotoCoreError as exc:
        raise Unavailable(f"sts_{type(exc).__name__}") from None
    _credentials["old"] = {
        "aws_access_key_id": credentials["AccessKeyId"],
        "aws_secret_access_key": credentials["SecretAccessKey"],
        "aws_session_token": credentials["SessionToken"],
    }
    _expires["old"] = credentials["Expiration"].timestamp()
    for key in [k for k in _clients if k.startswith("old@")]:
        del _clients[key]  # built with the previous credentials


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


@contextmanager
def aws_errors() -> Iterator[None]:
    """Turn AWS failures into Refused (the user may not sign in) or Unavailable (fail closed)."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        if code in REFUSAL_CODES:
            raise Refused(GENERIC_REFUSAL, REFUSAL_CODES[code]) from None
        raise Unavailable(f"aws_{code}") from None
    except BotoCoreError as exc:
        raise Unavailable(f"aws_{type(exc).__name__}") from None


def get_old_user(old: Any, settings: Settings, username: str, run: Invocation) -> OldUser:
    with aws_errors():
        return OldUser.from_api(
            old.admin_get_user(UserPoolId=settings.old_user_pool_id, Username=username), complete=True
        )


def users_with(old: Any, settings: Settings, attribute: str, value: str, limit: int, run: Invocation) -> list[OldUser]:
    """Old-pool users whose `attribute` equals `value` (one ListUsers page of at most `limit`)."""
    with aws_errors():
        answer = old.list_users(
            UserPoolId=settings.old_user_pool_id, Filter=filter_expression(attribute, value), Limit=limit
        )
    return [OldUser.from_api(u) for u in answer.get("Users", [])]


def users_by_alias(old: Any, settings: Settings, kind: str, typed: str, run: Invocation) -> list[OldUser]:
    """Old-pool users whose verified `kind` equals what was typed, ignoring case. ListUsers' own case rules
    are not documented, so a spelling with capitals is asked as typed and in lowercase, both whatever the first
    finds: the number of calls depends on what was typed, never on who exists (and case twins are found)."""
    found: dict[str, OldUser] = {}
    for spelling in dict.fromkeys((typed, typed.lower())):
        for user in users_with(old, settings, kind, spelling, MAX_ALIAS_CANDIDATES + 1, run):
            found.setdefault(user.username, user)
    # An unverified email or phone is nobody's alias.
    return [
        u
        for u in found.values()
        if u.attribute(kind).casefold() == typed.casefold() and u.attribute(f"{kind}_verified") == "true"
    ]


def decoy_sign_in(old: Any, settings: Settings, run: Invocation) -> None:
    """The password check a known alias costs, made against a random name nobody has: an alias nobody holds
    must take the same old-pool calls (and about the same time) as one whose password is wrong."""
    try:
        authenticate(old, settings, f"no-such-user-{secrets.token_hex(16)}", secrets.token_urlsafe(24), run)
    except Refused:
        return  # the expected answer; Unavailable goes on, as it would for a real user's check


def decoy_user_read(old: Any, settings: Settings, run: Invocation) -> None:
    """The AdminGetUser require_mfa_allowed spends on a ListUsers row under MFA_POLICY refuse (an OFF or ON
    pool needs none), against a random name nobody has, for a forgot-password that found no single user."""
    if settings.mfa_policy != "refuse" or settings.old_mfa_configuration in ("ON", "OFF"):
        return
    try:
        get_old_user(old, settings, f"no-such-user-{secrets.token_hex(16)}", run)
    except Refused:
        return


def authenticate(old: Any, settings: Settings, username: str, password: str, run: Invocation) -> str | None:
    """The old pool's answer to the password: None (tokens) or the challenge; raises Refused if wrong.
    An answer this container got moments ago for the same name and password is reused: Cognito retries a
    sign-in whose attempt failed later on, and asking again would cost a call and, for SMS MFA, another SMS."""
    key = proof_key(settings, username, password)
    proof = _proofs.get(key)
    if proof is not None and proof[0] > time.monotonic():
        run.proof_reused = True
        if proof[2] is not None:
            raise Refused(GENERIC_REFUSAL, proof[2])
        return proof[1]
    try:
        with aws_errors():
            answer = old.admin_initiate_auth(
                UserPoolId=settings.old_user_pool_id,
                ClientId=settings.old_client_id,
                AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password},
            )
    except Refused as refused:
        remember_proof(key, None, refused.reason)
        raise
    challenge = None if "AuthenticationResult" in answer else str(answer.get("ChallengeName") or "unknown")
    remember_proof(key, challenge, None)
    return challenge


def proof_key(settings: Settings, username: str, password: str) -> str:
    message = "\0".join((settings.old_user_pool_id, settings.old_client_id, username, password)).encode()
    return hmac.new(_PROOF_KEY, message, hashlib.sha256).hexdigest()


def remember_proof(key: str, challenge: str | None, refusal: str | None) -> None:
    now = time.monotonic()
    if len(_proofs) >= MAX_PROOFS:
        for stale in [k for k, (until, *_) in _proofs.items() if until <= now] or list(_proofs)[: MAX_PROOFS // 2]:
            del _proofs[stale]
    _proofs[key] = (now + PROOF_TTL_S, challenge, refusal)


def require_migratable(user: OldUser) -> None:
    if not user.enabled:
        raise Refused(GENERIC_REFUSAL, "disabled")
    if user.status == "UNCONFIRMED":
        raise Refused(GENERIC_REFUSAL, "not_confirmed")


def require_mfa_allowed(user: OldUser, settings: Settings, old: Any, run: Invocation) -> None:
    """Under MFA_POLICY refuse, refuse a user the old pool asks for a second factor, with the message of an
    MFA challenge at sign-in: paths that meet no challenge (forgot-password, a temporary password) must not
    let them through. A ListUsers row shows only MFAOptions, so the user is read again with AdminGetUser
    whatever the row shows: the same work for every user, refused or not."""
    if settings.mfa_policy != "refuse" or settings.old_mfa_configuration == "OFF":
        return
    if settings.old_mfa_configuration != "ON" and not user.mfa_known:
        user = get_old_user(old, settings, user.username, run)
    # ON: a user without a factor is made to set one up (MFA_SETUP), so everyone has a second factor to pass.
    if settings.old_mfa_configuration == "ON" or user.mfa:
        raise Refused(MFA_REFUSAL, "mfa_refused")


def collision(candidates: list[OldUser], kind: str) -> Refused:
    """Several old users hold one alias: never merge them; the operator must decide who keeps it."""
    values = {u.attribute(kind) for u in candidates}
    reason = "case_collision" if len(values) > 1 else "alias_shared"
    label = kind.replace("_", " ")
    return Refused(
        f"Account cannot be migrated: more than one account uses this {label}. "
        "Sign in with your username or contact support",
        reason,
    )


# --- trigger sources -----------------------------------------------------------------------------------


def migrate_on_sign_in(event: Mapping[str, Any], settings: Settings, old: Any, run: Invocation) -> dict[str, Any]:
    """The response for a password sign-in, checked by the old pool; raises Refused if it must not migrate."""
    typed = str(event.get("userName") or "")
    password = (event.get("request") or {}).get("password") or ""
    if not typed or not password:
        raise Refused(GENERIC_REFUSAL, "missing_credentials")
    kind = sign_in_kind(typed, settings)
    require_accepted_name(kind, settings)
    if kind == "username" or kind in settings.old_sign_in_attributes:
        # The old pool resolves the name itself: the password first, then the user it belongs to.
        challenge = authenticate(old, settings, typed, password, run)
        user = get_old_user(old, settings, typed, run)
    else:
        # The old pool does not know this alias: ListUsers finds its owner (attributes included).
        candidates = users_by_alias(old, settings, kind, typed, run)
        if not candidates:
            decoy_sign_in(old, settings, run)
            raise Refused(GENERIC_REFUSAL, "user_not_found")
        accepted = []
        for candidate in candidates[:MAX_ALIAS_CANDIDATES]:
            try:
                accepted.append((candidate, authenticate(old, settings, candidate.username, password, run)))
            except Refused:
                continue
        if not accepted:
            raise Refused(GENERIC_REFUSAL, "not_authorized")
        if len(candidates) > 1:
            raise collision(candidates, kind)
        user, challenge = accepted[0]
    require_migratable(user)
    if challenge == "NEW_PASSWORD_REQUIRED":
        # Cognito asks for the new password before the second factor: a temporary password proves no factor.
        require_mfa_allowed(user, settings, old, run)
    attributes = attributes_for(user, settings)
    outcome = sign_in_outcome(challenge, settings.mfa_policy, attributes)
    if outcome.final_status == "RESET_REQUIRED":
        require_verified_contact(attributes)
    username = new_username(typed, kind, user.username, settings)
    run.final_status, run.reason = outcome.final_status, outcome.reason
    response = migration_response(attributes, username, outcome.final_status, settings)
    if outcome.enable_sms_mfa:
        response["enableSMSMFA"] = True
    return response


def attributes_for(user: OldUser, settings: Settings) -> dict[str, str]:
    """What the new pool receives for this old user, under this function's configuration."""
    return build_user_attributes(
        user.attributes,
        settings.allowed_attributes,
        settings.attribute_defaults,
        settings.legacy_sub_attribute,
        settings.attribute_map,
        user.username,
    )


def migrate_on_forgot_password(
    event: Mapping[str, Any], settings: Settings, old: Any, run: Invocation
) -> dict[str, Any]:
    """The response for a password reset of a user not yet migrated: RESET_REQUIRED, no password."""
    typed = str(event.get("userName") or "")
    if not typed:
        raise Refused(GENERIC_REFUSAL, "missing_credentials")
    kind = sign_in_kind(typed, settings)
    require_accepted_name(kind, settings)  # the same for every name typed: it tells nothing of who exists
    try:
        user = forgot_password_user(typed, kind, settings, old, run)
        require_migratable(user)
        require_mfa_allowed(user, settings, old, run)  # before the contact check, in the order of a sign-in
        attributes = attributes_for(user, settings)
        require_verified_contact(attributes)
        username = new_username(typed, kind, user.username, settings)
    except Refused as exc:
        # Nobody proved a password here: a user without a verified contact, with MFA, sharing an alias... must
        # get an unknown user's answer, or forgot-password tells anyone who exists. The log keeps the reason.
        raise Refused(GENERIC_REFUSAL, exc.reason) from None
    run.final_status, run.reason = "RESET_REQUIRED", "forgot_password"
    return migration_response(attributes, username, "RESET_REQUIRED", settings)


def forgot_password_user(typed: str, kind: str, settings: Settings, old: Any, run: Invocation) -> OldUser:
    """The one old-pool user a forgot-password names; raises Refused after the calls a found user costs."""
    if kind == "username" or kind in settings.old_sign_in_attributes:
        return get_old_user(old, settings, typed, run)
    candidates = users_by_alias(old, settings, kind, typed, run)
    if len(candidates) != 1:
        decoy_user_read(old, settings, run)
        # Without a password there is no telling which of several holders asked.
        raise collision(candidates, kind) if candidates else Refused(GENERIC_REFUSAL, "user_not_found")
    return candidates[0]


def migration_response(
    attributes: dict[str, str], username: str | None, final_status: str, settings: Settings
) -> dict[str, Any]:
    attributes = dict(attributes)
    if settings.groups_marker:
        attributes[GROUPS_MARKER] = "1"
    if username is not None:
        attributes["username"] = username
    # Never take an alias away from another user (forceAliasCreation): a clash fails the migration instead.
    return {
        "userAttributes": attributes,
        "finalUserStatus": final_status,
        "messageAction": "SUPPRESS",
        "forceAliasCreation": False,
    }


def old_username_of(event: Mapping[str, Any], settings: Settings, old: Any, run: Invocation) -> str | None:
    """The old pool's name for a new-pool user: the same username, or (email-as-username pools) the owner
    of the user's verified email or phone. None when there is none to find."""
    if not settings.new_username_attributes:
        return str(event["userName"])
    attributes = (event.get("request") or {}).get("userAttributes") or {}
    for kind in sorted(settings.new_username_attributes):
        if not is_verified(attributes, kind):
            continue
        if kind in settings.old_sign_in_attributes:
            return str(attributes[kind])
        owners = users_by_alias(old, settings, kind, attributes[kind], run)
        return owners[0].username if len(owners) == 1 else None
    return None


def copy_groups(event: Mapping[str, Any], settings: Settings, old: Any, new: Any, run: Invocation) -> None:
    """Add the user to the new pool's groups they hold in the old pool; a group missing there is logged."""
    username, new_pool_id = event["userName"], event["userPoolId"]
    user_attributes = (event.get("request") or {}).get("userAttributes") or {}
    if settings.groups_marker and not user_attributes.get(GROUPS_MARKER):
        run.reason = "no_groups_pending"  # copied at the first sign-in, or never in the old pool
        return
    if _copied.get((new_pool_id, username), 0.0) > time.monotonic():
        # Cognito's retry of a copy this container finished: its event still shows the marker it removed.
        run.reason = "already_copied"
        return
    run.reason, run.groups_added, run.groups_missing = "groups_copied", [], []
    with aws_errors():
        try:
            old_name = old_username_of(event, settings, old, run)
            wanted = group_names(old, settings.old_user_pool_id, old_name, run, "old") if old_name else None
        except ClientError as exc:
            if error_code(exc) != "UserNotFoundException":
                raise
            wanted = None
        if wanted is None:
            # Users who signed up in the new pool, or were imported under another name, have nothing to copy.
            run.reason = "not_in_old_pool"
        else:
            for group in sorted(wanted - group_names(new, new_pool_id, username, run, "new")):
                try:
                    new.admin_add_user_to_group(UserPoolId=new_pool_id, Username=username, GroupName=group)
                except ClientError as exc:
                    if error_code(exc) != "ResourceNotFoundException":
                        raise
                    run.groups_missing.append(group)  # create it in the new pool; the next sign-in adds it
                    continue
                run.groups_added.append(group)
        if settings.groups_marker and not run.groups_missing:
            new.admin_delete_user_attributes(
                UserPoolId=new_pool_id, Username=username, UserAttributeNames=[GROUPS_MARKER]
            )
            _copied[(new_pool_id, username)] = time.monotonic() + PROOF_TTL_S


def group_names(cognito: Any, pool_id: str, username: str, run: Invocation, side: str) -> set[str]:
    """Every group of the user, over all pages; each request is counted on `side` ("old" or "new")."""
    counter = "old_pool_calls" if side == "old" else "new_pool_calls"
    pages = cognito.get_paginator("admin_list_groups_for_user").paginate(UserPoolId=pool_id, Username=username)
    names: set[str] = set()
    try:
        for page in pages:
            setattr(run, counter, getattr(run, counter) + 1)
            names.update(group["GroupName"] for group in page.get("Groups", []))
    except (ClientError, BotoCoreError):
        setattr(run, counter, getattr(run, counter) + 1)  # the request that failed
        raise
    return names


def sign_up_keys(event: Mapping[str, Any], settings: Settings) -> list[tuple[str, str]]:
    """(kind, value) pairs of a sign-up to look up: the username where the new pool has usernames of its own,
    the email, and the phone number where the new pool signs in by phone."""
    attributes = (event.get("request") or {}).get("userAttributes") or {}
    # Federated users and email-as-username pools have no username of their own to compare.
    by_username = event.get("triggerSource") == "PreSignUp_SignUp" and not settings.new_username_attributes
    by_phone = "phone_number" in settings.new_username_attributes | settings.new_alias_attributes
    keys = [("username", str(event.get("userName") or ""))] if by_username else []
    keys.append(("email", str(attributes.get("email") or "")))
    if by_phone:
        keys.append(("phone_number", str(attributes.get("phone_number") or "")))
    return [(kind, value) for kind, value in keys if value]


def guard_sign_up(event: Mapping[str, Any], settings: Settings, index: Any, run: Invocation) -> None:
    """Refuse a sign-up whose username, email or phone number, ignoring case, belongs to a user of the old
    pool: that user must sign in (and so migrate), not find their name taken. One GetItem per key in the
    sign-up index, all of them whatever the first answers, and one message for every match, so neither the
    answer nor the work tells which old-pool value exists. Fails closed: no index, no sign-up."""
    if event.get("triggerSource") == "PreSignUp_AdminCreateUser":
        run.reason = "admin_create_user"  # administrators create users on purpose (canaries, imports)
        return
    table, secret = settings.signup_index_table, settings.signup_index_key
    if not table or not secret:
        raise Unavailable("signup_index_not_configured")
    held = [kind for kind, value in sign_up_keys(event, settings) if indexed(index, table, secret, kind, value, run)]
    if held:
        raise Refused(SIGN_UP_REFUSAL, f"held_by_old_user_{held[0]}")
    run.reason = "not_in_old_pool"


def indexed(index: Any, table: str, secret: str, kind: str, value: str, run: Invocation) -> bool:
    """True when the sign-up index holds this value of an old-pool user; any failure is Unavailable."""
    run.index_calls += 1
    key = {INDEX_KEY_ATTRIBUTE: {"S": index_key(secret, kind, value)}}
    try:
        return "Item" in index.get_item(TableName=table, Key=key)
    except ClientError as exc:
        raise Unavailable(f"signup_index_{error_code(exc)}") from None
    except BotoCoreError as exc:
        raise Unavailable(f"signup_index_{type(exc).__name__}") from None


# --- the handler ---------------------------------------------------------------------------------------


def source_label(source: str) -> str:
    """The trigger source as logged and quoted: a malformed event's field could hold anything (a password,
    a megabyte), so only a value shaped like Cognito's names is repeated."""
    return source if _SOURCE_SHAPE.match(source) else "malformed"


def log_invocation(run: Invocation, started: float) -> None:
    line: dict[str, Any] = {
        "trigger": run.trigger,
        "outcome": run.outcome,
        "final_status": run.final_status,
        "ms": round((time.monotonic() - started) * 1000),
        "old_pool_calls": run.old_pool_calls,
        "new_pool_calls": run.new_pool_calls,
        "sts_calls": run.sts_calls,
        "index_calls": run.index_calls,
        "budget_ms": run.budget_ms,
        "cold_start": run.cold_start,
        "reason": run.reason,
        "user": run.user,
    }
    if run.proof_reused:
        line["proof_reused"] = True
    if run.groups_added is not None:
        line.update(groups_added=run.groups_added, groups_missing=run.groups_missing)
    if not LOGGER.hasHandlers():
        # Lambda's runtime gives the root logger a handler; a plain interpreter (the local emulator running
        # the zip) has none, and logging's last-resort handler would drop an INFO line.
        LOGGER.addHandler(logging.StreamHandler())
    LOGGER.info(json.dumps(line, sort_keys=True))


def dispatch(event: dict[str, Any], source: str, run: Invocation, budget: Budget) -> dict[str, Any]:
    settings = load_settings(os.environ)
    if source in SIGN_UP_SOURCES:
        # Sign-ups never reach the old pool: anyone may call SignUp, and ListUsers' quota is production's.
        guard_sign_up(event, settings, client("index", os.environ.get("AWS_REGION") or event["region"]), run)
        run.outcome = "allowed"
        return event
    old = old_pool(settings, run, budget)
    if source == "PostAuthentication_Authentication":
        new = BudgetedClient(lambda read: client("new", event["region"], read), budget, run, "new")
        copy_groups(event, settings, old, new, run)
        run.outcome = "groups_copied" if run.reason == "groups_copied" else "nothing_to_copy"
        return event
    if source == "UserMigration_Authentication":
        response = migrate_on_sign_in(event, settings, old, run)
    else:
        response = migrate_on_forgot_password(event, settings, old, run)
    event["response"] = {**(event.get("response") or {}), **response}
    run.outcome = "migrated"
    return event


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: dispatch on triggerSource, return the event with its response filled."""
    started = time.monotonic()
    _container["invocations"] += 1
    event = event if isinstance(event, dict) else {}  # a malformed event still gets its log line, then fails
    source = str(event.get("triggerSource", ""))
    user = user_ref(event.get("userName"), os.environ.get("SIGNUP_INDEX_KEY"))
    run = Invocation(trigger=source_label(source), user=user, cold_start=_container["invocations"] == 1)
    budget = budget_for(context, started, run.cold_start)
    run.budget_ms = round(budget.left() * 1000)
    try:
        if source not in TRIGGER_SOURCES:
            raise MigrationError(f"Unsupported trigger source {run.trigger}", "unsupported_trigger")
        return dispatch(event, source, run, budget)
    except Refused as exc:
        run.outcome, run.reason = "refused", exc.reason
        raise
    except MigrationError as exc:
        run.outcome, run.reason = "error", exc.reason
        raise
    except Exception as exc:
        # The original message may quote the event (the password included): log its type, raise a blank one.
        run.outcome, run.reason = "error", f"unexpected_{type(exc).__name__}"
        raise Unavailable(run.reason) from None
    finally:
        log_invocation(run, started)
