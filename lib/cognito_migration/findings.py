"""What the audit finds: the catalog of findings, the finding record, its table and the gate.

A finding has an id (the name ``accept_findings`` accepts it by), a severity (blocker / warning / info), an
exact count, a few examples (masked unless the operator turned masking off) and a remedy. The detectors live
in ``user_findings`` (the users) and ``audit`` (the pool's configuration).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from itertools import chain, islice
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from .checks import Check

EXAMPLES = 3  # examples per finding: enough to recognise the problem, few enough to stay out of the way


@dataclass(frozen=True)
class Kind:
    """One kind of finding, as docs/findings.md lists it (``docs_pages`` writes that page from ``CATALOG``)."""

    id: str
    severity: str  # the highest severity it can have
    when: str  # how the severity is decided ("always": it is `severity`), for the docs
    what: str
    remedy: str


CATALOG: tuple[Kind, ...] = (
    Kind(
        "migration_client",
        "blocker",
        "always",
        "the trigger's old-pool client (`old_client_id`) is missing, lacks ALLOW_ADMIN_USER_PASSWORD_AUTH, or "
        "has a secret",
        "name an old-pool app client without a secret that allows ALLOW_ADMIN_USER_PASSWORD_AUTH (create one "
        "for the migration)",
    ),
    Kind(
        "empty_pool",
        "blocker",
        "always",
        "no users were read from the old pool",
        "check old_user_pool_id, region and aws_profile",
    ),
    Kind(
        "trigger_configuration",
        "blocker",
        "always",
        "the trigger refuses the configuration these parameters give it",
        "fix the parameter the message names",
    ),
    Kind(
        "clients_without_password_flow",
        "blocker",
        "always",
        "app clients without a password flow: THE MIGRATION TRIGGER NEVER FIRES UNDER SRP, so nobody signing "
        "in through them migrates",
        "switch those apps to USER_PASSWORD_AUTH against the new pool for the migration window (step 2 allows "
        "it on the new clients), then accept the finding",
    ),
    Kind(
        "username_case_collisions",
        "blocker",
        "blocker, when the new pool is case-insensitive",
        "usernames that differ only by case: in the case-insensitive new pool only the first of each group to "
        "sign in migrates, the others are refused",
        "decide per group which account survives (merge or retire the others in the old pool), or keep the "
        "new pool case-sensitive (target_case_sensitive: true)",
    ),
    Kind(
        "email_case_collisions",
        "blocker",
        "blocker if email is a sign-in attribute of the new pool, else warning",
        "emails that differ only by case: one address for several users in the case-insensitive new pool",
        "decide which user owns each address and change the others' email in the old pool before cutover",
    ),
    Kind(
        "preferred_username_case_collisions",
        "blocker",
        "blocker if preferred_username is a sign-in attribute, else info",
        "preferred_usernames that differ only by case",
        "give the users of each group distinct preferred_usernames in the old pool",
    ),
    Kind(
        "alias_conflicts",
        "blocker",
        "blocker if the attribute is a sign-in attribute of the new pool, else info",
        "one email or phone number held verified by several users: with forceAliasCreation false the second "
        "to migrate fails (AliasExistsException)",
        "keep the address verified on one user only (AdminUpdateUserAttributes ..._verified=false on the others)",
    ),
    Kind(
        "usernames_are_emails",
        "warning",
        "when the new pool takes email aliases",
        "usernames that are email addresses: a pool with email aliases accepts none as a username, so the "
        "trigger refuses these users and the report counts them as cannot migrate lazily",
        "give them usernames that are not email addresses in the old pool, or do not declare email as an alias "
        "(target_alias_attributes)",
    ),
    Kind(
        "missing_required_attributes",
        "blocker",
        "always",
        "users the trigger would send without an attribute the new pool requires: their migration fails",
        "add a default to attribute_defaults, or fill the attribute in the old pool",
    ),
    Kind(
        "invalid_phone_numbers",
        "blocker",
        "always",
        "phone numbers not in E.164 (+<country><number>): the new schema rejects them and the migration fails",
        "fix the numbers in the old pool (E.164, e.g. +15551234567) or stop the trigger sending phone_number",
    ),
    Kind(
        "values_too_long",
        "blocker",
        "always",
        "values longer than the new schema's MaxLength for their attribute",
        "shorten them in the old pool or declare a larger MaxLength before the new pool is created",
    ),
    Kind(
        "custom_attribute_type_mismatch",
        "blocker",
        "always",
        "custom attribute values the new schema's type rejects (a Number that is not a number or out of "
        "range, a Boolean that is not true/false)",
        "correct the values in the old pool or map them in the trigger",
    ),
    Kind(
        "attributes_dropped",
        "warning",
        "always",
        "attributes old users have that the trigger will not send under that name (absent from the new schema)",
        "declare them in the new pool (custom attributes are fixed at creation) or accept the loss",
    ),
    Kind(
        "attribute_map_unused_source",
        "warning",
        "always",
        "an attribute_map entry reads an old attribute that no old user has: a misspelt name, or a rule that "
        "only ever gives its fallback",
        "check the entry's spelling against the old pool's attributes, or remove the entry",
    ),
    Kind(
        "federated_users",
        "warning",
        "always",
        "federated users (EXTERNAL_PROVIDER, `identities`): they have no password, the trigger never migrates them",
        "configure the identity providers on the new pool; users come back as new users on their next "
        "federated sign-in (link them with AdminLinkProviderForUser)",
    ),
    Kind(
        "unconfirmed_users",
        "warning",
        "always",
        "UNCONFIRMED users: the old pool refuses their sign-in, so they cannot migrate",
        "let them sign up again in the new pool, or confirm them in the old pool before cutover",
    ),
    Kind(
        "force_change_password_users",
        "info",
        "always",
        "FORCE_CHANGE_PASSWORD users: they migrate as RESET_REQUIRED (the temporary password never becomes "
        "theirs) and need a verified email or phone",
        "nothing, if they have a verified contact; see no_verified_contact",
    ),
    Kind(
        "reset_required_users",
        "warning",
        "always",
        "RESET_REQUIRED users: the old pool refuses their password, they migrate only through forgot-password",
        "tell them to use forgot-password on the new pool; it needs a verified email or phone",
    ),
    Kind(
        "disabled_users",
        "warning",
        "always",
        "disabled users: the trigger refuses them, they stay behind",
        "decide: leave them, or carry them over disabled by bulk import followed by AdminDisableUser",
    ),
    Kind(
        "no_verified_contact",
        "warning",
        "always",
        "users with neither a verified email nor a verified phone: they cannot use forgot-password, and the "
        "trigger refuses them whenever they would migrate as RESET_REQUIRED",
        "verify an email or phone for them in the old pool before cutover",
    ),
    Kind(
        "mfa_users",
        "warning",
        "warning, when the pool's MFA is not OFF or users show MFAOptions",
        "MFA users and what mfa_policy will do with them (ListUsers does not return per-user MFA settings in AWS)",
        "choose mfa_policy knowingly; TOTP users re-enrol after migrating (secrets cannot be exported)",
    ),
    Kind(
        "mfa_refused_users",
        "warning",
        "warning, when mfa_policy is refuse; blocker when the old pool's MFA is ON (then nobody can move)",
        "users who could migrate but whom mfa_policy refuse refuses at every sign-in and forgot-password (step 5 "
        "counts them as cannot migrate lazily, and leaves them out of the import file)",
        "decide how they move (mfa_policy reset_required or sms, or by hand after cutover), or accept it",
    ),
    Kind(
        "client_secrets",
        "warning",
        "always",
        "app clients with a secret: their copies in the new pool get NEW secrets (a secret cannot be copied)",
        "deploy the new secrets with the apps; password sign-ins need SECRET_HASH",
    ),
    Kind(
        "prevent_user_existence_errors",
        "warning",
        "always",
        "app clients with PreventUserExistenceErrors LEGACY: they tell callers which users exist",
        "set PreventUserExistenceErrors ENABLED on the new pool's clients; their apps must then offer "
        "forgot-password on NotAuthorizedException (see reset_required_sign_in)",
    ),
    Kind(
        "reset_required_sign_in",
        "warning",
        "warning when an app client has PreventUserExistenceErrors ENABLED and users will arrive RESET_REQUIRED "
        "before cutover, else info",
        "users arriving RESET_REQUIRED (FORCE_CHANGE_PASSWORD users, MFA users under mfa_policy reset_required, "
        "imported stragglers): their password sign-in answers PasswordResetRequiredException through a LEGACY "
        'client, but NotAuthorizedException ("Incorrect username or password.") through an ENABLED one, so the '
        "app cannot tell a required reset from a wrong password",
        "apps on ENABLED clients offer forgot-password (ForgotPassword, then ConfirmForgotPassword) on "
        "NotAuthorizedException; apps on LEGACY clients send PasswordResetRequiredException there; step 4 shows "
        "which answer each new client gives",
    ),
    Kind(
        "sub_changes",
        "warning",
        "warning; info when the old sub is carried",
        "every migrated user gets a NEW `sub`: apps and data keyed on it break",
        "carry the old sub in a custom attribute (e.g. custom:legacy_sub, the trigger's LEGACY_SUB_ATTRIBUTE "
        "/ legacy_sub_attribute) and re-key on it",
    ),
    Kind(
        "lambda_triggers",
        "warning",
        "warning; info when carry_triggers names them all",
        "Lambda triggers on the old pool: step 2 carries only those carry_triggers names (step 3 adds the "
        "migration triggers)",
        "name the ones to keep in carry_triggers; the others are dropped, knowingly",
    ),
    Kind(
        "mfa_configuration",
        "warning",
        "info; warning when the new pool's MfaConfiguration differs",
        "the old pool's MFA configuration (MfaConfiguration, SMS and TOTP factors) beside the new pool's",
        "keep target_mfa_configuration null to carry it; change it only knowingly",
    ),
    Kind(
        "no_auto_verified_attribute",
        "blocker",
        "always",
        "the new pool auto-verifies neither email nor phone_number: forgot-password codes cannot be sent, "
        "RESET_REQUIRED migrations cannot finish, and Cognito starts no user import job, so step 6 imports nobody "
        "and keeps the migration trigger",
        "declare target_auto_verified_attributes (e.g. [email]) for step 2, or accept the finding knowingly",
    ),
    Kind(
        "email_configuration",
        "warning",
        "warning when the new pool sends through Cognito's default sender to more than 50 users, else info",
        "how the new pool sends email, which carries the migration's codes: Cognito's default sender allows 50 "
        "emails a day, and every RESET_REQUIRED migration and forgot-password sends one",
        "send through Amazon SES (target_email_configuration: EmailSendingAccount DEVELOPER) before cutover",
    ),
    Kind(
        "sms_configuration",
        "info",
        "always",
        "SMS is activated on the old pool: the new pool gets the same configuration, and SMS cannot be turned "
        "off once on",
        "make the SNS role's trust policy accept the new pool; check the account's SMS spend limit",
    ),
    Kind(
        "domain",
        "warning",
        "warning; info when new_domain_prefix is set and there is no custom domain",
        "the old pool has a (custom) domain for its hosted UI",
        "set new_domain_prefix; move a custom domain by hand at cutover (it serves one pool at a time)",
    ),
    Kind(
        "identity_providers",
        "warning",
        "always",
        "identity providers (ListIdentityProviders) the new pool must carry; their secrets are not readable",
        "supply their secrets to step 2 (it names the environment variables); federated users come back on "
        "their next sign-in",
    ),
    Kind(
        "resource_servers",
        "info",
        "always",
        "resource servers and scopes (ListResourceServers): step 2 recreates them",
        "check the new clients' allowed OAuth scopes after step 2",
    ),
    Kind(
        "deletion_protection",
        "warning",
        "warning; info when ACTIVE on both pools",
        "deletion protection: the old pool holds the only copy of the passwords until the lazy window closes",
        "keep it ACTIVE on both pools (target_deletion_protection); deactivate the old one only when the "
        "migration is finished",
    ),
    Kind(
        "full_scan_time",
        "info",
        "always",
        "how long a full read of the pool takes under the quotas",
        "set list_rate_limit to what production can spare (UserList: 30 RPS per account and Region)",
    ),
    Kind(
        "lazy_window_time",
        "info",
        "always",
        "how fast users can migrate lazily at this size",
        "give the window a defined end (e.g. 60-90 days), then bulk-import or reset the rest",
    ),
)
KINDS = {kind.id: kind for kind in CATALOG}
FINDING_IDS = tuple(KINDS)


@dataclass(frozen=True)
class Finding:
    """One finding of the audit. ``groups`` lists every colliding group (masked); ``facts`` holds the
    numbers behind the detail, for records and tests."""

    id: str
    severity: str
    count: int
    detail: str
    examples: tuple[str, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()
    facts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def what(self) -> str:
        return KINDS[self.id].what

    @property
    def remedy(self) -> str:
        return KINDS[self.id].remedy


SEVERITIES = ("blocker", "warning", "info")  # most severe first


def merge(parts: Sequence[Finding], render: Callable[[Finding], str] | None = None) -> Finding | None:
    """One finding from those a detector made over disjoint batches of the same users, given in the users'
    order: counts and numeric facts summed, the first EXAMPLES examples and every group in that order, the
    most severe severity. A detail that states totals is ``render`` of the merged finding; any other detail
    must be the same in every part. None when no batch had the finding."""
    if not parts:
        return None
    first = parts[0]
    if any(p.id != first.id for p in parts):
        raise ValueError(f"merge: findings of one kind only, not {sorted({p.id for p in parts})}")
    merged = Finding(
        first.id,
        min((p.severity for p in parts), key=SEVERITIES.index),
        sum(p.count for p in parts),
        first.detail,
        examples=tuple(islice(chain.from_iterable(p.examples for p in parts), EXAMPLES)),
        groups=tuple(chain.from_iterable(p.groups for p in parts)),
        facts=_merged_facts(first.id, [p.facts for p in parts]),
    )
    if render is not None:
        return replace(merged, detail=render(merged))
    if any(p.detail != first.detail for p in parts):
        raise ValueError(f"merge: {first.id}'s detail differs between batches: it states totals, give a render")
    return merged


def _merged_facts(kind_id: str, facts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Numbers summed key by key; anything else must agree between the parts."""
    merged: dict[str, Any] = {}
    for part in facts:
        for key, value in part.items():
            if key not in merged:
                merged[key] = value
            elif isinstance(value, int | float) and not isinstance(value, bool):
                merged[key] += value
            elif merged[key] != value:
                raise ValueError(f"merge: {kind_id}'s fact {key} is {merged[key]!r} in one batch, {value!r} in another")
    return merged


