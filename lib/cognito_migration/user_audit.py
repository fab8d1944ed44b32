"""Step 1's findings about the users: which detectors run for these parameters, over a pool of any size.

Up to ``Batching.in_memory`` users (the demo's pool, and most) the users are one frame and every detector
reads it whole, as it always has. Above, they are read in batches of ``Batching.rows``, in memory bounded
whatever the pool's size: the row-wise detectors run on each batch and their findings merge
(``findings.merge``); the pool-wide ones read counts summed over the batches; the cross-user ones (case
collisions, alias conflicts) run on the users who share a value, found out of core (``shared_values``). Each
rule has one implementation, its detector in ``user_findings``, and both ways give the same findings, in the
catalog's order.

The users come as a frame or as the read's snapshot folder (``snapshot.Snapshot``, ``audit.read_users``):
either is read in batches when it is too large.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from . import records, report, shared_values, user_findings
from .findings import FINDING_IDS, Finding, merge
from .params import Params
from .pool import NEVER_DECLARED
from .shared_values import GroupsRecord, Shared
from .snapshot import STANDARD_ATTRIBUTES, Snapshot
from .trigger import migration_trigger
from .user_findings import TargetSchema

Users = pd.DataFrame | Snapshot


@dataclass(frozen=True)
class Batching:
    """How a pool too large for memory is read; tests shrink it to take that way with small pools."""

    in_memory: int = 200_000  # up to this many users, one frame (about 0.6 GB at the most, with the findings)
    rows: int = 50_000  # users per batch
    shared: shared_values.Limits = field(default_factory=shared_values.Limits)


BATCHING = Batching()


@dataclass(frozen=True)
class Context:
    """What the user findings depend on besides the users: the parameters, the new pool as step 2 will create
    it, the old pool's MFA, the trigger's settings (None when it refuses them) and how records show people."""

    params: Params
    target: Mapping[str, Any]
    schema: TargetSchema
    pool_mfa: str
    mfa_factors: Sequence[str]
    settings: migration_trigger.Settings | None
    show: records.Masker

    @property
    def sign_in(self) -> set[str]:
        return set(self.target.get("UsernameAttributes") or []) | set(self.target.get("AliasAttributes") or [])


@dataclass(frozen=True)
class UserFindings:
    findings: list[Finding]
    arriving_reset_required: int
    groups: GroupsRecord | None = None  # every colliding group, when the findings list only the first


# --- the users, whatever holds them ------------------------------------------------------------------------


def count(users: Users) -> int:
    return len(users) if isinstance(users, pd.DataFrame) else users.rows


def columns(users: Users) -> list[str]:
    """The users' columns; a snapshot's, as its frame has them (no attribute nobody holds)."""
    return list(users.columns) if isinstance(users, pd.DataFrame) else users.present_columns()


def arrow_schema(users: Users) -> pa.Schema:
    if isinstance(users, Snapshot):
        return pa.schema([users.schema.field(name) for name in users.present_columns()])
    return pa.Schema.from_pandas(users.iloc[0:0], preserve_index=False)


def batches(users: Users, columns: Sequence[str] | None = None, rows: int | None = None) -> Iterator[pd.DataFrame]:
    """The users in frames of at most ``rows`` (``BATCHING.rows``), in the pool's order."""
    rows = rows or BATCHING.rows
    if isinstance(users, Snapshot):
        yield from users.batches(columns or users.present_columns(), rows)
        return
    frame = users[list(columns)] if columns else users
    for start in range(0, len(frame), rows):
        yield frame.iloc[start : start + rows]


def whole(users: Users, batching: Batching | None = None) -> pd.DataFrame | None:
    """The users as one frame when there are at most ``batching.in_memory`` (``BATCHING``'s), else None: read
    them in batches."""
    if count(users) > (batching or BATCHING).in_memory:
        return None
    return users if isinstance(users, pd.DataFrame) else users.frame()


# --- the detectors ---------------------------------------------------------------------------------------------


def shared_detectors(context: Context) -> list[Shared]:
    """The cross-user detectors: case collisions (a case-insensitive new pool) and alias conflicts."""
    sign_in, show, case_sensitive = context.sign_in, context.show, context.params.target_case_sensitive
    detectors = []
    if not case_sensitive:
        for column, severity in (
            ("username", "blocker"),
            ("email", "blocker" if "email" in sign_in else "warning"),
            ("preferred_username", "blocker" if "preferred_username" in sign_in else "info"),
        ):
            kind_id = f"{column}_case_collisions"
            detect = partial(user_findings.collision_finding, kind_id, column=column, severity=severity, show=show)
            detectors.append(
                Shared(
                    (column,),
                    lambda values, _: user_findings.case_key(values),
                    detect,
                    partial(_collision_detail, column),
                )
            )
    detectors.append(
        Shared(
            ("email", "phone_number"),
            partial(user_findings.alias_key, case_sensitive=case_sensitive),
            partial(user_findings.alias_conflict_finding, case_sensitive=case_sensitive, sign_in=sign_in, show=show),
            lambda merged, groups: user_findings.alias_verdict(merged.facts, groups, sign_in)[1],
        )
    )
    return detectors


def _collision_detail(column: str, merged: Finding, groups: int) -> str:
    return user_findings.collision_detail(column, merged.count, groups)


