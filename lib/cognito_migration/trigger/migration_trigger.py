"""Cognito Lambda trigger that moves users from an old user pool into the new pool it is attached to.

Attach it to the NEW pool as its User Migration trigger and, to copy group memberships, its PostAuthentication
trigger. Handler: ``migration_trigger.handler``; stdlib and boto3 only. Trigger sources:
  UserMigration_Authentication       the old pool checks the password (ADMIN_USER_PASSWORD_AUTH); returns the
                                     user's attributes, CONFIRMED (password kept) or RESET_REQUIRED.
  UserMigration_ForgotPassword       a known user with a verified email or phone, as RESET_REQUIRED.
  PostAuthentication_Authentication  adds the user to the new pool's groups it holds in the old pool. It runs
                                     on every sign-in: detach it before deleting the old pool.
Any other source raises: the function fails closed.

Environment variables (missing or invalid ones raise ConfigurationError; nobody is migrated):
  OLD_USER_POOL_ID      required. The pool users come from.
  OLD_CLIENT_ID         required. An old-pool app client (no secret) allowing ALLOW_ADMIN_USER_PASSWORD_AUTH.
  OLD_REGION            the old pool's region; default: AWS_REGION.
  MFA_POLICY            when the password is right but the old pool asks for a second factor (which the
                        trigger cannot check): reset_required (default) migrates as RESET_REQUIRED; sms as
                        CONFIRMED with SMS MFA if the phone number is verified, else RESET_REQUIRED; refuse.
  ALLOWED_ATTRIBUTES    optional comma-separated names the NEW pool's schema accepts, e.g.
                        "email,email_verified,name,custom:tier"; others are dropped (one unknown attribute
                        fails the migration). `sub` is always dropped.
  ATTRIBUTE_DEFAULTS    optional JSON object {"attribute": "default"} for attributes the new pool requires,
                        used when the old user lacks them or has them empty.
  LEGACY_SUB_ATTRIBUTE  optional custom attribute, e.g. "custom:legacy_sub", receiving the old `sub` (the new
                        pool issues a new one; apps keyed on `sub` need the old value).

What callers see (Cognito shows "UserMigration failed with error <message>."):
  Refused("Incorrect username or password")  wrong password; unknown, unconfirmed, disabled or reset-required
                                              user: one message, so nobody can probe which users exist.
  Refused(<clear message>)                    the password is proven but the user cannot be migrated: MFA
                                              refused, unsupported challenge, no verified email or phone.
  Unavailable("Migration is temporarily unavailable, please try again later")
                                              the old pool failed, or anything unexpected did.
  ConfigurationError(<names the variable>)    the function is misconfigured.
Each invocation logs one JSON line: trigger, outcome, final_status, ms, old_pool_calls, reason and a sha256
prefix of the username; never the password, the event, the attributes or the email.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

LOGGER = logging.getLogger("migration_trigger")
LOGGER.setLevel(logging.INFO)

GENERIC_REFUSAL = "Incorrect username or password"
UNAVAILABLE = "Migration is temporarily unavailable, please try again later"
MFA_CHALLENGES = frozenset({"SMS_MFA", "SOFTWARE_TOKEN_MFA", "SELECT_MFA_TYPE", "EMAIL_OTP", "MFA_SETUP"})
MFA_POLICIES = frozenset({"reset_required", "sms", "refuse"})
TRIGGER_SOURCES = frozenset(
    {"UserMigration_Authentication", "UserMigration_ForgotPassword", "PostAuthentication_Authentication"}
)

# Cognito gives the whole trigger 5 s. Short timeouts and one retry make a sick old pool fail the sign-in
# (fail closed) instead of hanging past the limit.
BOTO_CONFIG = Config(connect_timeout=2, read_timeout=2, retries={"total_max_attempts": 2, "mode": "standard"})

# Old-pool errors that mean "this user may not sign in", all answered with GENERIC_REFUSAL.
REFUSAL_CODES = {
    "NotAuthorizedException": "not_authorized",
    "UserNotFoundException": "user_not_found",
    "UserNotConfirmedException": "not_confirmed",
    "PasswordResetRequiredException": "password_reset_required",
}

# Injection seam: boto3 clients by role ("old", "new"), created once per container. Tests put fakes here.
_clients: dict[str, Any] = {}


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
    """This user must not be migrated."""


class Unavailable(MigrationError):
    """The old pool could not answer, or something unexpected happened. The message never carries details."""

    def __init__(self, reason: str) -> None:
        super().__init__(UNAVAILABLE, reason)


@dataclass(frozen=True)
class Settings:
    old_user_pool_id: str
    old_client_id: str
    old_region: str
    mfa_policy: str = "reset_required"
    allowed_attributes: frozenset[str] | None = None
    attribute_defaults: Mapping[str, str] = field(default_factory=dict)
    legacy_sub_attribute: str | None = None


@dataclass(frozen=True)
class SignInOutcome:
    final_status: str
    reason: str
    enable_sms_mfa: bool = False


@dataclass
class Invocation:
    """What the one log line of an invocation reports."""

    trigger: str
    user: str | None
    outcome: str = "error"
    final_status: str | None = None
    reason: str = "unexpected"
    old_pool_calls: int = 0
    groups_added: list[str] | None = None
    groups_missing: list[str] | None = None


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

    try:
        defaults = json.loads(environ.get("ATTRIBUTE_DEFAULTS", "").strip() or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"ATTRIBUTE_DEFAULTS is not valid JSON ({exc.msg})") from None
    if not isinstance(defaults, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in defaults.items()
    ):
        raise ConfigurationError('ATTRIBUTE_DEFAULTS must be a JSON object of strings, e.g. {"name": "-"}')
    if "sub" in defaults:
        raise ConfigurationError("ATTRIBUTE_DEFAULTS may not set `sub`: Cognito assigns it")

    legacy_sub = environ.get("LEGACY_SUB_ATTRIBUTE", "").strip() or None
    if legacy_sub is not None and not legacy_sub.startswith("custom:"):
        raise ConfigurationError(f"LEGACY_SUB_ATTRIBUTE={legacy_sub!r} must be a custom attribute (custom:x)")

    # Anything we would send must be in the schema, or every migration fails; better to say so now.
    sent_by_config = set(defaults) | ({legacy_sub} if legacy_sub else set())
    outside = sorted(sent_by_config - allowed) if allowed is not None else []
    if outside:
        raise ConfigurationError(
            f"{outside} are set by ATTRIBUTE_DEFAULTS/LEGACY_SUB_ATTRIBUTE but missing "
            "from ALLOWED_ATTRIBUTES: add them there (and to the new pool's schema)"
        )
    return Settings(old_user_pool_id, old_client_id, old_region, mfa_policy, allowed, defaults, legacy_sub)


def build_user_attributes(
    old_attributes: list[dict[str, str]],
    allowed: frozenset[str] | set[str] | None,
    defaults: Mapping[str, str],
    legacy_sub_attribute: str | None,
) -> dict[str, str]:
    """The userAttributes to return for a user whose old-pool attributes are `old_attributes`."""
    old = {a["Name"]: a.get("Value", "") for a in old_attributes}
    # `sub` belongs to the pool (returning it fails the migration); empty values carry nothing and can
    # fail the new schema's format checks.
    attributes = {
        name: value for name, value in old.items() if name != "sub" and value and (allowed is None or name in allowed)
    }
    for name, default in defaults.items():
        attributes[name] = attributes.get(name) or default
    if legacy_sub_attribute and old.get("sub"):
        attributes[legacy_sub_attribute] = old["sub"]
    return attributes


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
        raise Refused(
            "Accounts with multi-factor authentication cannot be migrated at sign-in. Contact support.", "mfa_refused"
        )
    if mfa_policy == "sms" and is_verified(attributes, "phone_number"):
        return SignInOutcome("CONFIRMED", "mfa_sms", enable_sms_mfa=True)
    return SignInOutcome("RESET_REQUIRED", "mfa_reset_required")


def user_ref(username: object) -> str | None:
    """A short, stable, non-reversible reference to a username for the logs."""
    if not isinstance(username, str) or not username:
        return None
    return hashlib.sha256(username.encode()).hexdigest()[:12]


def client(role: str, region: str) -> Any:
    if role not in _clients:
        _clients[role] = boto3.client("cognito-idp", region_name=region, config=BOTO_CONFIG)
    return _clients[role]


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


def old_user_attributes(old: Any, settings: Settings, username: str, run: Invocation) -> dict[str, str]:
    """The migrated attributes of an enabled old-pool user; raises Refused for unknown or disabled ones."""
    run.old_pool_calls += 1
    with aws_errors():
        user = old.admin_get_user(UserPoolId=settings.old_user_pool_id, Username=username)
    if not user.get("Enabled", True):
        raise Refused(GENERIC_REFUSAL, "disabled")
    if user.get("UserStatus") == "UNCONFIRMED":
        raise Refused(GENERIC_REFUSAL, "not_confirmed")
    return build_user_attributes(
        user.get("UserAttributes", []),
        settings.allowed_attributes,
        settings.attribute_defaults,
        settings.legacy_sub_attribute,
    )


def migrate_on_sign_in(event: Mapping[str, Any], settings: Settings, old: Any, run: Invocation) -> dict[str, Any]:
    """The response for a password sign-in, checked by the old pool; raises Refused if it must not migrate."""
    username = event.get("userName") or ""
    password = (event.get("request") or {}).get("password") or ""
    if not username or not password:
        raise Refused(GENERIC_REFUSAL, "missing_credentials")
    run.old_pool_calls += 1
    with aws_errors():
        answer = old.admin_initiate_auth(
            UserPoolId=settings.old_user_pool_id,
            ClientId=settings.old_client_id,
            AuthFlow="ADMIN_USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": password},
        )
    challenge = None if "AuthenticationResult" in answer else str(answer.get("ChallengeName") or "unknown")
    attributes = old_user_attributes(old, settings, username, run)
    outcome = sign_in_outcome(challenge, settings.mfa_policy, attributes)
    if outcome.final_status == "RESET_REQUIRED":
        require_verified_contact(attributes)
    run.final_status, run.reason = outcome.final_status, outcome.reason
    response: dict[str, Any] = {
        "userAttributes": attributes,
        "finalUserStatus": outcome.final_status,
        "messageAction": "SUPPRESS",
    }
    if outcome.enable_sms_mfa:
        response["enableSMSMFA"] = True
    return response


def migrate_on_forgot_password(
    event: Mapping[str, Any], settings: Settings, old: Any, run: Invocation
) -> dict[str, Any]:
    """The response for a password reset of a user not yet migrated: RESET_REQUIRED, no password."""
    username = event.get("userName") or ""
    if not username:
        raise Refused(GENERIC_REFUSAL, "missing_credentials")
    attributes = old_user_attributes(old, settings, username, run)
    require_verified_contact(attributes)
    run.final_status, run.reason = "RESET_REQUIRED", "forgot_password"
    return {"userAttributes": attributes, "finalUserStatus": "RESET_REQUIRED", "messageAction": "SUPPRESS"}


def group_names(cognito: Any, pool_id: str, username: str, old_pool_run: Invocation | None = None) -> set[str]:
    """Every group of the user, over all pages. With `old_pool_run`, each page request is counted there."""
    paginator = cognito.get_paginator("admin_list_groups_for_user")
    names: set[str] = set()
    pages = paginator.paginate(UserPoolId=pool_id, Username=username)
    try:
        for page in pages:
            if old_pool_run:
                old_pool_run.old_pool_calls += 1
            names.update(group["GroupName"] for group in page.get("Groups", []))
    except (ClientError, BotoCoreError):
        if old_pool_run:
            old_pool_run.old_pool_calls += 1  # the request that failed
        raise
    return names


def copy_groups(event: Mapping[str, Any], settings: Settings, old: Any, new: Any, run: Invocation) -> None:
    """Add the user to the new pool's groups they hold in the old pool; a group missing there is logged."""
    username, new_pool_id = event["userName"], event["userPoolId"]
    run.reason, run.groups_added, run.groups_missing = "groups_copied", [], []
    with aws_errors():
        try:
            wanted = group_names(old, settings.old_user_pool_id, username, old_pool_run=run)
        except ClientError as exc:
            if error_code(exc) != "UserNotFoundException":
                raise
            # Users who signed up in the new pool, or were imported under another name, have nothing to copy.
            run.reason = "not_in_old_pool"
            return
        for group in sorted(wanted - group_names(new, new_pool_id, username)):
            try:
                new.admin_add_user_to_group(UserPoolId=new_pool_id, Username=username, GroupName=group)
            except ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                run.groups_missing.append(group)  # create it in the new pool; the next sign-in adds it
                continue
            run.groups_added.append(group)


