"""Step 4: smoke-test sign-in through the deployed trigger with canary users.

Canaries are created in the old pool with passwords generated here, at run time, and held only in memory:
never returned, logged or saved. A wrong password must be refused and create nobody; the right password
must migrate the canary with its attributes and groups; forgot-password must migrate a second canary as
RESET_REQUIRED, which then signs in through every password client of the new pool as it is configured: the
answer must be the one its PreventUserExistenceErrors gives (PasswordResetRequiredException when LEGACY,
NotAuthorizedException when ENABLED: developer guide, "Requiring imported users to reset their passwords"), and
the check says which one the apps see. Canaries are removed from both pools afterwards, whatever happened.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from . import pool
from .aws import absent_as_none, error_code
from .checks import Check

CANARY_PREFIX = "cognito-migration-canary-"
# What a RESET_REQUIRED user's password sign-in answers, by the client's PreventUserExistenceErrors.
RESET_REQUIRED_ANSWERS = {"LEGACY": "PasswordResetRequiredException", "ENABLED": "NotAuthorizedException"}
WHAT_APPS_DO = {
    "LEGACY": "apps send PasswordResetRequiredException to forgot-password",
    "ENABLED": "apps cannot tell it from a wrong password: they must offer forgot-password on NotAuthorizedException",
}


@dataclass(frozen=True)
class Canary:
    username: str  # as created in the old pool
    attributes: dict[str, str]
    groups: tuple[str, ...]
    sign_in_name: str  # what the user types at the new pool: the username, or its email / phone number


def sign_in_name(username: str, attributes: dict[str, str], sign_in: Sequence[str]) -> str:
    """The name a user signs in with where ``sign_in`` (a pool's UsernameAttributes) is declared."""
    return next((attributes[a] for a in sign_in if attributes.get(a)), username)


def generate_password(length: int = 24) -> str:
    """A password that satisfies any Cognito password policy (upper, lower, digit, symbol)."""
    alphabet = string.ascii_letters + string.digits
    body = "".join(secrets.choice(alphabet) for _ in range(length - 4))
    return (
        body
        + secrets.choice(string.ascii_uppercase)
        + secrets.choice(string.ascii_lowercase)
        + secrets.choice(string.digits)
        + secrets.choice("!#%+-=^_")
    )


def secret_hash(username: str, client: dict[str, Any]) -> dict[str, str]:
    """SECRET_HASH for clients with a secret (none otherwise)."""
    secret = client.get("ClientSecret")
    if not secret:
        return {}
    digest = hmac.new(secret.encode(), (username + client["ClientId"]).encode(), hashlib.sha256).digest()
    return {"SECRET_HASH": base64.b64encode(digest).decode()}


def canary_attributes(username: str, required: tuple[str, ...], phone: bool = False) -> dict[str, str]:
    """A verified email (and, for pools signing in by phone number, a verified number from the 555-01xx
    range kept for fiction) plus a value for every required attribute."""
    attributes = {"email": f"{username}@example.invalid", "email_verified": "true"}
    if phone:
        attributes |= {"phone_number": f"+1555{secrets.randbelow(10**7):07d}", "phone_number_verified": "true"}
    for name in required:
        attributes.setdefault(name, "Canary")
    return attributes


def create_canary(
    cognito: Any,
    pool_id: str,
    username: str,
    attributes: dict[str, str],
    groups: tuple[str, ...],
    password: str,
    sign_in: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> Canary:
    """The canary in the old pool; ``sign_in`` is (old pool's, new pool's) UsernameAttributes: a pool that
    signs in by email or phone number is given that value as the username."""
    username = sign_in_name(username, attributes, sign_in[0])
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=username,
        MessageAction="SUPPRESS",
        TemporaryPassword=generate_password(),
        UserAttributes=[{"Name": k, "Value": v} for k, v in attributes.items()],
    )
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=username, Password=password, Permanent=True)
    for group in groups:
        cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=group)
    return Canary(username, attributes, groups, sign_in_name(username, attributes, sign_in[1]))


def _sign_in(cognito: Any, client: dict[str, Any], username: str, password: str) -> dict[str, Any] | str:
    """Tokens/challenge as a dict, or the error code of a refusal."""
    try:
        return dict(
            cognito.initiate_auth(
                ClientId=client["ClientId"],
                AuthFlow="USER_PASSWORD_AUTH",
                AuthParameters={"USERNAME": username, "PASSWORD": password, **secret_hash(username, client)},
            )
        )
    except ClientError as exc:
        return error_code(exc)


