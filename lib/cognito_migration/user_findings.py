"""Findings about the old pool's users: pure detectors over the users frame of ``scan.scan_users``.

Case collisions, alias conflicts, users who cannot migrate lazily, MFA, and what the trigger's own attribute
mapping would send checked against the new schema. Nothing here calls AWS; ``audit`` gathers the data.

A detector over any frame of users is also right over a part of them: the row-wise ones for every batch (their
findings merge, ``findings.merge``), the cross-user ones for every part holding all the users who share a
value (``shared_values``). Details that state totals come from functions of those totals, and the numbers
pool-wide findings need are counts that add up across batches (``mfa_counts``, ``held_attributes``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from . import records, report
from .findings import EXAMPLES, KINDS, Finding
from .trigger.migration_trigger import AttributeRule

# E.164 itself: the audit flags what the standard forbids. Not the trigger's PHONE (what it reads as a phone
# sign-in) nor the local import's rule: those are other facts, with other patterns.
E164 = re.compile(r"^\+[1-9]\d{1,14}$")
NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
DEFAULT_MAX_LENGTH = 2048  # Cognito's limit for a string attribute without its own constraint


# --- reading the users frame -----------------------------------------------------------------------------


def text(users: pd.DataFrame, column: str) -> pd.Series:
    """A column as strings, '' where a user lacks the attribute."""
    if column not in users.columns:
        return pd.Series("", index=users.index, dtype=object)
    values = users[column]
    if isinstance(values.dtype, pd.StringDtype):  # strings or missing: the same, without a call per user
        return values.fillna("")
    return values.map(lambda v: v if isinstance(v, str) else "")


def verified(users: pd.DataFrame, contact: str) -> pd.Series:
    """Users whose ``contact`` (email or phone_number) is set and marked verified."""
    return (text(users, contact) != "") & (text(users, f"{contact}_verified").str.lower() == "true")


def user_finding(
    kind_id: str,
    users: pd.DataFrame,
    selected: pd.Series,
    show: records.Masker,
    detail: str,
    severity: str | None = None,
) -> Finding | None:
    """A finding about the ``selected`` users, with their (masked) usernames as examples; None when nobody."""
    count = int(selected.sum())
    if not count:
        return None
    examples = tuple(show.text(u) for u in users.loc[selected, "username"].head(EXAMPLES))
    return Finding(kind_id, severity or KINDS[kind_id].severity, count, detail, examples=examples)


def case_key(values: pd.Series) -> pd.Series:
    """How case collisions compare values: case-folded ("Straße" and "STRASSE" are one)."""
    return values.str.casefold()


def alias_key(values: pd.Series, column: str, case_sensitive: bool) -> pd.Series:
    """How the new pool compares verified addresses: phone numbers as they are, emails case-folded unless it
    is case sensitive."""
    return values if case_sensitive or column == "phone_number" else case_key(values)


def case_groups(values: pd.Series) -> list[list[Any]]:
    """Index labels of users whose values are equal ignoring case but spelled differently, one list per
    group (identical spellings alone are not a case collision), in the order of their case-folded value."""
    present = values[values != ""]
    keys = case_key(present)
    dupes = keys[keys.duplicated(keep=False)]
    return [list(labels) for labels in dupes.groupby(dupes).groups.values() if present.loc[list(labels)].nunique() > 1]


def collision_finding(
    kind_id: str, users: pd.DataFrame, column: str, severity: str, show: records.Masker
) -> Finding | None:
    """Users whose ``column`` differs only by case from another user's: every group listed, masked."""
    values = text(users, column)
    groups = case_groups(values)
    if not groups:
        return None
    listed = tuple(
        tuple(
            show.text(str(users.at[i, "username"]))
            + ("" if column == "username" else f" <{show.value(column, values[i])}>")
            for i in group
        )
        for group in groups
    )
    count = sum(len(g) for g in groups)
    examples = tuple(" / ".join(g) for g in listed[:EXAMPLES])
    return Finding(kind_id, severity, count, collision_detail(column, count, len(groups)), examples, listed)


def collision_detail(column: str, users: int, groups: int) -> str:
    return f"{users} users in {groups} groups whose {column} differs only by case"


