"""The stragglers: old-pool users who have not migrated, and the CSV that imports them in bulk.

The CSV is in Cognito's user import format: the header is the NEW pool's GetCSVHeader, every user's
attributes are mapped exactly as the migration trigger maps them (its own ``load_settings`` and
``build_user_attributes``, configured by the same ``deploy.function_environment``), and
``cognito:mfa_enabled`` is set. The file carries real addresses, so it is written apart from the audit
record (``outputs/<env>/imports/<run-id>/``, owner-only permissions) and never shown in a notebook;
what the notebooks show and save is the masked table.

Values go into the file as the old pool has them, since Cognito imports them verbatim, except where the
import's format differs from ListUsers' (developer guide, "Creating the user import .csv file"): birthdate
becomes mm/dd/yyyy (ListUsers gives OIDC's YYYY-MM-DD), updated_at epoch seconds (a number, or an ISO time in
some pools), and ``cognito:mfa_enabled`` follows the new pool's MfaConfiguration (all true when ON, all false
when OFF). A user whose row would exceed 16,000 characters is left out with the reason, and so is every user
when the new pool auto-verifies neither email nor phone_number: Cognito then starts no import job at all.
A value that starts like a spreadsheet formula (``=HYPERLINK(...)``) stays as it is, and the users who have one are
flagged in the table: the file must never be opened in a spreadsheet.
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pandas as pd

from . import deploy, identity, report, user_findings
from .import_format import MAX_ROW_CHARS, import_values
from .params import Params
from .records import Masker, private_dir, private_file
from .report import CANNOT, NOT_YET
from .trigger import migration_trigger

USERNAME, MFA_ENABLED = "cognito:username", "cognito:mfa_enabled"
# Cognito's limits per import job: 500,000 users and 100 MB per file.
MAX_USERS_PER_FILE = 500_000
MAX_BYTES_PER_FILE = 100 * 1000 * 1000
# Columns of the report's frames that are not user attributes.
NOT_ATTRIBUTES = frozenset(
    {"username", "status", "enabled", "created", "legacy_sms_mfa", "state", "reason", "cohort", "mfa", "groups"}
)
IMPORT = "import (arrives RESET_REQUIRED)"
CASE_VARIANT = "its sign-in name differs only by case from another old-pool user's: decide who keeps it"
MFA_REFUSED = f"{report.MFA_REFUSED}: decide by hand"
NO_AUTO_VERIFIED = (
    "cannot be imported: the new pool auto-verifies neither email nor phone_number, so Cognito starts no import "
    "job; set target_auto_verified_attributes (step 2)"
)
ROW_TOO_LONG = f"its import row would exceed {MAX_ROW_CHARS:,} characters: the import refuses it; trim its attributes"
MFA_ON_NO_PHONE = "the new pool's MFA is ON and it has no phone number: the import refuses it; decide by hand"
# A spreadsheet runs a cell starting with one of these as a formula (OWASP's CSV injection list).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A plain number is a number to a spreadsheet, whatever its sign: every E.164 phone number is one.
_PLAIN_NUMBER = re.compile(r"^[+-]?[0-9]+(\.[0-9]+)?$")
FORMULA_COLUMN = "starts_like_a_formula"
NEVER_IN_A_SPREADSHEET = (
    "never open the import file in a spreadsheet: it would run them as formulas (the values are kept as they "
    "are, Cognito imports them verbatim)"
)


class ImportFileError(RuntimeError):
    """The import file cannot be built as asked; the message names the fix."""


class SpreadsheetFormulaWarning(UserWarning):
    """The import file holds values a spreadsheet would run as formulas."""


@dataclass
class ImportFile:
    """The rows of the import CSV, the users left out and why, and the attributes the header lacked."""

    header: list[str]
    rows: list[list[str]] = field(repr=False)
    usernames: list[str] = field(repr=False)  # each row's old-pool username: how the records name it
    excluded: dict[str, str] = field(repr=False)
    # Each row's cognito:username: the old username, or in a pool signing in by email or phone number the
    # verified value the user signs in with (the pool then names the user itself). Empty: the usernames.
    sign_in_names: list[str] = field(default_factory=list, repr=False)
    dropped_attributes: Counter[str] = field(default_factory=Counter)
    formulas: dict[str, list[str]] = field(default_factory=dict, repr=False)  # username -> its columns
    # Why no import can run at all (the new pool auto-verifies no contact attribute); '' when one can.
    cannot_import: str = ""
    # Values the import's format cannot take (e.g. a birthdate without a year), left empty: attribute -> users
    blanked: Counter[str] = field(default_factory=Counter)
    # username -> the audit finding that explains why the user will not arrive by import: left out (see
    # EXCLUSION_FINDINGS), or a row the import will fail (an invalid phone number)
    explained: dict[str, str] = field(default_factory=dict, repr=False)
    paths: list[Path] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # users per written file

    @property
    def users(self) -> int:
        return len(self.rows)


def import_dir(run_dir: Path) -> Path:
    """``outputs/<env>/imports/<run-id>/``: beside the run folders, never inside one."""
    return run_dir.parent / "imports" / run_dir.name


def trigger_settings(
    params: Params, new_pool: Mapping[str, Any], old_pool: Mapping[str, Any] | None = None
) -> migration_trigger.Settings:
    """The trigger's own settings, from the environment step 3 gives the deployed function."""
    environment = deploy.function_environment(params, dict(new_pool), dict(old_pool) if old_pool else None)
    return migration_trigger.load_settings(environment)