def _new_user(cognito: Any, pool_id: str, username: str) -> dict[str, Any] | None:
    user = absent_as_none(
        lambda: cognito.admin_get_user(UserPoolId=pool_id, Username=username), "UserNotFoundException"
    )
    return None if user is None else dict(user)


def _groups_of(cognito: Any, pool_id: str, username: str) -> set[str]:
    pages = cognito.get_paginator("admin_list_groups_for_user").paginate(UserPoolId=pool_id, Username=username)
    return {g["GroupName"] for page in pages for g in page["Groups"]}


def run_smoke_test(
    cognito: Any,
    old_pool_id: str,
    new_pool_id: str,
    client: dict[str, Any],
    required: tuple[str, ...],
    groups: list[str],
    run_id: str,
    sign_in: tuple[Sequence[str], Sequence[str]] = ((), ()),
) -> list[Check]:
    """Runs every canary check; removes the canaries from both pools before returning. ``sign_in`` is the
    (old, new) pools' UsernameAttributes: canaries sign in as users of that pool would, by username or by
    email / phone number."""
    suffix = run_id.lower().replace(":", "")[-16:] + secrets.token_hex(3)
    names = f"{CANARY_PREFIX}{suffix}", f"{CANARY_PREFIX}{suffix}-reset"
    phone = "phone_number" in sign_in[1] and "email" not in sign_in[1]
    attributes = [canary_attributes(name, required, phone) for name in names]
    canary_groups = tuple(sorted(groups)[:2])
    checks: list[Check] = []
    try:
        password = generate_password()
        canary = create_canary(cognito, old_pool_id, names[0], attributes[0], canary_groups, password, sign_in)
        checks += _wrong_password_checks(cognito, new_pool_id, client, canary)
        checks += _sign_in_checks(cognito, new_pool_id, client, canary, password)
        del password
        password = generate_password()
        reset = create_canary(cognito, old_pool_id, names[1], attributes[1], (), password, sign_in)
        forgot = _forgot_password_checks(cognito, new_pool_id, client, reset)
        checks += forgot
        if all(check.passed for check in forgot):
            checks += _reset_required_checks(cognito, pool.password_clients(cognito, new_pool_id), reset, password)
        del password
    finally:
        # By name, not by the Canary objects: a canary whose creation failed half-way is removed too.
        left = [
            (pool_id, sign_in_name(name, attrs, side))
            for name, attrs in zip(names, attributes, strict=True)
            for pool_id, side in ((old_pool_id, sign_in[0]), (new_pool_id, sign_in[1]))
        ]
        checks.append(_remove_canaries(cognito, left))
    return checks


def _wrong_password_checks(cognito: Any, pool_id: str, client: dict[str, Any], canary: Canary) -> list[Check]:
    answer = _sign_in(cognito, client, canary.sign_in_name, generate_password())
    created = _new_user(cognito, pool_id, canary.sign_in_name)
    return [
        Check(
            "wrong password is refused",
            isinstance(answer, str),
            "blocker",
            f"answer: {answer if isinstance(answer, str) else 'signed in'}",
            "the trigger must check the password against the old pool: do not deploy it",
        ),
        Check(
            "wrong password creates nobody",
            created is None,
            "blocker",
            "no user in the new pool" if created is None else "a user was created",
            "the trigger must fail closed on a refused password",
        ),
    ]


