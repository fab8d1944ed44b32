"""The runbook's parameters: one schema, loaded from YAML or a notebook's namespace, checked before any write.

Every error names the key and the fix. Passwords are never parameters: a key that looks like one is refused.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from . import project, records
from .findings import FINDING_IDS
from .quotas import POOL_LIMITED, QUOTAS, ceiling
from .trigger.migration_trigger import EXTERNAL_ID, MFA_POLICIES, ROLE_ARN, ConfigurationError, parse_attribute_map

POOL_ID = re.compile(r"^[\w-]+_[0-9a-zA-Z]+$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
ACCOUNT_ID = re.compile(r"^\d{12}$")
NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
SECRET_LOOKING = re.compile(r"(password|secret|passwd|pwd)", re.IGNORECASE)
# The new pool's declared settings (see _check_new_pool); names mirror the Cognito API's.
USERNAME_ATTRIBUTES = ("email", "phone_number")
ALIAS_ATTRIBUTES = ("email", "phone_number", "preferred_username")
CUSTOM_ATTRIBUTE = re.compile(r"^[A-Za-z0-9_]{1,20}$")
CUSTOM_TYPES = ("String", "Number", "Boolean", "DateTime")
MFA_CONFIGURATIONS = ("OFF", "ON", "OPTIONAL")
AUTO_VERIFIED_ATTRIBUTES = ("email", "phone_number")
PASSWORD_POLICY_RANGES = {
    "MinimumLength": (6, 99),
    "PasswordHistorySize": (0, 24),
    "TemporaryPasswordValidityDays": (0, 365),
}
PASSWORD_POLICY_FLAGS = ("RequireUppercase", "RequireLowercase", "RequireNumbers", "RequireSymbols")
EMAIL_CONFIGURATION_KEYS = ("SourceArn", "ReplyToEmailAddress", "EmailSendingAccount", "From", "ConfigurationSet")
SMS_CONFIGURATION_KEYS = ("SnsCallerArn", "ExternalId", "SnsRegion")
DELETION_PROTECTION = ("ACTIVE", "INACTIVE")
LAMBDA_TRIGGERS = (
    "PreSignUp CustomMessage PostConfirmation PreAuthentication PostAuthentication DefineAuthChallenge "
    "CreateAuthChallenge VerifyAuthChallengeResponse PreTokenGeneration PreTokenGenerationConfig CustomSMSSender "
    "CustomEmailSender KMSKeyID InboundFederation"
).split()  # every LambdaConfig key but UserMigration: the old pool's migration trigger makes no sense here
USER_STATUSES = (
    "CONFIRMED UNCONFIRMED FORCE_CHANGE_PASSWORD RESET_REQUIRED EXTERNAL_PROVIDER ARCHIVED COMPROMISED UNKNOWN"
).split()
DOMAIN_PREFIX = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
FUNCTION_NAME_MAX = 59  # Lambda allows 64, but the role is "<name>-role" and IAM allows 64
# Environments unprotected by default: a scratch account where `rollback --delete` is routine. Anything else
# is protected until its params file says `protected: false`; a trailing number or "-2" keeps the meaning.
SANDBOX_NAMES = frozenset({"local", "dev", "development", "test", "testing", "sandbox", "demo", "ci", "scratch"})
SANDBOX_SUFFIX = re.compile(r"[-_.]?\d+$")


# Records of hand runs, and each environment's masking key (outputs/<env>/.mask-key). None: the project's
# outputs/ (project.root()); tests point it elsewhere.
OUTPUTS: Path | None = None


class ParameterError(ValueError):
    """A parameter is missing, unknown or invalid; the message names the key and the fix."""


@dataclass(frozen=True)
class Params:
    """Every parameter of the runbook. docs/parameters.md lists each (generated from this class and the notebooks'
    help lines); notebooks declare the ones they use."""

    env: str = "local"
    region: str = "us-east-1"
    aws_profile: str | None = None
    aws_account_id: str | None = None  # every step refuses to act in another account
    old_user_pool_id: str = ""
    old_client_id: str = ""
    new_pool_name: str = "users-v2"
    target_case_sensitive: bool = False
    target_required_attributes: tuple[str, ...] = ("email",)
    # The new pool's other settings: None or empty means "as in the old pool" (step 2 copies it).
    target_username_attributes: tuple[str, ...] | None = None
    target_alias_attributes: tuple[str, ...] | None = None
    target_custom_attributes: dict[str, str] = field(default_factory=dict)
    target_mfa_configuration: str | None = None
    # The new pool's AutoVerifiedAttributes (email, phone_number); None: as the old pool. A pool without one
    # sends no forgot-password code and takes no user import.
    target_auto_verified_attributes: tuple[str, ...] | None = None
    target_policies: dict[str, Any] = field(default_factory=dict)
    target_email_configuration: dict[str, str] = field(default_factory=dict)
    target_sms_configuration: dict[str, str] = field(default_factory=dict)
    target_deletion_protection: str | None = None
    carry_triggers: tuple[str, ...] = ()
    new_domain_prefix: str | None = None
    attribute_defaults: dict[str, str] = field(default_factory=dict)
    # The trigger's ATTRIBUTE_MAP, LEGACY_SUB_ATTRIBUTE, OLD_ROLE_ARN and OLD_EXTERNAL_ID (docs/trigger.md).
    attribute_map: dict[str, Any] = field(default_factory=dict)
    legacy_sub_attribute: str | None = None
    old_role_arn: str | None = None
    old_external_id: str | None = None
    # Shared by every environment that keeps the default: two in one account must name theirs apart (step 3
    # refuses to take over another environment's function).
    migration_function_name: str = "cognito-user-migration"
    mfa_policy: str = "reset_required"
    dry_run: bool = True
    protected: bool | None = None  # None: protected unless env is named like a sandbox (is_protected)
    mask_pii: bool = True
    list_rate_limit: float = 15.0
    rate_limits: dict[str, float] = field(default_factory=dict)
    # A whole-pool read stopped part-way (expired credentials, a kernel restart) is continued by the next read
    # of the pool within this many hours of its start, keeping the shards it finished; 0 never resumes.
    snapshot_resume_hours: float = 24.0
    # Credentials AWS refuses mid-read (expired): the read waits this long for them to be renewed, then
    # continues in place; 0 stops it at once (a re-run resumes).
    credentials_wait_minutes: float = 30.0
    accept_findings: tuple[str, ...] = ()  # audit blockers accepted knowingly, by finding id
    # Step 5's table filter under papermill (JupyterLab shows widgets), and step 6's cutover.
    report_filter_group: str = ""
    report_filter_status: str = ""
    cutover_confirm: bool = False
    cutover_keep_group_copy: bool = True
    cutover_min_quiet_days: float = 14.0
    # Stragglers step 6 may leave behind and still detach the trigger, as its records name them (masked).
    cutover_accept_unimported: tuple[str, ...] = ()
    run_dir: str = ""

    @property
    def is_protected(self) -> bool:
        """Whether destructive commands (``rollback --delete``) refuse this environment."""
        return self.protected if self.protected is not None else not is_sandbox_name(self.env)

    @property
    def records_dir(self) -> Path:
        """Where this run's records go: the runner's run directory, or <project>/outputs/<env>/manual (the
        project's folder, not the notebook's, whichever directory JupyterLab runs the kernel in)."""
        if self.run_dir:
            return Path(self.run_dir)
        return (OUTPUTS or project.root() / "outputs") / self.env / "manual"

    def masker(self) -> records.Masker:
        """How this environment's records show personal data (reads, or on first use creates, its key in
        outputs/<env>/.mask-key): every writer and the cutover's accepted names use this one."""
        return records.masker(self.records_dir, self.mask_pii)

    def digest(self) -> str:
        """A stable fingerprint of the parameters that shape the migration (run_dir excluded)."""
        data = {k: v for k, v in asdict(self).items() if k != "run_dir"}
        return hashlib.sha256(json.dumps(data, sort_keys=True, default=list).encode()).hexdigest()