def map_attributes(
    old_attributes: list[dict[str, str]], username: str, settings: migration_trigger.Settings
) -> dict[str, str]:
    """A user's attributes as the trigger returns them for the new pool: its attribute mapping, then its
    response's additions (the pending-groups marker, so the group-copy trigger copies them at first sign-in)."""
    attributes = migration_trigger.build_user_attributes(
        old_attributes,
        settings.allowed_attributes,
        settings.attribute_defaults,
        settings.legacy_sub_attribute,
        settings.attribute_map,
        username,
    )
    response = migration_trigger.migration_response(attributes, None, "RESET_REQUIRED", settings)
    return dict(response["userAttributes"])


def prepare(
    cognito: Any,
    params: Params,
    new_pool: Mapping[str, Any],
    old_pool: Mapping[str, Any] | None,
    classified: pd.DataFrame,
) -> ImportFile:
    """The import rows for the new pool: its GetCSVHeader, the trigger's settings, the 'not yet' users."""
    header = cognito.get_csv_header(UserPoolId=new_pool["Id"])["CSVHeader"]
    settings = trigger_settings(params, new_pool, old_pool)
    auto_verified = new_pool.get("AutoVerifiedAttributes") or []
    return build(
        classified,
        header,
        settings,
        auto_verified,
        params.mfa_policy,
        params.target_case_sensitive,
        identity.sign_in_attributes(new_pool),
        new_pool.get("MfaConfiguration") or "OFF",
        pool_mfa=(old_pool or {}).get("MfaConfiguration"),
    )


def old_attributes(row: Mapping[str, Any]) -> list[dict[str, str]]:
    """A report row's attributes back in ListUsers form (the columns that are attributes, when set)."""
    return [
        {"Name": name, "Value": str(value)}
        for name, value in row.items()
        if name not in NOT_ATTRIBUTES and value is not None and not (isinstance(value, float) and pd.isna(value))
    ]


def build(
    classified: pd.DataFrame,
    header: list[str],
    settings: migration_trigger.Settings,
    auto_verified: Iterable[str],
    mfa_policy: str,
    case_sensitive: bool = False,
    sign_in: Sequence[str] = (),
    mfa_configuration: str = "OPTIONAL",
    *,
    pool_mfa: str | None = None,
) -> ImportFile:
    """The import rows for every user who is 'not yet' migrated. Left out, with the reason: users the import
    would refuse (Cognito fails a row without a verified attribute the pool auto-verifies), users the trigger
    refuses under mfa_policy refuse (``report.mfa_refused``, by the old pool's MfaConfiguration ``pool_mfa``:
    importing them would let in whom the policy keeps out), and, in a case-insensitive pool, users whose
    username differs only by case from another old-pool user: the import would give the name to whichever
    row comes first, which is a decision for a person. In a pool that signs in by email or phone number
    (``sign_in``), each row's cognito:username is that verified value. ``mfa_configuration`` is the new
    pool's: cognito:mfa_enabled is true for all when ON, false for all when OFF, and by ``mfa_policy`` when
    OPTIONAL. A pool that auto-verifies neither email nor phone_number takes no import: every 'not yet' user
    is left out with that reason (``cannot_import``)."""
    missing = [c for c in (USERNAME, MFA_ENABLED) if c not in header]
    if missing:
        raise ImportFileError(f"the CSV header lacks {missing}: pass the new pool's GetCSVHeader unchanged")
    auto = [a for a in auto_verified if a in ("email", "phone_number")]
    result = ImportFile(header=list(header), rows=[], usernames=[], excluded={})
    if not auto:
        return _cannot_import(result, classified)
    columns = set(header)
    names, _ = report.sign_in_names(classified, classified.iloc[:0], sign_in)
    shared = report.normalise(names, case_sensitive).duplicated(keep=False)
    waiting = classified["state"] == NOT_YET
    rows = cast(list[dict[str, Any]], classified.loc[waiting].to_dict("records"))  # its column labels are str
    for row, name, variant, mfa_refused in zip(
        rows,
        names[waiting],
        shared[waiting],
        report.mfa_refused(classified.loc[waiting], mfa_policy, pool_mfa),
        strict=True,
    ):
        attributes = map_attributes(old_attributes(row), row["username"], settings)
        refusal = CASE_VARIANT if variant else (MFA_REFUSED if mfa_refused else _refusal(attributes, auto))
        mfa = _mfa_column(row, attributes, mfa_policy, mfa_configuration)
        refusal = refusal or (MFA_ON_NO_PHONE if mfa == "true" and not attributes.get("phone_number") else "")
        values = {**import_values(attributes, result.blanked), USERNAME: name, MFA_ENABLED: mfa}
        line_values = [values.get(column, "") for column in header]
        refusal = refusal or (ROW_TOO_LONG if len(line(line_values)) - 1 > MAX_ROW_CHARS else "")
        if refusal:
            result.excluded[row["username"]] = refusal
            result.explained[row["username"]] = exclusion_finding(refusal)
            continue
        if attributes.get("phone_number") and not user_findings.E164.match(attributes["phone_number"]):
            result.explained[row["username"]] = "invalid_phone_numbers"  # Cognito fails the row
        result.dropped_attributes.update(name for name in attributes if name not in columns)
        result.rows.append(line_values)
        result.usernames.append(row["username"])
        result.sign_in_names.append(name)
        if formulas := formula_columns(dict(zip(header, result.rows[-1], strict=True))):
            result.formulas[row["username"]] = formulas
    return result