def _sign_in_checks(cognito: Any, pool_id: str, client: dict[str, Any], canary: Canary, password: str) -> list[Check]:
    answer = _sign_in(cognito, client, canary.sign_in_name, password)
    user = _new_user(cognito, pool_id, canary.sign_in_name)
    attributes = {a["Name"]: a["Value"] for a in (user or {}).get("UserAttributes", [])}
    missing = {k: v for k, v in canary.attributes.items() if attributes.get(k) != v}
    groups = _groups_of(cognito, pool_id, canary.sign_in_name) if user else set()
    return [
        Check(
            "right password signs in",
            isinstance(answer, dict) and "AuthenticationResult" in answer,
            "blocker",
            f"answer: {answer if isinstance(answer, str) else _answer_kind(answer)}",
            "read the trigger's log in CloudWatch (/aws/lambda/<function>) for the reason",
        ),
        Check(
            "migrated user is CONFIRMED",
            (user or {}).get("UserStatus") == "CONFIRMED",
            "blocker",
            f"status: {(user or {}).get('UserStatus')}",
            "the trigger must return finalUserStatus CONFIRMED",
        ),
        Check(
            "attributes carried",
            user is not None and not missing,
            "blocker",
            f"differing: {sorted(missing)}" if missing else "all carried",
            "check ALLOWED_ATTRIBUTES and attribute_defaults",
        ),
        Check(
            "groups carried",
            groups == set(canary.groups),
            "blocker",
            f"expected {sorted(canary.groups)}, got {sorted(groups)}",
            "attach the function as the PostAuthentication trigger and create the groups (step 2)",
        ),
    ]


def _answer_kind(answer: dict[str, Any]) -> str:
    """AuthenticationResult or the challenge name: never the tokens themselves."""
    return "AuthenticationResult" if "AuthenticationResult" in answer else str(answer.get("ChallengeName"))


def _forgot_password_checks(cognito: Any, pool_id: str, client: dict[str, Any], canary: Canary) -> list[Check]:
    try:
        name = canary.sign_in_name
        answer = cognito.forgot_password(ClientId=client["ClientId"], Username=name, **_secret_hash_param(name, client))
        outcome = "code sent" if answer.get("CodeDeliveryDetails") else "no delivery"
    except ClientError as exc:
        outcome = error_code(exc)
    user = _new_user(cognito, pool_id, canary.sign_in_name)
    return [
        Check(
            "forgot password migrates the user",
            outcome == "code sent" and user is not None,
            "blocker",
            f"answer: {outcome}",
            "the trigger must handle UserMigration_ForgotPassword",
        ),
        Check(
            "forgot-password user must reset",
            (user or {}).get("UserStatus") == "RESET_REQUIRED",
            "blocker",
            f"status: {(user or {}).get('UserStatus')}",
            "the trigger must return RESET_REQUIRED without a password",
        ),
    ]


def _reset_required_checks(
    cognito: Any, clients: Sequence[dict[str, Any]], canary: Canary, password: str
) -> list[Check]:
    """The RESET_REQUIRED canary signs in with its old password through each password client of the new pool:
    the answer must be the one the client's PreventUserExistenceErrors gives; the detail says what apps see."""
    return [_reset_required_check(cognito, client, canary, password) for client in clients]


def _reset_required_check(cognito: Any, client: dict[str, Any], canary: Canary, password: str) -> Check:
    setting = "ENABLED" if client.get("PreventUserExistenceErrors") == "ENABLED" else "LEGACY"
    answer = _sign_in(cognito, client, canary.sign_in_name, password)
    seen = answer if isinstance(answer, str) else _answer_kind(answer)
    expected = RESET_REQUIRED_ANSWERS[setting]
    return Check(
        f"RESET_REQUIRED sign-in through {client['ClientName']}",
        seen == expected,
        "warning",
        f"PreventUserExistenceErrors {setting}: answers {seen}"
        + (f"; {WHAT_APPS_DO[setting]}" if seen == expected else f", not {expected}"),
        "tell the app teams what this client answers users who must reset (MFA users under mfa_policy "
        "reset_required, FORCE_CHANGE_PASSWORD users, imported stragglers) and check the client's setting",
    )


def _secret_hash_param(username: str, client: dict[str, Any]) -> dict[str, str]:
    hashed = secret_hash(username, client)
    return {"SecretHash": hashed["SECRET_HASH"]} if hashed else {}


def _remove_canaries(cognito: Any, users: list[tuple[str, str]]) -> Check:
    """Deletes each (pool id, name) canary; one never created or never migrated is not an error."""
    left = []
    for pool_id, username in users:
        try:
            cognito.admin_delete_user(UserPoolId=pool_id, Username=username)
        except ClientError as exc:
            if error_code(exc) != "UserNotFoundException":
                left.append(f"{username} in {pool_id} ({error_code(exc)})")
    return Check(
        "canaries removed",
        not left,
        "blocker",
        "; ".join(left) or "from both pools",
        f"delete users named {CANARY_PREFIX}* by hand",
    )