FIELDS = {f.name: f for f in fields(Params)}


def is_sandbox_name(env: str) -> bool:
    """local, dev, test2, sandbox-3...: an environment whose resources are scratch unless it says otherwise."""
    return SANDBOX_SUFFIX.sub("", env.lower()) in SANDBOX_NAMES


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Reads a params file; errors say which file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ParameterError(f"{path}: no such parameters file; copy params/example-production.yaml and edit it")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ParameterError(f"{path}: not valid YAML ({exc}); fix the syntax at the line shown") from exc
    if not isinstance(data, dict):
        raise ParameterError(f"{path}: must be a mapping of parameter names to values, got {type(data).__name__}")
    return data


def validate(values: Mapping[str, Any], *, allow_unknown: bool = False) -> Params:
    """Builds Params from a mapping, refusing unknown keys (unless allowed), wrong types and bad values."""
    secret_keys = [k for k in values if SECRET_LOOKING.search(k)]
    if secret_keys:
        raise ParameterError(f"{secret_keys[0]}: passwords never go in parameters; remove this key")
    unknown = sorted(set(values) - set(FIELDS))
    if unknown and not allow_unknown:
        raise ParameterError(
            f"unknown parameter(s) {', '.join(unknown)}: remove them or check the spelling against docs/parameters.md"
        )
    kwargs = {name: _coerce(name, values[name]) for name in FIELDS if name in values}
    params = Params(**kwargs)
    _check(params)
    _check_new_pool(params)
    _check_trigger(params)
    _check_report_and_cutover(params)
    return params