def log_invocation(run: Invocation, started: float) -> None:
    line = {
        "trigger": run.trigger,
        "outcome": run.outcome,
        "final_status": run.final_status,
        "ms": round((time.monotonic() - started) * 1000),
        "old_pool_calls": run.old_pool_calls,
        "reason": run.reason,
        "user": run.user,
    }
    if run.groups_added is not None:
        line.update(groups_added=run.groups_added, groups_missing=run.groups_missing)
    if not LOGGER.hasHandlers():
        # Lambda's runtime gives the root logger a handler; a plain interpreter (the local emulator running
        # the zip) has none, and logging's last-resort handler would drop an INFO line.
        LOGGER.addHandler(logging.StreamHandler())
    LOGGER.info(json.dumps(line, sort_keys=True))


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point: dispatch on triggerSource, return the event with its response filled."""
    started = time.monotonic()
    event = event if isinstance(event, dict) else {}  # a malformed event still gets its log line, then fails
    source = str(event.get("triggerSource", ""))
    run = Invocation(trigger=source, user=user_ref(event.get("userName")))
    try:
        if source not in TRIGGER_SOURCES:
            raise MigrationError(f"Unsupported trigger source {source[:64]!r}", "unsupported_trigger")
        settings = load_settings(os.environ)
        old = client("old", settings.old_region)
        if source == "PostAuthentication_Authentication":
            copy_groups(event, settings, old, client("new", event["region"]), run)
            run.outcome = "groups_copied"
            return event
        if source == "UserMigration_Authentication":
            response = migrate_on_sign_in(event, settings, old, run)
        else:
            response = migrate_on_forgot_password(event, settings, old, run)
        event["response"] = {**(event.get("response") or {}), **response}
        run.outcome = "migrated"
        return event
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
