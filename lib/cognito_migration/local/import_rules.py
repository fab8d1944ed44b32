"""The rules Cognito's CSV user import applies to a file and its rows, for the local AWS's import jobs.

Source: the developer guide, "Creating the user import .csv file" (awsdocs/amazon-cognito-developer-guide,
doc_source/cognito-user-pools-using-import-tool-csv-header.md). Pure functions: ``import_jobs`` runs a job,
these say what fails it (``CognitoError``, the job fails) or fails one row (the text of its FAILED log line).

- The pool must have at least one auto-verified attribute (email or phone_number), or the job does not start.
- Each user sets (one of) the auto-verified attribute(s) verified to true; email / phone_number when their
  ``_verified`` is true.
- ``cognito:mfa_enabled``: true for every user when the pool's MFA is ON, false for every user when it is OFF,
  true or false (never empty) when OPTIONAL.
- A row is at most 16,000 characters; a file holds at most 500,000 users (and 100 MB: the upload refuses more).
- birthdate is mm/dd/yyyy; updated_at is epoch time in seconds.
- Leading and trailing white space of a value is trimmed; the file is UTF-8 without a byte order mark.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Mapping, Sequence

from moto.cognitoidp.models import CognitoIdpUserPool

from .cognito_triggers import CognitoError

USERNAME, MFA_ENABLED = "cognito:username", "cognito:mfa_enabled"
MAX_ROW_CHARS = 16_000
MAX_USERS_PER_FILE = 500_000
NO_AUTO_VERIFIED = (
    "The User Record does not set any of the auto verified attributes to true. (Example: email_verified to true)."
)
POOL_WITHOUT_AUTO_VERIFIED = (
    "The user pool has no auto-verified attributes: set AutoVerifiedAttributes (email or phone_number) on the pool "
    "before importing users."
)
# What the import accepts, as modelled here: a rule of its own, neither E.164 (user_findings.E164) nor what the
# trigger reads as a phone sign-in (migration_trigger.PHONE).
E164 = re.compile(r"^\+[0-9]{4,15}$")
BIRTHDATE = re.compile(r"^(0[1-9]|1[0-2])/(0[1-9]|[12][0-9]|3[01])/[0-9]{4}$")
EPOCH_SECONDS = re.compile(r"^[0-9]{1,11}$")
# What cognito:mfa_enabled must be for each MfaConfiguration; OPTIONAL takes either, never empty.
MFA_VALUES = {"ON": ("true",), "OFF": ("false",), "OPTIONAL": ("true", "false")}


def auto_verified(pool: CognitoIdpUserPool) -> list[str]:
    return [a for a in pool.extended_config.get("AutoVerifiedAttributes") or [] if a in ("email", "phone_number")]


def require_auto_verified(pool: CognitoIdpUserPool) -> list[str]:
    """The pool's auto-verified contact attributes; without one the job does not start."""
    found = auto_verified(pool)
    if not found:
        raise CognitoError("InvalidParameterException", POOL_WITHOUT_AUTO_VERIFIED)
    return found


def parse(body: bytes, expected: list[str]) -> tuple[list[str], list[list[str]]]:
    """The file's header and rows (as written: ``import_row`` trims them). A file Cognito cannot parse, with a
    byte order mark, more users than a job takes, or a header other than the pool's, fails the job."""
    if body.startswith(codecs.BOM_UTF8):
        raise CognitoError("InvalidParameterException", "The .csv file must be UTF-8 without a byte order mark (BOM).")
    try:
        text = body.decode("utf-8")
        rows = list(csv.reader(io.StringIO(text), quoting=csv.QUOTE_NONE, escapechar="\\"))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise CognitoError("InvalidParameterException", f"Unable to parse the .csv file: {exc}") from None
    if not rows or sorted(rows[0]) != sorted(expected):
        got = set(rows[0]) if rows else set()
        raise CognitoError(
            "InvalidParameterException",
            f"The .csv header does not match GetCSVHeader: missing {sorted(set(expected) - got)}, "
            f"unknown {sorted(got - set(expected))}",
        )
    records = [row for row in rows[1:] if row]
    if len(records) > MAX_USERS_PER_FILE:
        raise CognitoError(
            "InvalidParameterException",
            f"The .csv file has {len(records):,} users: at most {MAX_USERS_PER_FILE:,} per file.",
        )
    return rows[0], records


def row_chars(values: Sequence[str]) -> int:
    """A row's length as written in the file: its values, their escapes and the commas between them."""
    return sum(len(v) + v.count(",") + v.count("\\") + v.count("\n") for v in values) + max(len(values) - 1, 0)


def row_problem(
    pool: CognitoIdpUserPool, username: str, mfa: str, attributes: Mapping[str, str], auto: list[str]
) -> str:
    """Why Cognito fails the row, or ''."""
    if not username:
        return "cognito:username is required."
    allowed = MFA_VALUES.get(pool.mfa_config or "OFF", ("true", "false"))
    if mfa not in allowed:
        return (
            f"cognito:mfa_enabled must be {' or '.join(allowed)} when the user pool's MFA configuration is "
            f"{pool.mfa_config or 'OFF'}."
        )
    if not any(attributes.get(f"{a}_verified", "").lower() == "true" for a in auto):
        return NO_AUTO_VERIFIED
    return _contact_problem(attributes, mfa) or _format_problem(attributes) or _required_problem(pool, attributes)


def _contact_problem(attributes: Mapping[str, str], mfa: str) -> str:
    for contact in ("email", "phone_number"):
        if attributes.get(f"{contact}_verified", "").lower() == "true" and not attributes.get(contact):
            return f"The User Record sets {contact}_verified to true without a {contact}."
    if "phone_number" in attributes and not E164.match(attributes["phone_number"]):
        return "The user data doesn't match the schema: Invalid phone number format."
    if mfa == "true" and not attributes.get("phone_number"):
        return "cognito:mfa_enabled is true but the user has no phone_number for SMS MFA."
    return ""


def _format_problem(attributes: Mapping[str, str]) -> str:
    if "birthdate" in attributes and not BIRTHDATE.match(attributes["birthdate"]):
        return "The user data doesn't match the schema: birthdate must be in the format mm/dd/yyyy."
    if "updated_at" in attributes and not EPOCH_SECONDS.match(attributes["updated_at"]):
        return "The user data doesn't match the schema: updated_at must be epoch time in seconds."
    return ""


def _required_problem(pool: CognitoIdpUserPool, attributes: Mapping[str, str]) -> str:
    required = [n for n, a in pool.schema_attributes.items() if a.required and n != "sub" and not attributes.get(n)]
    if required:
        return f"The user data doesn't match the schema: {', '.join(sorted(required))} is required."
    return ""