def _coerce(name: str, value: Any) -> Any:
    expected = FIELDS[name].type
    if expected == "bool":
        if not isinstance(value, bool):
            raise ParameterError(f"{name}: expected true or false, got {value!r}")
        return value
    if expected == "bool | None":
        if value is not None and not isinstance(value, bool):
            raise ParameterError(
                f"{name}: expected true, false or null (null: protected unless env is named like a sandbox such "
                f"as local, dev or test), got {value!r}"
            )
        return value
    if expected == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ParameterError(f"{name}: expected a number, got {value!r}")
        return float(value)
    if expected == "tuple[str, ...] | None" and value is None:
        return None
    if expected in ("tuple[str, ...]", "tuple[str, ...] | None"):
        if isinstance(value, str) or not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            example = {
                "carry_triggers": "[PreTokenGeneration, CustomMessage]",
                "accept_findings": "[domain]",
                "cutover_accept_unimported": "[b***1a2b3c]",
            }.get(name, "[email, name]")
            raise ParameterError(f"{name}: expected a list of names, e.g. {example}; got {value!r}")
        return tuple(value)
    if expected == "dict[str, Any]":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ParameterError(f"{name}: expected a mapping such as {{PasswordPolicy: {{MinimumLength: 12}}}}")
        return value
    if expected == "dict[str, float]":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in value.items()
        ):
            raise ParameterError(f"{name}: expected a mapping of quota category to requests/s, e.g. {{UserRead: 60}}")
        return {k: float(v) for k, v in value.items()}
    if expected == "dict[str, str]":
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ParameterError(f"{name}: expected a mapping such as {{name: Unknown}}; got {value!r}")
        return {k: str(v) for k, v in value.items()}
    if expected == "str | None":
        if value is not None and not isinstance(value, str):
            raise ParameterError(f"{name}: expected a name or null, got {value!r}")
        return value or None
    if not isinstance(value, str):
        raise ParameterError(f"{name}: expected a string, got {value!r}")
    return value