def alias_conflict_finding(
    users: pd.DataFrame, case_sensitive: bool, sign_in: set[str], show: records.Masker
) -> Finding | None:
    """One email or phone number held verified by several users."""
    listed: list[tuple[str, ...]] = []
    by_attribute: dict[str, int] = {}
    for column in ("email", "phone_number"):
        values = text(users, column)[verified(users, column)]
        keys = alias_key(values, column, case_sensitive)
        dupes = keys[keys.duplicated(keep=False)]
        groups = [list(labels) for labels in dupes.groupby(dupes).groups.values()]
        by_attribute[column] = sum(len(g) for g in groups)
        listed += [
            tuple(f"{show.text(str(users.at[i, 'username']))} <{show.value(column, values[i])}>" for i in group)
            for group in groups
        ]
    count = sum(by_attribute.values())
    if not count:
        return None
    severity, detail = alias_verdict(by_attribute, len(listed), sign_in)
    examples = tuple(" / ".join(g) for g in listed[:EXAMPLES])
    return Finding("alias_conflicts", severity, count, detail, examples, tuple(listed), facts=by_attribute)


def alias_verdict(by_attribute: Mapping[str, int], groups: int, sign_in: set[str]) -> tuple[str, str]:
    """The alias conflicts' severity and detail, from the users sharing each attribute: a blocker when the new
    pool signs users in with a shared attribute."""
    blocking = {c for c, n in by_attribute.items() if n} & sign_in
    detail = (
        f"{by_attribute['email']} users share a verified email, {by_attribute['phone_number']} a verified phone, "
        f"in {groups} groups; "
        + (
            f"{', '.join(sorted(blocking))} signs users in to the new pool: the second of each group fails to migrate"
            if blocking
            else "neither is a sign-in attribute of the new pool, so migration is not blocked; apps that look users "
            "up by these addresses will find several"
        )
    )
    return ("blocker" if blocking else "info"), detail


def status_findings(users: pd.DataFrame, show: records.Masker) -> list[Finding]:
    """Users who cannot migrate lazily, or need a decision, by their status in the old pool."""
    status = text(users, "status")
    federated = federated_users(users)
    enabled = users["enabled"].astype(bool) if "enabled" in users.columns else pd.Series(True, index=users.index)
    contact = verified(users, "email") | verified(users, "phone_number")
    candidates = [
        ("federated_users", federated, "sign in through an identity provider"),
        ("unconfirmed_users", (status == "UNCONFIRMED") & ~federated, "never confirmed their sign-up"),
        ("force_change_password_users", status == "FORCE_CHANGE_PASSWORD", "still hold an admin-set password"),
        ("reset_required_users", status == "RESET_REQUIRED", "must reset their password"),
        ("disabled_users", ~enabled, "disabled in the old pool"),
        ("no_verified_contact", ~contact & ~federated, no_contact_detail(int(stranded_users(users).sum()))),
    ]
    found = [user_finding(kind_id, users, selected, show, detail) for kind_id, selected, detail in candidates]
    return [f for f in found if f is not None]


def federated_users(users: pd.DataFrame) -> pd.Series:
    return (text(users, "status") == "EXTERNAL_PROVIDER") | (text(users, "identities") != "")


def stranded_users(users: pd.DataFrame) -> pd.Series:
    """FORCE_CHANGE_PASSWORD users, not federated, with neither a verified email nor a verified phone."""
    contact = verified(users, "email") | verified(users, "phone_number")
    return ~contact & ~federated_users(users) & (text(users, "status") == "FORCE_CHANGE_PASSWORD")


def no_contact_detail(stranded: int) -> str:
    return (
        f"no verified email or phone; {stranded} of them are FORCE_CHANGE_PASSWORD and will be refused at "
        "sign-in (MFA users among them would be too, but ListUsers cannot show who has MFA)"
    )


MFA_POLICY_EFFECT = {
    "reset_required": "mfa_policy reset_required: a user whose old pool asks for a second factor migrates as "
    "RESET_REQUIRED and proves a verified email or phone with a code (refused without one)",
    "sms": "mfa_policy sms: CONFIRMED with SMS MFA where the phone is verified, otherwise RESET_REQUIRED; TOTP "
    "users re-enrol (secrets cannot be exported)",
    "refuse": "mfa_policy refuse: every user with MFA is refused at sign-in and at forgot-password, and stays behind "
    "for a decision (see mfa_refused_users)",
}


def mfa_counts(users: pd.DataFrame) -> Counter[str]:
    """What ListUsers shows of MFA: users, those with legacy SMS MFAOptions, those with a verified phone."""
    legacy_sms = users["legacy_sms_mfa"].astype(bool) if "legacy_sms_mfa" in users.columns else None
    return Counter(
        users=len(users),
        legacy_sms_mfa_options=int(legacy_sms.sum()) if legacy_sms is not None else 0,
        verified_phones=int(verified(users, "phone_number").sum()),
    )