def catalog_table() -> pd.DataFrame:
    """The findings the audit can report: the table of docs/findings.md."""
    return pd.DataFrame([asdict(k) for k in CATALOG], columns=["id", "severity", "when", "what", "remedy"])


def table(found: Sequence[Finding], accepted: Iterable[str] = ()) -> pd.DataFrame:
    """One row per finding, blockers first; ``accepted`` marks blockers the parameters accept by name."""
    accepted_ids = set(accepted)
    order = {"blocker": 0, "warning": 1, "info": 2}
    rows = [
        {
            "id": f.id,
            "severity": f.severity,
            "count": f.count,
            "what": f.what,
            "detail": f.detail,
            "examples": "; ".join(f.examples),
            "remedy": f.remedy,
            "accepted": f.id in accepted_ids and f.severity == "blocker",
        }
        for f in sorted(found, key=lambda f: order[f.severity])
    ]
    columns = ["id", "severity", "count", "what", "detail", "examples", "remedy", "accepted"]
    return pd.DataFrame(rows, columns=columns)


SEVERITY_STYLE = {"blocker": "background-color: #f8d7da", "warning": "background-color: #fff3cd", "info": ""}


def escaped_style(frame: pd.DataFrame) -> Styler:
    """A Styler that renders every cell and column label as text. Unlike a plain DataFrame's HTML, a Styler
    does not escape by default, and the values come from the pool (attribute values, names, masked examples
    such as ``p-3f9a1c2b4d5e <p-0b1c2d3e4f5a@example.com>``): unescaped, they become live markup in the saved
    HTML record."""
    return frame.style.format(escape="html").format_index(escape="html", axis=1).hide(axis="index")


