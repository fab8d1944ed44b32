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

import contextlib
import re
import warnings
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import deploy, identity, memory, report, user_findings
from .comparison import PoolComparison
from .import_format import MAX_ROW_CHARS, import_values
from .params import Params
from .records import Masker, private_dir, private_file
from .report import CANNOT, NOT_YET
from .trigger import migration_trigger

USERNAME, MFA_ENABLED = "cognito:username", "cognito:mfa_enabled"
# Each user of a streamed import: username, cognito:username (``name``), file number (0: left out), why left
# out, the audit finding that explains it, the columns starting like a formula.
MANIFEST_COLUMNS = ("username", "name", "file", "excluded", "explained", "formulas")
MANIFEST = "users.parquet"
USERS, FORMULAS = "\x00users", "\x00formulas"  # ImportFile.tally's counts that are not reasons
# Cognito's limits per import job: 500,000 users and 100 MB per file.
MAX_USERS_PER_FILE = 500_000
MAX_BYTES_PER_FILE = 100 * 1000 * 1000
# Columns of the report's frames that are not user attributes.
NOT_ATTRIBUTES = frozenset(
    {"username", "status", "enabled", "created", "legacy_sms_mfa", "state", "reason", "cohort", "mfa", "groups"}
)
IMPORT = "import (arrives RESET_REQUIRED)"
SLICE_ROWS = 20_000  # users made into import rows at a time, written before the next (``stream``)
SAMPLE_ROWS = 100_000  # stragglers a notebook's table holds of a comparison kept on disk (its counts are whole)
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
    # Written part by part (``stream``: a pool too large for memory), the file keeps no rows and no per-user
    # lists: each user's file, name and reason are in ``manifest`` (Parquet, beside the CSV files), and the
    # counts in ``tally`` (USERS, FORMULAS, and the users left out per reason).
    manifest: Path | None = None
    tally: Counter[str] = field(default_factory=Counter)

    @property
    def users(self) -> int:
        return self.tally[USERS] if self.manifest else len(self.rows)

    def exclusions(self) -> Counter[str]:
        """Users left out, per reason."""
        if self.manifest is None:
            return Counter(self.excluded.values())
        return Counter({k: v for k, v in self.tally.items() if k not in (USERS, FORMULAS)})

    def formula_users(self) -> int:
        return self.tally[FORMULAS] if self.manifest else len(self.formulas)

    def people(self, columns: Sequence[str] = MANIFEST_COLUMNS) -> Iterator[pd.DataFrame]:
        """Every user of the files (``file`` their number from 1, in line order) and every user left out
        (``file`` 0, with the reason ``excluded``), in frames of MANIFEST_COLUMNS."""
        if self.manifest is not None:
            for batch in pq.ParquetFile(self.manifest).iter_batches(columns=list(columns)):
                yield batch.to_pandas()
            return
        names, left_out = self.usernames, list(self.excluded)
        files = np.repeat(np.arange(1, len(self.lines) + 1), self.lines) if self.lines else np.zeros(len(names))
        frame = pd.DataFrame(
            {
                "username": [*names, *left_out],
                "name": [*(self.sign_in_names or names), *left_out],
                "file": np.concatenate([files, np.zeros(len(left_out))]).astype("int32"),
                "excluded": [*([""] * len(names)), *self.excluded.values()],
                "explained": [self.explained.get(u, "") for u in [*names, *left_out]],
                "formulas": [", ".join(self.formulas.get(u, [])) for u in [*names, *left_out]],
            },
            columns=list(MANIFEST_COLUMNS),
        )
        yield frame[list(columns)]

    def file_usernames(self, number: int) -> list[str]:
        """The users of file ``number`` (from 1) in line order, as the job's log numbers them."""
        if self.manifest is None:
            start = sum(self.lines[: number - 1])
            return self.usernames[start : start + self.lines[number - 1]]
        named = pq.read_table(self.manifest, columns=["username"], filters=[("file", "=", number)])
        return [str(name) for name in named["username"].to_pylist()]

    def decisions(self, usernames: Iterable[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
        """For these users: why each left out is (``excluded``), and their columns starting like a formula."""
        if self.manifest is None:
            return self.excluded, self.formulas
        wanted = pa.array(list(usernames), pa.string())
        found = pq.read_table(self.manifest, columns=["username", "excluded", "formulas"])
        found = found.filter(pc.is_in(found["username"], value_set=wanted)).to_pandas()
        left = found[found["excluded"] != ""]
        flagged = found[found["formulas"] != ""]
        return (
            dict(zip(left["username"], left["excluded"], strict=True)),
            {u: f.split(", ") for u, f in zip(flagged["username"], flagged["formulas"], strict=True)},
        )


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
    classified: pd.DataFrame | PoolComparison,
    folder: Path | None = None,
) -> ImportFile:
    """The import rows for the new pool: its GetCSVHeader, the trigger's settings, the 'not yet' users;
    written to ``folder`` when given (``import_dir``). A comparison kept on disk (too large for memory) is
    built and written bucket by bucket (``stream``): it needs the folder."""
    header = cognito.get_csv_header(UserPoolId=new_pool["Id"])["CSVHeader"]
    settings = trigger_settings(params, new_pool, old_pool)
    rules = (
        header,
        settings,
        new_pool.get("AutoVerifiedAttributes") or [],
        params.mfa_policy,
        params.target_case_sensitive,
        identity.sign_in_attributes(new_pool),
        new_pool.get("MfaConfiguration") or "OFF",
    )
    pool_mfa = (old_pool or {}).get("MfaConfiguration")
    if isinstance(classified, PoolComparison) and classified.classified is None:
        if folder is None:
            raise ImportFileError("a comparison kept on disk is written as it is built: pass the import folder")
        return stream(classified.parts(), folder, *rules, pool_mfa=pool_mfa)
    frame = classified if isinstance(classified, pd.DataFrame) else classified.frame()
    built = build(frame, *rules, pool_mfa=pool_mfa)
    if folder is not None:
        write(built, folder)
    return built


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
    variants: pd.Series | None = None,
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
    is left out with that reason (``cannot_import``). ``variants`` (``case_variants``, aligned with
    ``classified``) when ``classified`` is a slice of the users whose sign-in names are compared."""
    missing = [c for c in (USERNAME, MFA_ENABLED) if c not in header]
    if missing:
        raise ImportFileError(f"the CSV header lacks {missing}: pass the new pool's GetCSVHeader unchanged")
    auto = [a for a in auto_verified if a in ("email", "phone_number")]
    result = ImportFile(header=list(header), rows=[], usernames=[], excluded={})
    if not auto:
        return _cannot_import(result, classified)
    columns = set(header)
    names = sign_in_names(classified, sign_in)
    shared = case_variants(names, case_sensitive) if variants is None else variants
    waiting = classified["state"] == NOT_YET
    selected = classified.loc[waiting]
    for row, name, variant, mfa_refused in zip(
        _records(selected),  # a slice of rows at a time: a dict per user costs ten times its columns
        names[waiting],
        shared[waiting],
        report.mfa_refused(selected, mfa_policy, pool_mfa),
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


def sign_in_names(classified: pd.DataFrame, sign_in: Sequence[str]) -> pd.Series:
    """Each old-pool user's name in the new pool's sign-in model (``report.sign_in_names``)."""
    return report.sign_in_names(classified, classified.iloc[:0], sign_in)[0]


def case_variants(names: pd.Series, case_sensitive: bool) -> pd.Series:
    """Whether each user's sign-in name (``sign_in_names``) is another user's too, as the new pool folds names
    (``build`` leaves such 'not yet' users out): a question about all of the users at once."""
    return report.normalise(names, case_sensitive).duplicated(keep=False)


def _records(frame: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """The frame's rows as dicts (its column labels are str), made SLICE_ROWS at a time."""
    for start in range(0, len(frame), SLICE_ROWS):
        yield from cast(list[dict[str, Any]], frame.iloc[start : start + SLICE_ROWS].to_dict("records"))


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
    """A whole file: the header line, then one line per user."""
    return "".join([line(header), *(line(row) for row in rows)]).encode("utf-8")


class _Files:
    """users-001.csv, users-002.csv ... (owner-only) written as rows come: the header first in each, and a new
    file wherever the next row would pass Cognito's per-job limits (users, bytes)."""

    def __init__(self, folder: Path, header: list[str]) -> None:
        self.folder, self.header = private_dir(folder), line(header).encode("utf-8")
        for stale in folder.glob("users-*.csv"):
            stale.unlink()
        self.paths: list[Path] = []
        self.lines: list[int] = []
        self.size = 0
        self.handle: BinaryIO | None = None
        self.opened = contextlib.ExitStack()

    def add(self, rows: Iterable[list[str]]) -> list[int]:
        """Writes the rows; each one's file number (from 1)."""
        numbers = []
        for row in rows:
            data = line(row).encode("utf-8")
            if self.handle is None or (
                self.lines[-1] >= MAX_USERS_PER_FILE or self.size + len(data) > MAX_BYTES_PER_FILE
            ):
                self._next()
            assert self.handle is not None
            self.handle.write(data)
            self.lines[-1] += 1
            self.size += len(data)
            numbers.append(len(self.paths))
        return numbers

    def _next(self) -> None:
        self.opened.close()
        self.paths.append(self.folder / f"users-{len(self.paths) + 1:03d}.csv")
        self.lines.append(0)
        self.handle = self.opened.enter_context(private_file(self.paths[-1]))
        self.handle.write(self.header)
        self.size = len(self.header)

    def close(self) -> tuple[list[Path], list[int]]:
        self.opened.close()
        self.handle = None
        return self.paths, self.lines


def write(import_file: ImportFile, folder: Path) -> list[Path]:
    """Writes users-001.csv, users-002.csv ... readable by the owner only; returns the paths."""
    files = _Files(folder, import_file.header)
    try:
        files.add(import_file.rows)
    finally:
        import_file.paths, import_file.lines = files.close()
    _warn_formulas(import_file)
    return import_file.paths


def stream(
    parts: Iterable[pd.DataFrame],
    folder: Path,
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
    """``build`` then ``write``, for users too many for memory: each of ``parts`` (a comparison's buckets:
    users who share a sign-in name are in the same one) has its case variants found whole, then is built a
    slice of SLICE_ROWS users at a time, each slice written at once; who is in which file, and who is left out
    and why, goes to the manifest. Memory holds one part's users and one slice's rows."""
    auto = list(auto_verified)
    result = ImportFile(header=list(header), rows=[], usernames=[], excluded={}, manifest=folder / MANIFEST)
    files = _Files(folder, result.header)
    try:
        with private_file(folder / MANIFEST) as handle, pq.ParquetWriter(handle, _MANIFEST_SCHEMA) as manifest:
            for part, variants in _slices(parts, case_sensitive, sign_in):
                built = build(
                    part,
                    header,
                    settings,
                    auto,
                    mfa_policy,
                    case_sensitive,
                    sign_in,
                    mfa_configuration,
                    pool_mfa=pool_mfa,
                    variants=variants,
                )
                numbers = files.add(built.rows)
                people = next(built.people())  # the imported users first, in line order, then those left out
                people["file"] = np.concatenate([numbers, np.zeros(len(people) - len(numbers))]).astype("int32")
                manifest.write_table(pa.Table.from_pandas(people, schema=_MANIFEST_SCHEMA, preserve_index=False))
                result.cannot_import = built.cannot_import or result.cannot_import
                result.dropped_attributes.update(built.dropped_attributes)
                result.blanked.update(built.blanked)
                result.tally.update({USERS: built.users, FORMULAS: len(built.formulas), **built.exclusions()})
    finally:
        result.paths, result.lines = files.close()
    memory.give_back()
    _warn_formulas(result)
    return result


def _slices(
    parts: Iterable[pd.DataFrame], case_sensitive: bool, sign_in: Sequence[str]
) -> Iterator[tuple[pd.DataFrame, pd.Series]]:
    """Each part in slices of SLICE_ROWS users, with their case variants among the whole part's users."""
    for part in parts:
        variants = case_variants(sign_in_names(part, sign_in), case_sensitive)
        for start in range(0, max(len(part), 1), SLICE_ROWS):  # an empty part still gives its (empty) slice
            yield part.iloc[start : start + SLICE_ROWS], variants.iloc[start : start + SLICE_ROWS]


_MANIFEST_SCHEMA = pa.schema([(name, pa.int32() if name == "file" else pa.string()) for name in MANIFEST_COLUMNS])


def _warn_formulas(import_file: ImportFile) -> None:
    if import_file.formula_users():
        with warnings.catch_warnings():
            warnings.simplefilter("always")  # every time the file is written, not once per kernel
            warnings.warn(formula_warning(import_file), SpreadsheetFormulaWarning, stacklevel=3)


def formula_warning(import_file: ImportFile) -> str:
    """Counts only: the users are named (masked) in the table's column."""
    return (
        f"{import_file.formula_users()} user(s) in the import file have a value starting with =, +, - or @ "
        f"(column {FORMULA_COLUMN} of the stragglers table): {NEVER_IN_A_SPREADSHEET}"
    )


def summary(import_file: ImportFile) -> dict[str, Any]:
    """What the record keeps of the import file: counts and file names, no personal data."""
    return {
        "users": import_file.users,
        "excluded": sum(import_file.exclusions().values()),
        "excluded_by_reason": dict(import_file.exclusions()),
        "files": [p.name for p in import_file.paths],
        "folder": str(import_file.paths[0].parent) if import_file.paths else None,
        "dropped_attributes": dict(import_file.dropped_attributes),
        "formula_users": import_file.formula_users(),
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


def table(
    classified: pd.DataFrame | PoolComparison, import_file: ImportFile | None, mask: Masker, rows: int | None = None
) -> pd.DataFrame:
    """Every user who has not migrated (the first ``rows`` of them; of a comparison kept on disk, the first
    SAMPLE_ROWS at most), with what happens to them: imported, or why not; and, for users in the import file,
    the columns whose value starts like a spreadsheet formula. Masked."""
    if isinstance(classified, PoolComparison):
        limit = rows or (None if classified.classified is not None else SAMPLE_ROWS)
        classified = classified.frame() if limit is None else classified.sample(limit, [NOT_YET, CANNOT])
    left = classified.loc[classified["state"].isin([NOT_YET, CANNOT])].iloc[:rows]
    columns = [c for c in ("username", "status", "enabled", "groups", "state", "reason") if c in left.columns]
    frame = left[columns].assign(state=left["state"].astype(str), reason=left["reason"].astype(str))
    excluded, formulas = import_file.decisions(frame["username"]) if import_file is not None else ({}, {})
    frame["action"] = [
        decide(reason) if state == CANNOT else (not_imported(excluded[name]) if name in excluded else IMPORT)
        for name, state, reason in zip(frame["username"], frame["state"], frame["reason"], strict=True)
    ]
    frame[FORMULA_COLUMN] = [", ".join(formulas.get(name, [])) for name in frame["username"]]
    return mask.frame(frame.reset_index(drop=True))


def decide(reason: str) -> str:
    return f"decide: {reason}"


def not_imported(reason: str) -> str:
    return f"not imported: {reason}"


def actions(compared: PoolComparison, import_file: ImportFile, shown: pd.DataFrame) -> pd.DataFrame:
    """Users per action of ``table``: counted in the table ``shown`` when it holds every user, else from the
    comparison's and the import file's counts (whole whatever the pool's size)."""
    if compared.classified is not None and len(shown) == compared.count(NOT_YET, CANNOT):
        return shown["action"].value_counts().rename("users").to_frame()
    counts = {
        **{decide(r): int(n) for r, n in zip(compared.by_reason["reason"], compared.by_reason["users"], strict=True)},
        **{not_imported(r): n for r, n in import_file.exclusions().items()},
        IMPORT: import_file.users,
    }
    users = pd.Series(counts, name="users").rename_axis("action")
    return users[users > 0].sort_values(ascending=False, kind="stable").to_frame()