def mfa_finding(users: pd.DataFrame, mfa_configuration: str, factors: Sequence[str], mfa_policy: str) -> Finding | None:
    """MFA users, by what ListUsers shows. Per-user MFA settings come only from AdminGetUser, billed per user:
    never called over the whole pool. The count is the users who may hold MFA: everyone when the pool's
    MfaConfiguration is ON or OPTIONAL, else those with legacy SMS MFAOptions."""
    return mfa_counts_finding(mfa_counts(users), mfa_configuration, factors, mfa_policy)


def mfa_counts_finding(
    counts: Mapping[str, int], mfa_configuration: str, factors: Sequence[str], mfa_policy: str
) -> Finding | None:
    """``mfa_finding`` from ``mfa_counts`` (summed over batches, for the largest pools)."""
    options, phones = counts["legacy_sms_mfa_options"], counts["verified_phones"]
    if mfa_configuration in ("", "OFF") and not options:
        return None
    pool_wide = mfa_configuration in ("ON", "OPTIONAL")
    detail = (
        f"pool MfaConfiguration {mfa_configuration or 'OFF'} (factors: {', '.join(factors) or 'none'}): "
        + ("every user signs in with a second factor. " if mfa_configuration == "ON" else "any user may have one. ")
        + "ListUsers does not return per-user MFA settings in AWS (only AdminGetUser does, billed per user: not "
        "called over the pool), so how many users use each factor is unknown. Visible: "
        f"{options} users with legacy SMS MFAOptions, {phones} with a verified phone (SMS MFA possible). "
        f"{MFA_POLICY_EFFECT[mfa_policy]}"
    )
    facts = {"mfa_configuration": mfa_configuration, "legacy_sms_mfa_options": options, "verified_phones": phones}
    return Finding("mfa_users", "warning", counts["users"] if pool_wide else options, detail, facts=facts)


def mfa_refused_finding(
    users: pd.DataFrame, mfa_configuration: str, mfa_policy: str, case_sensitive: bool, show: records.Masker
) -> Finding | None:
    """Users mfa_policy refuse will refuse, counted by step 5's own classification of this pool against an
    empty new one, so the audit predicts the report's 'MFA user and mfa_policy is refuse' count."""
    if mfa_policy != "refuse":
        return None
    classified = report.classify(
        users, users.iloc[0:0], case_sensitive, mfa_policy=mfa_policy, pool_mfa=mfa_configuration or None
    )
    selected = pd.Series(classified["reason"].astype(str) == report.MFA_REFUSED, index=users.index)
    # With the old pool's MFA ON everyone is refused, lazily and at import alike: nobody could move at all.
    severity = "blocker" if mfa_configuration == "ON" else "warning"
    detail = report.mfa_note(mfa_policy, mfa_configuration)
    return user_finding("mfa_refused_users", users, selected, show, detail, severity)


def unused_map_sources(users: pd.DataFrame, attribute_map: Mapping[str, AttributeRule]) -> Finding | None:
    """attribute_map entries reading an old attribute no old user holds (a value that is blank counts as none)."""
    return unused_sources_finding(attribute_map, held_attributes(users, map_sources(attribute_map)), len(users))


def map_sources(attribute_map: Mapping[str, AttributeRule]) -> list[str]:
    """The old attributes attribute_map reads (the username aside: every user has one)."""
    return list(dict.fromkeys(s for rule in attribute_map.values() for s in rule.sources if s != "username"))


def held_attributes(users: pd.DataFrame, names: Iterable[str]) -> set[str]:
    """Those of ``names`` some user holds, blank values counting as none."""
    return {name for name in names if (text(users, name).str.strip() != "").any()}


def unused_sources_finding(attribute_map: Mapping[str, AttributeRule], held: set[str], n_users: int) -> Finding | None:
    """``unused_map_sources`` from the attributes held by some user (``held_attributes`` over every batch)."""
    unused = {
        target: [s for s in rule.sources if s != "username" and s not in held] for target, rule in attribute_map.items()
    }
    unused = {target: sources for target, sources in unused.items() if sources}
    if not unused:
        return None
    entries = [f"attribute_map {target}: {', '.join(sources)}" for target, sources in unused.items()]
    detail = (
        f"no old user of {n_users} has {'; '.join(entries)}: these entries read nothing there, so every user "
        "gets the rule's other sources, the old value of the same name, or its default"
    )
    return Finding("attribute_map_unused_source", "warning", n_users, detail, examples=tuple(entries[:EXAMPLES]),
                   facts=unused)  # fmt: skip