# Why a 'not yet' user is left out of the file (the start of the reason), as the audit's finding id names it.
EXCLUSION_FINDINGS = {
    CASE_VARIANT: "username_case_collisions",
    "no verified": "no_verified_contact",
    MFA_REFUSED: "mfa_refused_users",
    MFA_ON_NO_PHONE: "mfa_users",
    NO_AUTO_VERIFIED: "no_auto_verified_attribute",
}


def _cannot_import(result: ImportFile, classified: pd.DataFrame) -> ImportFile:
    """No job can run: every 'not yet' user stays out of the (empty) file, with the reason."""
    result.cannot_import = NO_AUTO_VERIFIED
    for username in classified.loc[classified["state"] == NOT_YET, "username"]:
        result.excluded[username] = NO_AUTO_VERIFIED
        result.explained[username] = exclusion_finding(NO_AUTO_VERIFIED)
    return result


def exclusion_finding(reason: str) -> str:
    return next((finding for start, finding in EXCLUSION_FINDINGS.items() if reason.startswith(start)), "")


def formula_columns(values: Mapping[str, str]) -> list[str]:
    """The columns whose value a spreadsheet would run as a formula (a plain number, e.g. an E.164 phone
    number, starts with '+' or '-' and is only a number)."""
    return [
        column
        for column, value in values.items()
        if value.startswith(FORMULA_PREFIXES) and not _PLAIN_NUMBER.match(value)
    ]


def _refusal(attributes: Mapping[str, str], auto: list[str]) -> str:
    if not any(migration_trigger.is_verified(attributes, a) for a in auto):
        return f"no verified {' or '.join(auto)}: the import refuses it; support must set a password"
    return ""


def _mfa_column(row: Mapping[str, Any], attributes: Mapping[str, str], mfa_policy: str, pool_mfa: str) -> str:
    """cognito:mfa_enabled as the new pool's MFA demands it: all true when ON, all false when OFF."""
    if pool_mfa in ("ON", "OFF"):
        return "true" if pool_mfa == "ON" else "false"
    return _mfa_enabled(row, attributes, mfa_policy)


def _mfa_enabled(row: Mapping[str, Any], attributes: Mapping[str, str], mfa_policy: str) -> str:
    """As the trigger's 'sms' policy: SMS MFA stays on for an SMS MFA user with a verified phone number.
    ListUsers shows only the legacy SMS setting (MFAOptions); other factors are invisible here."""
    keep = (
        mfa_policy == "sms"
        and bool(row.get("legacy_sms_mfa"))
        and migration_trigger.is_verified(attributes, "phone_number")
    )
    return "true" if keep else "false"


def line(values: Iterable[str]) -> str:
    """One CSV line as Cognito reads it: no quotation marks; a comma (or backslash, or line break) inside a
    value is escaped with a backslash. Python's csv reader with ``escapechar="\\"`` reads it back."""
    return ",".join(value.translate(_ESCAPES) for value in values) + "\n"


_ESCAPES = str.maketrans({"\\": "\\\\", ",": "\\,", "\n": "\\\n", "\r": "\\\r"})


def encode(header: list[str], rows: Iterable[list[str]]) -> bytes:
    """The whole file: the header line, then one line per user."""
    return "".join([line(header), *(line(row) for row in rows)]).encode("utf-8")