def _check(p: Params) -> None:
    if not NAME.match(p.env):
        raise ParameterError(f"env: {p.env!r} must be a short name such as local, staging or production")
    if p.aws_account_id is not None and not ACCOUNT_ID.match(p.aws_account_id):
        raise ParameterError(
            f"aws_account_id: {p.aws_account_id!r} must be the 12 digits of an AWS account id, quoted in YAML "
            "('012345678901'), or null"
        )
    if not REGION.match(p.region):
        raise ParameterError(f"region: {p.region!r} is not an AWS Region name such as eu-west-1")
    if not POOL_ID.match(p.old_user_pool_id):
        raise ParameterError(
            f"old_user_pool_id: {p.old_user_pool_id!r} is not a user pool id (<region>_<id>, e.g. eu-west-1_AbC123xyz)"
        )
    if not p.old_user_pool_id.startswith(p.region + "_"):
        raise ParameterError(
            f"old_user_pool_id: {p.old_user_pool_id} is not in region {p.region}; set region to the pool's Region"
        )
    if not p.old_client_id:
        raise ParameterError(
            "old_client_id: required: an old-pool app client that allows ALLOW_ADMIN_USER_PASSWORD_AUTH"
        )
    if not NAME.match(p.new_pool_name) or not NAME.match(p.migration_function_name):
        raise ParameterError("new_pool_name / migration_function_name: use letters, digits, '.', '_' or '-' (max 64)")
    if len(p.migration_function_name) > FUNCTION_NAME_MAX:
        raise ParameterError(
            f"migration_function_name: {p.migration_function_name} is longer than {FUNCTION_NAME_MAX} characters "
            "(its role is <name>-role, and IAM allows 64); set a shorter migration_function_name"
        )
    if p.mfa_policy not in MFA_POLICIES:
        raise ParameterError(f"mfa_policy: {p.mfa_policy!r} must be one of {', '.join(MFA_POLICIES)}")
    _check_rate_limits(p.rate_limits)
    if p.list_rate_limit <= 0 or p.list_rate_limit > 30:
        raise ParameterError(
            f"list_rate_limit: {p.list_rate_limit} must be above 0 and at most 30 (Cognito's UserList quota, "
            "shared with production: half of it is a safe choice)"
        )
    if p.snapshot_resume_hours < 0:
        raise ParameterError(
            f"snapshot_resume_hours: {p.snapshot_resume_hours:g} must be 0 or more (hours within which a read "
            "stopped part-way is continued; 0 starts every read afresh)"
        )
    if not 0 <= p.credentials_wait_minutes <= 720:
        raise ParameterError(
            f"credentials_wait_minutes: {p.credentials_wait_minutes:g} must be from 0 to 720 (minutes a read waits "
            "for expired credentials to be renewed before it stops; 0 stops at once)"
        )
    unknown_findings = sorted(set(p.accept_findings) - set(FINDING_IDS))
    if unknown_findings:
        raise ParameterError(
            f"accept_findings: unknown finding id(s) {', '.join(unknown_findings)}; use the ids of the audit's "
            "findings table (docs/findings.md)"
        )
    # Cognito refuses a required custom attribute at CreateUserPool; say so before step 1 reads anything.
    custom = [a for a in p.target_required_attributes if a.startswith("custom:") or a in p.target_custom_attributes]
    if custom:
        raise ParameterError(
            f"target_required_attributes: {', '.join(custom)} is a custom attribute: Required custom attributes are "
            "not supported by Cognito; remove it from target_required_attributes (attribute_map can still fill it)"
        )
    if "email" not in p.target_required_attributes and "email" in p.attribute_defaults:
        raise ParameterError("attribute_defaults: email cannot be defaulted: it identifies the user")
    missing_defaults = [a for a in p.attribute_defaults if a not in p.target_required_attributes]
    if missing_defaults:
        raise ParameterError(
            f"attribute_defaults: {', '.join(missing_defaults)} not in target_required_attributes; "
            "defaults fill only attributes the new pool requires"
        )


def _check_new_pool(p: Params) -> None:
    """The new pool's declared settings; what needs the old pool to check is checked by step 2's plan."""
    _check_sign_in(p)
    for name, data_type in p.target_custom_attributes.items():
        if not CUSTOM_ATTRIBUTE.match(name):
            raise ParameterError(
                f"target_custom_attributes: {name!r} must be 1-20 letters, digits or '_', without 'custom:' "
                "(Cognito adds the prefix)"
            )
        if data_type not in CUSTOM_TYPES:
            raise ParameterError(f"target_custom_attributes: {name}: type must be one of {', '.join(CUSTOM_TYPES)}")
    _check_choice("target_mfa_configuration", p.target_mfa_configuration, MFA_CONFIGURATIONS)
    _check_auto_verified(p.target_auto_verified_attributes)
    _check_choice("target_deletion_protection", p.target_deletion_protection, DELETION_PROTECTION)
    _check_policies(p.target_policies)
    _check_keys("target_email_configuration", p.target_email_configuration, EMAIL_CONFIGURATION_KEYS)
    _check_keys("target_sms_configuration", p.target_sms_configuration, SMS_CONFIGURATION_KEYS)
    unknown = [t for t in p.carry_triggers if t not in LAMBDA_TRIGGERS]
    if unknown:
        raise ParameterError(
            f"carry_triggers: {', '.join(unknown)} cannot be carried; choose LambdaConfig keys among "
            f"{', '.join(LAMBDA_TRIGGERS)} (step 3 attaches the migration trigger itself)"
        )
    prefix = p.new_domain_prefix
    if prefix is not None and (not DOMAIN_PREFIX.match(prefix) or re.search("aws|amazon|cognito", prefix)):
        raise ParameterError(
            f"new_domain_prefix: {prefix!r} must be lowercase letters, digits and inner hyphens (max 63), without "
            "aws, amazon or cognito; or null for no domain"
        )


