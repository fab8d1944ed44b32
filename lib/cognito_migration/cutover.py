"""Step 6: finish the migration deliberately.

A lazy migration never ends by itself. The cutover reads both pools, checks readiness (migrated share,
days since the last lazy migration, open audit findings), then, behind ``dry_run`` AND an explicit
confirmation, imports the stragglers with Cognito user import jobs (they arrive RESET_REQUIRED), reads the
new pool back, and only when every straggler arrived (or is accepted by name as left behind) detaches the
migration trigger with a read-modify-write UpdateUserPool (``attachment.detach``) and keeps or drops the
group-copy PostAuthentication trigger: a user who is neither migrated nor imported can still arrive lazily
while the trigger stays. The old pool is never deleted here. Returns data; does not print.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from . import (
    arrivals,
    attachment,
    aws,
    comparison,
    deploy,
    identity,
    records,
    report,
    scan,
    snapshot_store,
    stragglers,
    user_import,
)
from .aws import error_code
from .buckets import Users, frames
from .checks import Check
from .comparison import PoolComparison
from .params import Params
from .snapshot import Snapshot


class CutoverRefused(RuntimeError):
    """The cutover was asked to write while a readiness check refuses it."""


@dataclass
class State:
    """Both pools as the cutover found them (frames, or snapshots on disk), and compared."""

    old_pool: Mapping[str, Any]
    new_pool: Mapping[str, Any]
    old_users: Users
    new_users: Users
    compared: PoolComparison
    # The reads' working copies (unmasked), by what they read: kept until cutover.save has written the record.
    reads: dict[str, Snapshot] = field(default_factory=dict, repr=False)

    @property
    def last_migration(self) -> pd.Timestamp | None:
        return self.compared.last_migration


def read_state(conn: aws.Connections, params: Params, new_pool: dict[str, Any]) -> State:
    """Both pools read once (ListUsers pages under the rate budget, each into its snapshot, resuming an
    unfinished one) and compared as the report does (``comparison.compare``: in memory, or a bucket at a time
    for the largest pools)."""
    old_pool = conn.cognito.describe_user_pool(UserPoolId=params.old_user_pool_id)["UserPool"]
    store = snapshot_store.SnapshotStore.of(params)
    reads = {
        "old pool": scan.read_snapshot(conn.cognito, old_pool, store, conn.list_limiter, "old pool users"),
        "new pool": scan.read_snapshot(conn.cognito, new_pool, store, conn.list_limiter, "new pool users"),
    }
    old_users, new_users = comparison.users_of(reads["old pool"]), comparison.users_of(reads["new pool"])
    # Users an earlier cutover imported are not lazy migrations: a retry of a failed import must not wait
    # cutover_min_quiet_days because of the import itself.
    imports = user_import.import_windows(conn.cognito, new_pool["Id"])
    compared = comparison.compare(old_users, new_users, params, old_pool, new_pool, imports)
    return State(old_pool, new_pool, old_users, new_users, compared, reads)


# --- readiness -------------------------------------------------------------------------------------------


def open_findings(run_dir: Path) -> tuple[list[dict[str, Any]], str | None]:
    """The audit's unresolved findings (blockers not accepted, warnings) from ``findings.json`` of this run,
    or else of the environment's newest run that has one; and which file they came from."""
    others = sorted(run_dir.parent.glob("*/findings.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    candidates = [run_dir / "findings.json", *others]
    source = next((p for p in candidates if p.is_file()), None)
    if source is None:
        return [], None
    found = json.loads(source.read_text())
    found = found.get("findings", []) if isinstance(found, dict) else found
    unresolved = [
        f
        for f in found
        if f.get("severity") in ("blocker", "warning") and not f.get("accepted") and f.get("count", 1) != 0
    ]
    return unresolved, f"{source.parent.name}/{source.name}"


def readiness(state: State, params: Params, now: datetime | None = None) -> list[Check]:
    """The checklist before writing. Unless this is a dry run, a recent lazy migration or an open audit
    blocker stops the step, whichever way the write would be confirmed (``cutover_confirm`` or JupyterLab's
    button): a confirmation never passes a check. In a dry run they are only shown."""
    totals = state.compared.summary.set_index("state")["users"]
    users = int(totals.sum()) or 1
    migratable = int(totals[report.MIGRATED] + totals[report.NOT_YET]) or 1
    now = now or datetime.now(UTC)
    quiet = (
        None if state.last_migration is None else (now - state.last_migration.to_pydatetime()).total_seconds() / 86400
    )
    findings, source = open_findings(params.records_dir)
    blockers = [f["id"] for f in findings if f.get("severity") == "blocker"]
    warnings = [f["id"] for f in findings if f.get("severity") == "warning"]
    severity = "warning" if params.dry_run else "blocker"
    return [
        Check(
            "migrated share",
            True,
            "info",
            f"{100 * totals[report.MIGRATED] / users:.1f}% of old-pool users, "
            f"{100 * totals[report.MIGRATED] / migratable:.1f}% of those who can migrate lazily; "
            f"{int(totals[report.NOT_YET])} not yet, {int(totals[report.CANNOT])} cannot",
        ),
        Check(
            f"no lazy migration for {params.cutover_min_quiet_days:g} days",
            quiet is None or quiet >= params.cutover_min_quiet_days,
            severity,
            "nobody migrated yet"
            if quiet is None
            else f"the last one {quiet:.1f} days ago ({state.last_migration:%Y-%m-%d %H:%M} UTC)",
            "users are still arriving lazily: wait, or lower cutover_min_quiet_days knowingly "
            "(dry_run: true shows the plan meanwhile)",
        ),
        Check(
            "no open audit blocker",
            not blockers,
            severity,
            f"{source}: {', '.join(blockers) or 'none'}" if source else "no findings.json in this environment's runs",
            "fix them (re-run step 1), or accept them by name in accept_findings (dry_run: true shows the plan "
            "meanwhile)",
        ),
        Check("audit warnings read", True, "info", ", ".join(warnings) or "none", "read the audit's findings table"),
    ]


# --- the plan --------------------------------------------------------------------------------------------


@dataclass
class Cutover:
    """What step 6 will do; ``execute`` does it (called by the confirmation, never directly by a notebook)."""

    conn: aws.Connections
    params: Params
    new_pool: Mapping[str, Any]
    import_file: stragglers.ImportFile
    lambda_config: dict[str, Any]
    ready: list[Check]  # the readiness checks: execute refuses while one of them fails
    result: dict[str, Any] | None = None
    after: Users | None = field(default=None, repr=False)  # the new pool once the cutover ran
    reads: dict[str, Snapshot] = field(default_factory=dict, repr=False)  # State's, and the read of ``after``
    # What each read resumed, kept when its snapshot is deleted: the record is saved again after the button.
    read_summaries: dict[str, Any] = field(default_factory=dict, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @property
    def dropped_triggers(self) -> list[str]:
        """UserMigration always; PostAuthentication when not kept and it is the migration function."""
        migration = self.lambda_config.get("UserMigration")
        drop = ["UserMigration"] if migration else []
        if (
            not self.params.cutover_keep_group_copy
            and migration
            and self.lambda_config.get("PostAuthentication") == migration
        ):
            drop.append("PostAuthentication")
        return drop

    @property
    def actions(self) -> pd.DataFrame:
        pool_id = self.new_pool["Id"]
        post_auth = "PostAuthentication" in self.lambda_config
        rows = [
            ("import job", self._import_plan(), pool_id),
            ("detach trigger", "UserMigration" if "UserMigration" in self.lambda_config else "none attached", pool_id),
            (
                "group-copy trigger",
                ("drop" if "PostAuthentication" in self.dropped_triggers else "keep") if post_auth else "none attached",
                pool_id,
            ),
            ("old pool", "kept: this step never deletes it", self.params.old_user_pool_id),
        ]
        return pd.DataFrame(rows, columns=["action", "what", "pool"])

    def _import_plan(self) -> str:
        if self.import_file.cannot_import:  # the detach below then waits for the users it leaves behind
            return f"none will run: {self.import_file.cannot_import}"
        return f"{self.import_file.users} users in {len(self.import_file.paths)} file(s)"

    def execute(self) -> dict[str, Any]:
        """Imports the stragglers (job by job, to the end), reads the new pool back, then detaches the
        trigger unless a straggler did not arrive (or was left out of the file) and cutover_accept_unimported
        accepts them neither by name nor by the audit finding that explains them. Refuses, writing nothing,
        while a readiness check fails (whoever confirmed)."""
        refusing = [c for c in self.ready if not c.passed and c.severity != "info"]
        if refusing:
            raise CutoverRefused(
                "nothing written: readiness refuses the cutover: "
                + "; ".join(f"{c.name} ({c.detail})" for c in refusing)
            )
        cognito = self.conn.cognito
        account = deploy.account_of(self.new_pool["Arn"])
        role_arn = user_import.ensure_logs_role(
            self.conn.iam, user_import.logs_role_name(self.params), self.params.region, account, self.new_pool["Id"]
        )
        logs = aws.client(self.conn.session, "logs")
        jobs = []
        for number, path in enumerate(self.import_file.paths, 1):
            name = f"cognito-migration-{self.params.records_dir.name}-{number:03d}"
            names = self.import_file.file_usernames(number)  # how the job's log names rows: by line
            jobs.append(self._import(cognito, logs, name, role_arn, path, names))
        store = snapshot_store.SnapshotStore.of(self.params)
        after = scan.read_snapshot(cognito, self.new_pool["Id"], store, self.conn.list_limiter, "new pool users")
        self.reads["new pool after the import"] = after
        self.after = comparison.users_of(after)
        left = left_behind(self.import_file, self.after, self.params, identity.sign_in_attributes(self.new_pool))
        accept = set(self.params.cutover_accept_unimported)
        self.result = {
            "logs_role_arn": role_arn,
            "jobs": jobs,
            "left_behind": [name for name, _ in left],
            "left_behind_by_finding": dict(Counter(why or "unexplained" for _, why in left)),
            "accepted_left_behind": [name for name, why in left if name in accept or why in accept],
            "lambda_config_before": self.lambda_config,
            "lambda_config_after": self.lambda_config,
            "detached": [],
        }
        if len(left) > len(self.result["accepted_left_behind"]):
            return self.result  # the trigger stays: those users can still sign in and migrate lazily
        wanted = {k: v for k, v in self.lambda_config.items() if k not in self.dropped_triggers}
        detached = attachment.detach(cognito, self.new_pool["Id"], wanted, dry_run=False)
        self.result.update(
            lambda_config_before=detached["current_lambda_config"],
            lambda_config_after=wanted,
            detached=self.dropped_triggers,
        )
        return self.result

    def _import(
        self, cognito: Any, logs: Any, name: str, role_arn: str, path: Path, usernames: list[str]
    ) -> dict[str, Any]:
        pool_id = self.new_pool["Id"]
        job = user_import.create_job(cognito, pool_id, name, role_arn, self.sleep)
        user_import.upload(job["PreSignedUrl"], path.read_bytes(), job["JobId"])
        cognito.start_user_import_job(UserPoolId=pool_id, JobId=job["JobId"])
        done = user_import.poll(cognito, pool_id, job["JobId"], self.sleep)
        problems = user_import.job_problems(logs, self.new_pool, done, usernames, self.params.masker())
        return {
            "job_id": done["JobId"],
            "job_name": name,
            "file": path.name,
            "status": done["Status"],
            "imported": int(done.get("ImportedUsers", 0)),
            "skipped": int(done.get("SkippedUsers", 0)),
            "failed": int(done.get("FailedUsers", 0)),
            "message": done.get("CompletionMessage"),
            "problems": problems,
        }


def plan(
    conn: aws.Connections, params: Params, state: State, import_file: stragglers.ImportFile, ready: list[Check]
) -> Cutover:
    described = conn.cognito.describe_user_pool(UserPoolId=state.new_pool["Id"])["UserPool"]
    lambda_config = dict(described.get("LambdaConfig") or {})
    return Cutover(conn, params, described, import_file, lambda_config, ready, reads=dict(state.reads))


def left_behind(
    import_file: stragglers.ImportFile, new_users: Users, params: Params, sign_in: Sequence[str]
) -> list[tuple[str, str]]:
    """The stragglers the trigger is still the only way in for: those of the import file who are not in the
    new pool (looked up by their name in its sign-in model), and the 'not yet' users the file left out (the
    import would refuse them). Each as (name, finding): named as the records name users (masked unless
    mask_pii is false), with the audit finding that explains it ('' if none): cutover_accept_unimported
    accepts a user by either."""
    shown = params.masker().text
    missing: list[tuple[str, str]] = []
    left_out: list[tuple[str, str]] = []
    for people, _, there in arrivals.parts(import_file, new_users, params.target_case_sensitive, sign_in):
        in_file = (people["excluded"] == "").to_numpy(dtype=bool)
        there_now = _keys(people["name"], params.target_case_sensitive).isin(there.index).to_numpy(dtype=bool)
        gone = people[in_file & ~there_now]
        missing += zip(gone["username"], gone["explained"], strict=True)
        out = people[~in_file]
        left_out += zip(out["username"], out["explained"], strict=True)
    return [(shown(user), why) for user, why in [*missing, *left_out]]


def _keys(names: pd.Series, case_sensitive: bool) -> pd.Series:
    """The import file's names as the new pool compares them."""
    return identity.fold(names.astype(object), case_sensitive)


# --- what was done ---------------------------------------------------------------------------------------


def jobs_table(cut: Cutover) -> pd.DataFrame:
    """One row per import job: status and counts (empty until the cutover ran)."""
    columns = ["job_id", "file", "status", "imported", "skipped", "failed", "message"]
    jobs = (cut.result or {}).get("jobs", [])
    return pd.DataFrame([{c: j[c] for c in columns} for j in jobs], columns=columns)


def problems_table(cut: Cutover) -> pd.DataFrame:
    """Every skipped or failed row of every job, the user masked (unless masking is off)."""
    rows = [{"job_id": j["job_id"], **p} for j in (cut.result or {}).get("jobs", []) for p in j["problems"]]
    return pd.DataFrame(rows, columns=["job_id", "line", "outcome", "username", "detail"])


def srp_reminder(cognito: Any, pool_id: str) -> pd.DataFrame:
    """App clients of the new pool that still allow the password flow the migration needed: once the
    trigger is detached, apps should sign in with SRP again (the password never leaves the device)."""
    rows = [
        {
            "client": c.get("ClientName"),
            "client id": c.get("ClientId"),
            "auth flows": ", ".join(sorted(c.get("ExplicitAuthFlows") or [])),
            "to do": "move the app to USER_SRP_AUTH, then remove ALLOW_USER_PASSWORD_AUTH from this client",
        }
        for c in scan.list_clients(cognito, pool_id)
        if "ALLOW_USER_PASSWORD_AUTH" in (c.get("ExplicitAuthFlows") or [])
    ]
    return pd.DataFrame(rows, columns=["client", "client id", "auth flows", "to do"])


def verify(conn: aws.Connections, params: Params, cut: Cutover, state: State, confirmation: str) -> list[Check]:
    """What the cutover promises, read back from AWS: the stragglers in the new pool as RESET_REQUIRED,
    nobody disabled turned enabled, the trigger detached as asked (kept while a straggler is missing), the
    old pool still there. ``confirmation`` is the write's state: a button still waiting fails the gate, so a
    "Run All" in JupyterLab never ends on a passing gate before anyone pressed it."""
    kept = Check(
        "old pool kept", _pool_exists(conn.cognito, params.old_user_pool_id), "blocker", params.old_user_pool_id
    )
    if cut.result is None:
        waiting = confirmation == "waiting for the button"
        return [
            Check(
                "nothing written",
                not waiting,
                "blocker",
                confirmation,
                "press the button above, then run this cell again" if waiting else "see the confirmation above",
            ),
            kept,
        ]
    after = cut.after
    assert after is not None, "execute reads the new pool back before it sets the result"
    described = conn.cognito.describe_user_pool(UserPoolId=cut.new_pool["Id"])["UserPool"]
    lambda_config = described.get("LambdaConfig") or {}
    post_auth_as_asked = ("PostAuthentication" in cut.dropped_triggers) != ("PostAuthentication" in lambda_config)
    jobs = cut.result["jobs"]
    return [
        Check(
            "import jobs succeeded",
            all(j["status"] == "Succeeded" for j in jobs),
            "blocker",
            "; ".join(f"{j['job_id']}: {j['status']}" for j in jobs) or "no stragglers to import",
            "read the job's CompletionMessage, fix the cause, re-run this step",
        ),
        *_arrivals(cut.import_file, jobs, after, state.old_users, params, identity.sign_in_attributes(cut.new_pool)),
        _detached(cut.result, lambda_config),
        Check(
            "group-copy trigger as asked",
            post_auth_as_asked,
            "blocker",
            f"cutover_keep_group_copy: {params.cutover_keep_group_copy}; PostAuthentication "
            + ("attached" if "PostAuthentication" in lambda_config else "not attached"),
            "re-run this step",
        ),
        kept,
    ]


def _arrivals(
    import_file: stragglers.ImportFile,
    jobs: list[dict[str, Any]],
    new_users: Users,
    old_users: Users,
    params: Params,
    sign_in: Sequence[str],
) -> list[Check]:
    """The imported users as the new pool now has them (found by their name in its sign-in model), against
    the import file and the old pool; counted a part at a time (``arrivals.parts``), all of it at once for
    pools that fit."""
    case_sensitive = params.target_case_sensitive
    shown = params.masker().text  # problems name users as the record does
    problems = [p for j in jobs for p in j["problems"]]
    failed = {p["username"] for p in problems if p["outcome"] == "FAILED"}
    skipped = {p["username"] for p in problems if p["outcome"] == "SKIPPED"}  # already there: not imported
    n: Counter[str] = Counter()
    for people, disabled, after in arrivals.parts(import_file, new_users, case_sensitive, sign_in, old_users):
        wanted = people[people["excluded"] == ""]
        keys = _keys(wanted["name"], case_sensitive)
        there = keys.isin(after.index).to_numpy(dtype=bool)
        missing = [shown(u) for u in wanted["username"][~there]]
        imported = [k for u, k in zip(wanted["username"][there], keys[there], strict=True) if shown(u) not in skipped]
        disabled_keys = identity.fold(identity.names(disabled, sign_in, verified_only=True), case_sensitive)
        n.update(
            wanted=len(wanted),
            missing=len(missing),
            unnamed=sum(name not in failed for name in missing),
            failed_missing=len(failed & set(missing)),
            imported=len(imported),
            not_reset=sum(str(after.at[k, "status"]) != "RESET_REQUIRED" for k in imported),
            disabled=len(disabled),
            enabled_now=sum(k in after.index and bool(after.at[k, "enabled"]) for k in disabled_keys.dropna()),
        )
    # The job's own count is the authority: its log names rows too, but a log read can come back short
    # (moto's FilterLogEvents stops at 10,000 events; AWS's log can lag the job's end).
    failed_count = sum(int(j.get("failed") or 0) for j in jobs)
    unexplained = min(n["unnamed"], max(0, n["unnamed"] - (failed_count - n["failed_missing"])))
    return [
        Check(
            "every importable straggler is in the new pool",
            not unexplained,
            "blocker",
            f"{n['wanted'] - n['missing']} of {n['wanted']} there; {failed_count} failed by the job's count "
            f"({len(failed)} named in its log); {unexplained} unexplained",
            "re-run this step",
        ),
        Check(
            "no import failures",
            not failed_count,
            "warning",
            f"{failed_count} rows failed (see the problems table: {len(failed)} named in the job's log)",
            "fix those users' data in the old pool, then import them again",
        ),
        Check(
            "stragglers arrived RESET_REQUIRED",
            not n["not_reset"],
            "blocker",
            f"{n['imported'] - n['not_reset']} of {n['imported']} imported users RESET_REQUIRED",
            "check the import job's log",
        ),
        Check(
            "disabled users were not enabled",
            not n["enabled_now"],
            "blocker",
            f"{n['enabled_now']} of {n['disabled']} disabled old-pool users enabled in the new pool",
            "disable them in the new pool (AdminDisableUser)",
        ),
    ]


def _detached(result: dict[str, Any], lambda_config: Mapping[str, Any]) -> Check:
    left, accepted = result.get("left_behind", []), result.get("accepted_left_behind", [])
    waiting = [u for u in left if u not in accepted]
    if waiting:
        return Check(
            "migration trigger detached",
            False,
            "blocker",
            f"kept attached: {len(waiting)} straggler(s) did not arrive and can still only arrive lazily: "
            + _some(waiting),
            "fix those users' data in the old pool (the problems table says why) and re-run this step at once "
            "(it imports only who is still missing); or accept leaving them behind in cutover_accept_unimported, "
            "by name or by the audit finding that explains them "
            f"({', '.join(f'{k}: {v}' for k, v in result.get('left_behind_by_finding', {}).items())})",
        )
    return Check(
        "migration trigger detached",
        "UserMigration" not in lambda_config,
        "blocker",
        f"LambdaConfig: {sorted(lambda_config) or 'empty'}"
        + (f"; left behind as accepted: {len(accepted)}: {_some(accepted)}" if accepted else ""),
        "re-run this step",
    )


def _some(names: list[str], shown: int = 10) -> str:
    return ", ".join(names[:shown]) + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _pool_exists(cognito: Any, pool_id: str) -> bool:
    try:
        cognito.describe_user_pool(UserPoolId=pool_id)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return False
        raise
    return True


def _read_summaries(cut: Cutover) -> dict[str, Any]:
    """Each read's summary, from its snapshot while it exists, else as an earlier save of this cutover kept it
    (saved again after the button is pressed, once the first save has deleted the snapshots)."""
    cut.read_summaries.update({name: snap.summary() for name, snap in cut.reads.items() if snap.folder.exists()})
    return dict(cut.read_summaries)


def save(params: Params, cut: Cutover, state: str, ready: list[Check], result: list[Check]) -> dict[str, Any]:
    """cutover.json (what was planned, confirmed and done, and what each read resumed; users masked) and
    cutover_users.parquet (the new pool after the cutover, masked); then the reads' unmasked snapshots are
    deleted. The import file itself stays in its own folder."""
    data = {
        "dry_run": params.dry_run,
        "confirmation": state,
        "readiness": [c.__dict__ for c in ready],
        "actions": cut.actions.to_dict("records"),
        "import_file": stragglers.summary(cut.import_file),
        "result": cut.result,
        "checks": [c.__dict__ for c in result],
        "reads": _read_summaries(cut),
    }
    records.save_json(params.records_dir, "cutover", data)
    mask = params.masker()
    if isinstance(cut.after, pd.DataFrame):
        columns = [c for c in ("username", "status", "enabled", "created") if c in cut.after.columns]
        records.save_frame(params.records_dir, "cutover_users", mask.frame(cut.after[columns]))
    elif cut.after is not None and cut.after.folder.exists():  # a snapshot: written batch by batch, once
        columns = [c for c in ("username", "status", "enabled", "created") if c in cut.after.schema.names]
        records.save_frames(params.records_dir, "cutover_users", (mask.frame(b) for b in frames(cut.after, columns)))
    snapshot_store.release(*cut.reads.values())
    return data