def chunks(import_file: ImportFile) -> list[tuple[int, int]]:
    """(start, end) row ranges that keep each file within Cognito's per-job limits."""
    header_bytes = len(line(import_file.header).encode())
    bounds, start, size = [], 0, header_bytes
    for i, row in enumerate(import_file.rows):
        row_bytes = len(line(row).encode())
        if i > start and (i - start >= MAX_USERS_PER_FILE or size + row_bytes > MAX_BYTES_PER_FILE):
            bounds.append((start, i))
            start, size = i, header_bytes
        size += row_bytes
    if start < len(import_file.rows):
        bounds.append((start, len(import_file.rows)))
    return bounds


def write(import_file: ImportFile, folder: Path) -> list[Path]:
    """Writes users-001.csv, users-002.csv ... readable by the owner only; returns the paths."""
    private_dir(folder)
    for stale in folder.glob("users-*.csv"):
        stale.unlink()
    import_file.paths, import_file.lines = [], []
    for number, (start, end) in enumerate(chunks(import_file), start=1):
        path = folder / f"users-{number:03d}.csv"
        with private_file(path) as handle:
            handle.write(encode(import_file.header, import_file.rows[start:end]))
        import_file.paths.append(path)
        import_file.lines.append(end - start)
    if import_file.formulas:
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # every time the file is written, not once per kernel
            warnings.warn(formula_warning(import_file), SpreadsheetFormulaWarning, stacklevel=2)
    return import_file.paths


def formula_warning(import_file: ImportFile) -> str:
    """Counts only: the users are named (masked) in the table's column."""
    return (
        f"{len(import_file.formulas)} user(s) in the import file have a value starting with =, +, - or @ "
        f"(column {FORMULA_COLUMN} of the stragglers table): {NEVER_IN_A_SPREADSHEET}"
    )


def summary(import_file: ImportFile) -> dict[str, Any]:
    """What the record keeps of the import file: counts and file names, no personal data."""
    return {
        "users": import_file.users,
        "excluded": len(import_file.excluded),
        "excluded_by_reason": dict(Counter(import_file.excluded.values())),
        "files": [p.name for p in import_file.paths],
        "folder": str(import_file.paths[0].parent) if import_file.paths else None,
        "dropped_attributes": dict(import_file.dropped_attributes),
        "formula_users": len(import_file.formulas),
        "cannot_import": import_file.cannot_import or None,
        "blanked_values": dict(import_file.blanked),
    }


def summary_table(import_file: ImportFile) -> pd.DataFrame:
    """The import file as the notebook shows it: counts, files and folder; never a row of it."""
    data = summary(import_file)
    rows = [
        ("import", import_file.cannot_import or "can run (step 6)"),
        ("users in the import file", data["users"]),
        ("'not yet' users left out", data["excluded"]),
        *((f"  left out: {reason}", n) for reason, n in data["excluded_by_reason"].items()),
        ("files (500,000 users / 100 MB each at most)", ", ".join(data["files"]) or "none"),
        ("folder (restricted: real addresses; delete after the import)", data["folder"] or "none"),
        ("attributes the new pool's header lacks", ", ".join(data["dropped_attributes"]) or "none"),
        (
            "values the import's format cannot take, left empty (birthdate mm/dd/yyyy, updated_at epoch seconds)",
            ", ".join(f"{name}: {n}" for name, n in data["blanked_values"].items()) or "none",
        ),
        (f"users with a value starting with =, +, - or @: {NEVER_IN_A_SPREADSHEET}", data["formula_users"]),
    ]
    return pd.DataFrame(rows, columns=["import file", "value"]).astype({"value": str})


def table(classified: pd.DataFrame, import_file: ImportFile | None, mask: Masker) -> pd.DataFrame:
    """Every user who has not migrated, with what happens to them: imported, or why not; and, for users in
    the import file, the columns whose value starts like a spreadsheet formula. Masked."""
    left = classified.loc[classified["state"].isin([NOT_YET, CANNOT])]
    columns = [c for c in ("username", "status", "enabled", "groups", "state", "reason") if c in left.columns]
    frame = left[columns].assign(state=left["state"].astype(str), reason=left["reason"].astype(str))
    excluded = import_file.excluded if import_file is not None else {}
    formulas = import_file.formulas if import_file is not None else {}
    frame["action"] = [
        f"decide: {reason}" if state == CANNOT else (f"not imported: {excluded[name]}" if name in excluded else IMPORT)
        for name, state, reason in zip(frame["username"], frame["state"], frame["reason"], strict=True)
    ]
    frame[FORMULA_COLUMN] = [", ".join(formulas.get(name, [])) for name in frame["username"]]
    return mask.frame(frame.reset_index(drop=True))