# --- what the trigger will send, checked against the new schema ---------------------------------------------


@dataclass(frozen=True)
class TargetSchema:
    """What the new pool's schema accepts: required names, string limits and custom attribute types."""

    required: tuple[str, ...]
    max_length: Mapping[str, int]
    types: Mapping[str, str]  # custom attributes only: String, Number, Boolean, DateTime
    number_bounds: Mapping[str, tuple[float | None, float | None]]

    def limit(self, name: str) -> int:
        return self.max_length.get(name, DEFAULT_MAX_LENGTH)


def value_problems(name: str, value: str, schema: TargetSchema) -> list[tuple[str, str]]:
    """(finding id, what is wrong) for one attribute value the new schema would reject; the value itself is
    left out, the caller shows it masked."""
    problems = []
    if name == "phone_number" and not E164.match(value):
        problems.append(("invalid_phone_numbers", "not E.164"))
    kind = schema.types.get(name, "String")
    if kind == "String" and len(value) > schema.limit(name):
        problems.append(("values_too_long", f"{len(value)} characters > {schema.limit(name)}"))
    if kind == "Number":
        low, high = schema.number_bounds.get(name, (None, None))
        if not NUMBER.match(value):
            problems.append(("custom_attribute_type_mismatch", "not a Number"))
        elif (low is not None and float(value) < low) or (high is not None and float(value) > high):
            problems.append(("custom_attribute_type_mismatch", f"outside {low}..{high}"))
    if kind == "Boolean" and value.lower() not in ("true", "false", "1", "0"):
        problems.append(("custom_attribute_type_mismatch", "not a Boolean"))
    return problems


ATTRIBUTE_KINDS = (
    "missing_required_attributes",
    "invalid_phone_numbers",
    "values_too_long",
    "custom_attribute_type_mismatch",
    "attributes_dropped",
)


@dataclass
class _Tally:
    """Users hit by one kind of attribute problem: the count, a few examples, and the count per attribute."""

    users: int = 0
    examples: list[str] = field(default_factory=list)
    by_attribute: dict[str, int] = field(default_factory=dict)

    def add(self, names: Iterable[str], example: str) -> None:
        self.users += 1
        if len(self.examples) < EXAMPLES:
            self.examples.append(example)
        for name in names:
            self.by_attribute[name] = self.by_attribute.get(name, 0) + 1


def attribute_findings(
    usernames: Sequence[str],
    old: Sequence[Mapping[str, str]],
    predict: Callable[[str, Mapping[str, str]], Mapping[str, str]],
    schema: TargetSchema,
    show: records.Masker,
) -> list[Finding]:
    """Runs ``predict`` (the trigger's own attribute mapping) for every user and checks what it would send
    against the new schema: missing required attributes, values it rejects, attributes left behind."""
    tallies = {kind_id: _Tally() for kind_id in ATTRIBUTE_KINDS}
    for username, attributes in zip(usernames, old, strict=True):
        sent = predict(username, attributes)
        user = show.text(username)
        missing = [name for name in schema.required if not sent.get(name)]
        if missing:
            tallies["missing_required_attributes"].add(missing, f"{user}: {', '.join(missing)}")
        problems: dict[str, list[tuple[str, str]]] = {}
        for name, value in sent.items():
            for kind_id, why in value_problems(name, value, schema):
                problems.setdefault(kind_id, []).append((name, f"{name} {show.value(name, value)!r} {why}"))
        for kind_id, items in problems.items():
            tallies[kind_id].add([n for n, _ in items], f"{user}: " + ", ".join(text for _, text in items))
        dropped = sorted(n for n in attributes if n not in sent and n not in ("sub", "identities"))
        if dropped:
            tallies["attributes_dropped"].add(dropped, f"{user}: {', '.join(dropped)}")
    return [
        Finding(
            kind_id,
            KINDS[kind_id].severity,
            tally.users,
            attribute_detail(tally.users, tally.by_attribute),
            examples=tuple(tally.examples),
            facts=dict(tally.by_attribute),
        )
        for kind_id, tally in tallies.items()
        if tally.users
    ]


def attribute_detail(users: int, by_attribute: Mapping[str, int]) -> str:
    by_name = ", ".join(f"{name}: {n}" for name, n in sorted(by_attribute.items()))
    return f"{users} users after the trigger's own attribute mapping ({by_name})"