# Long text wraps within a bounded column, so the table fits a notebook of normal width (the remedy is the
# last text column: without this it runs off the right edge).
WRAPPED_COLUMNS = ("what", "detail", "examples", "remedy")
WRAPPED_STYLE = {
    "white-space": "normal",
    "overflow-wrap": "anywhere",
    "text-align": "left",
    "vertical-align": "top",
    "min-width": "8em",
    "max-width": "22em",
}


def styled_table(frame: pd.DataFrame) -> Styler:
    """The findings table coloured by severity (an accepted blocker stays red: it is accepted, not fixed),
    its long text wrapped in bounded columns."""
    wrapped: list[Hashable] = [c for c in WRAPPED_COLUMNS if c in frame.columns]
    return (
        escaped_style(frame)
        .apply(lambda row: [SEVERITY_STYLE[row["severity"]]] * len(row), axis=1)
        .set_properties(subset=wrapped, **WRAPPED_STYLE)
        .set_table_styles([{"selector": "td", "props": [("vertical-align", "top")]}], overwrite=False)
    )


def gate_checks(found: Sequence[Finding], accepted: Iterable[str]) -> list[Check]:
    """Blockers (failing unless accepted by id) and warnings (shown) as the step's checks."""
    accepted_ids = set(accepted)
    result = []
    for f in found:
        if f.severity == "info":
            continue
        ok = f.severity == "blocker" and f.id in accepted_ids
        detail = f"{f.count}: {f.detail}" + (" (accepted in accept_findings)" if ok else "")
        remedy = f.remedy
        if f.severity == "blocker" and not ok:
            remedy += f"; or, once decided, accept it by name: add {f.id} to accept_findings"
        result.append(Check(f.id, ok, f.severity, detail, remedy))
    return result


def to_records(found: Sequence[Finding], accepted: Iterable[str] = ()) -> list[dict[str, Any]]:
    """findings.json: every field, examples and groups as already masked."""
    accepted_ids = set(accepted)
    return [
        {**asdict(f), "what": f.what, "remedy": f.remedy, "accepted": f.id in accepted_ids and f.severity == "blocker"}
        for f in found
    ]