def _check_sign_in(p: Params) -> None:
    username, alias = p.target_username_attributes or (), p.target_alias_attributes or ()
    if username and alias:
        raise ParameterError(
            "target_username_attributes / target_alias_attributes: Cognito takes one or the other; "
            "set the unused one to []"
        )
    for key, values, allowed in (
        ("target_username_attributes", username, USERNAME_ATTRIBUTES),
        ("target_alias_attributes", alias, ALIAS_ATTRIBUTES),
    ):
        wrong = [v for v in values if v not in allowed]
        if wrong:
            raise ParameterError(f"{key}: {', '.join(wrong)} not allowed; choose among {', '.join(allowed)}")


def _check_auto_verified(values: tuple[str, ...] | None) -> None:
    wrong = [v for v in values or () if v not in AUTO_VERIFIED_ATTRIBUTES]
    if wrong:
        raise ParameterError(
            f"target_auto_verified_attributes: {', '.join(map(repr, wrong))} cannot be auto-verified; choose among "
            f"{', '.join(AUTO_VERIFIED_ATTRIBUTES)} (e.g. [email]), or null for the old pool's"
        )


def _check_choice(key: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ParameterError(f"{key}: {value!r} must be one of {', '.join(allowed)}, or null for the old pool's")


def _check_keys(key: str, value: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ParameterError(f"{key}: unknown {', '.join(unknown)}; use {', '.join(allowed)}")


def _check_policies(policies: Mapping[str, Any]) -> None:
    _check_keys("target_policies", policies, ("PasswordPolicy", "SignInPolicy"))
    password = policies.get("PasswordPolicy") or {}
    if not isinstance(password, dict):
        raise ParameterError("target_policies: PasswordPolicy must be a mapping such as {MinimumLength: 12}")
    _check_keys("target_policies.PasswordPolicy", password, (*PASSWORD_POLICY_RANGES, *PASSWORD_POLICY_FLAGS))
    for name, (low, high) in PASSWORD_POLICY_RANGES.items():
        value = password.get(name, low)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ParameterError(f"target_policies.PasswordPolicy.{name}: expected a whole number {low}-{high}")
    for name in PASSWORD_POLICY_FLAGS:
        if not isinstance(password.get(name, False), bool):
            raise ParameterError(f"target_policies.PasswordPolicy.{name}: expected true or false")


def _check_trigger(p: Params) -> None:
    """The trigger's own settings; the trigger's parser is the one schema of attribute_map."""
    try:
        parse_attribute_map(p.attribute_map, "attribute_map")
    except ConfigurationError as exc:
        raise ParameterError(str(exc)) from None
    legacy = p.legacy_sub_attribute
    if legacy is not None and not (legacy.startswith("custom:") and CUSTOM_ATTRIBUTE.match(legacy[7:])):
        raise ParameterError(
            f"legacy_sub_attribute: {legacy!r} must be a custom attribute such as custom:legacy_sub "
            "(1-20 letters, digits or '_' after custom:), or null"
        )
    if p.old_role_arn is not None and not ROLE_ARN.match(p.old_role_arn):
        raise ParameterError(
            f"old_role_arn: {p.old_role_arn!r} is not an IAM role ARN such as arn:aws:iam::111122223333:role/x"
        )
    if p.old_external_id is not None and (p.old_role_arn is None or not EXTERNAL_ID.match(p.old_external_id)):
        raise ParameterError(
            "old_external_id: needs old_role_arn, and 2-1224 characters among letters, digits and +=,.@:/-"
        )


def _check_report_and_cutover(p: Params) -> None:
    if p.report_filter_status and p.report_filter_status not in USER_STATUSES:
        raise ParameterError(
            f"report_filter_status: {p.report_filter_status!r} is not a user status; use one of "
            f'{", ".join(USER_STATUSES)}, or "" for all'
        )
    if p.cutover_min_quiet_days < 0:
        raise ParameterError(
            f"cutover_min_quiet_days: {p.cutover_min_quiet_days} must be 0 or more (days without a lazy migration "
            "before the cutover may write)"
        )


def _check_rate_limits(limits: dict[str, float]) -> None:
    for category, rate in limits.items():
        if category == "UserList":
            raise ParameterError("rate_limits: set UserList with list_rate_limit, not here")
        if category not in QUOTAS:
            raise ParameterError(
                f"rate_limits: {category} is not a Cognito quota category; use one of {', '.join(QUOTAS)}"
            )
        if not 0 < rate <= ceiling(category):
            per_pool = " (5/s per operation and pool)" if category in POOL_LIMITED else ""
            raise ParameterError(
                f"rate_limits: {category} {rate:g} must be above 0 and at most its quota{per_pool}, "
                f"{ceiling(category):g}/s"
            )