def row_findings(users: pd.DataFrame, context: Context) -> list[Finding | None]:
    """The detectors that judge each user alone: right over any batch of users."""
    params, show = context.params, context.show
    found: list[Finding | None] = []
    if "email" in (context.target.get("AliasAttributes") or []):
        is_email, _ = report.alias_refusals(users, np.zeros(len(users), dtype=bool), ("email",), True)
        found.append(
            user_findings.user_finding(
                "usernames_are_emails",
                users,
                pd.Series(is_email, index=users.index),
                show,
                "the new pool takes email aliases: the trigger refuses a username that is an email address",
            )
        )
    if context.settings is not None:
        found += user_findings.attribute_findings(
            list(users["username"]), old_attributes(users), predictor(context.settings), context.schema, show
        )
    found += user_findings.status_findings(users, show)
    found.append(
        user_findings.mfa_refused_finding(
            users, context.pool_mfa, params.mfa_policy, params.target_case_sensitive, show
        )
    )
    return found


def attribute_map(context: Context) -> Mapping[str, migration_trigger.AttributeRule]:
    return migration_trigger.parse_attribute_map(context.params.attribute_map)


def in_catalog_order(found: Sequence[Finding | None]) -> list[Finding]:
    return sorted((f for f in found if f is not None), key=lambda f: FINDING_IDS.index(f.id))


# --- one frame, or batches -------------------------------------------------------------------------------------


def find(users: Users, context: Context, batching: Batching | None = None) -> UserFindings:
    """Every user finding, in the catalog's order, with the users arriving RESET_REQUIRED whatever
    mfa_policy says."""
    batching = batching or BATCHING
    frame = whole(users, batching)
    if frame is None:
        return _find_in_batches(users, context, batching)
    params = context.params
    found = [
        *(detector.detect(frame) for detector in shared_detectors(context)),
        *row_findings(frame, context),
        user_findings.unused_map_sources(frame, attribute_map(context)),
        user_findings.mfa_finding(frame, context.pool_mfa, context.mfa_factors, params.mfa_policy),
    ]
    return UserFindings(in_catalog_order(found), arriving_reset_required(frame))


def _find_in_batches(users: Users, context: Context, batching: Batching) -> UserFindings:
    parts: dict[str, list[Finding]] = defaultdict(list)
    totals: Counter[str] = Counter()
    sources = user_findings.map_sources(attribute_map(context))
    held: set[str] = set()
    detectors = shared_detectors(context)
    work = Path(tempfile.mkdtemp(prefix="cognito-audit-"))  # owner-only; holds personal data until removed
    record = Path(tempfile.mkdtemp(prefix="cognito-audit-groups-")) / shared_values.RECORD
    try:
        with shared_values.Spill(work, detectors) as spill:
            for batch in batches(users, rows=batching.rows):
                for finding in row_findings(batch, context):
                    if finding is not None:
                        parts[finding.id].append(finding)
                totals.update(user_findings.mfa_counts(batch))
                totals["arriving_reset_required"] += arriving_reset_required(batch)
                totals["stranded"] += int(user_findings.stranded_users(batch).sum())
                held |= user_findings.held_attributes(batch, sources)
                spill.add(batch)
        cross_user, groups = shared_values.find(spill, detectors, record, batching.shared)
    except BaseException:
        shutil.rmtree(record.parent, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    renders = _renders(totals)
    found = [
        *cross_user,
        *(merge(kind_parts, renders.get(kind_id)) for kind_id, kind_parts in parts.items()),
        user_findings.unused_sources_finding(attribute_map(context), held, totals["users"]),
        user_findings.mfa_counts_finding(totals, context.pool_mfa, context.mfa_factors, context.params.mfa_policy),
    ]
    return UserFindings(in_catalog_order(found), totals["arriving_reset_required"], groups)


def _renders(totals: Mapping[str, int]) -> dict[str, Callable[[Finding], str]]:
    """The row-wise findings whose detail states totals, and how to write it from the merged finding."""

    def attributes(merged: Finding) -> str:
        return user_findings.attribute_detail(merged.count, merged.facts)

    def no_contact(merged: Finding) -> str:
        return user_findings.no_contact_detail(totals["stranded"])

    return {**dict.fromkeys(user_findings.ATTRIBUTE_KINDS, attributes), "no_verified_contact": no_contact}


# --- what the trigger will send, and who arrives RESET_REQUIRED ----------------------------------------------------


def arriving_reset_required(users: pd.DataFrame) -> int:
    """Users the trigger will create RESET_REQUIRED whatever mfa_policy says: their old password is not theirs
    (FORCE_CHANGE_PASSWORD) or must be reset (RESET_REQUIRED)."""
    if users.empty or "status" not in users.columns:
        return 0
    return int(users["status"].isin(["FORCE_CHANGE_PASSWORD", "RESET_REQUIRED"]).sum())


def is_attribute(column: str) -> bool:
    return column in STANDARD_ATTRIBUTES or column in NEVER_DECLARED or column.startswith(("custom:", "dev:"))


def old_attributes(users: pd.DataFrame) -> list[dict[str, str]]:
    """Each user's attributes as ListUsers returned them (the trigger reads the same through AdminGetUser)."""
    columns = [c for c in users.columns if is_attribute(c)]
    # Column by column into Python objects first: iterating Arrow-backed rows costs a call per value.
    values = [users[c].to_numpy(dtype=object) for c in columns]
    rows = zip(*values, strict=True) if values else repeat((), len(users))
    return [{c: v for c, v in zip(columns, row, strict=True) if isinstance(v, str) and v} for row in rows]


def predictor(settings: migration_trigger.Settings) -> Callable[[str, Mapping[str, str]], Mapping[str, str]]:
    """What the trigger would send for a user (old username, old attributes), by its own pure function."""

    def predict(username: str, attributes: Mapping[str, str]) -> Mapping[str, str]:
        return migration_trigger.build_user_attributes(
            [{"Name": k, "Value": v} for k, v in attributes.items()],
            settings.allowed_attributes,
            settings.attribute_defaults,
            settings.legacy_sub_attribute,
            attribute_map=settings.attribute_map,
            username=username,
        )

    return predict
