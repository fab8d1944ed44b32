"""What a notebook receives: one source of defaults (``Params``), one file per environment.

- Every notebook's ``parameters`` cell is rendered from ``Params``' defaults by ``parameters_cell`` (a test
  keeps them equal), in the order an operator changes them, each with one line of help.
- The runner hands papermill the complete, validated set (``injected``): what a notebook received is exactly
  what run.json records.
- A notebook run by hand (no runner, so no ``run_dir``) resolves its values in ``by_hand``: the parameters
  cell's own edits first, then ``params/<env>.yaml``, then the defaults; except that ``dry_run`` and
  ``cutover_confirm`` come from the cell alone (by hand, a write needs the cell's own ``dry_run = False``,
  and step 6 asks its button), and the records go to a folder of their own, ``outputs/<env>/manual-<id>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict
from pathlib import Path
from typing import Any

from . import project, records
from .params import FIELDS, Params, load_yaml, validate

# (name, help) in the order an operator reads and changes them; every Params field appears once.
HELP: tuple[tuple[str, str], ...] = (
    ("env", "environment: params/<env>.yaml is read by hand; records go to outputs/<env>/"),
    ("dry_run", "write nothing unless False (by hand: set it here; the file's value is not used)"),
    ("mask_pii", "mask emails, phone numbers and names in saved outputs"),
    ("protected", "rollback --delete refuses unless False; None: protected unless env is named like a sandbox"),
    ("region", "Region of both pools"),
    ("aws_profile", "named AWS profile; None: boto3's default chain (AWS_ENDPOINT_URL for the local AWS)"),
    ("aws_account_id", 'e.g. "012345678901": every step refuses to act in any other account; None: no check'),
    ("old_user_pool_id", "the pool users come from, e.g. eu-west-1_AbC123xyz"),
    ("old_client_id", "old-pool client allowing ALLOW_ADMIN_USER_PASSWORD_AUTH, without a secret"),
    ("new_pool_name", "the new pool, found again by this name and a tag naming the old pool"),
    ("migration_function_name", "Lambda function of the trigger (role: <name>-role)"),
    ("target_case_sensitive", "the new pool's username case sensitivity (fixed at creation)"),
    ("target_required_attributes", "attributes the new pool requires (fixed at creation)"),
    ("target_username_attributes", "sign-in by [email] / [phone_number] instead of a username; None: as the old"),
    ("target_alias_attributes", "aliases: [email, phone_number, preferred_username]; None: as the old pool"),
    ("target_custom_attributes", 'new custom attributes {name: "String"|"Number"|...}, without "custom:"'),
    (
        "target_auto_verified_attributes",
        "[email] / [phone_number] Cognito verifies (imports need one); None: as the old",
    ),
    ("target_mfa_configuration", "OFF | ON | OPTIONAL; None: as the old pool (its factors are copied)"),
    ("target_policies", 'merged over the old pool\'s Policies, e.g. {"PasswordPolicy": {"MinimumLength": 12}}'),
    ("target_email_configuration", "merged over the old pool's EmailConfiguration (SES source, From, ...)"),
    ("target_sms_configuration", "merged over the old pool's SmsConfiguration (SnsCallerArn, ExternalId, ...)"),
    ("target_deletion_protection", "ACTIVE | INACTIVE; None: as the old pool"),
    ("carry_triggers", "old-pool LambdaConfig keys to carry to the new pool; [] carries none"),
    ("new_domain_prefix", "hosted-UI domain prefix of the new pool; None: no domain"),
    ("attribute_defaults", 'values for required attributes old users lack, e.g. {"name": "Unknown"}'),
    ("attribute_map", 'trigger: new attribute -> old name, [first, non-empty], or {"join": [...], "default": "x"}'),
    ("legacy_sub_attribute", 'custom attribute keeping the old sub, e.g. "custom:legacy_sub" (step 2 declares it)'),
    ("old_role_arn", "role the trigger assumes to read an old pool in another account (None: its own role)"),
    ("old_external_id", "external id that role's trust policy requires (configuration, not a secret)"),
    ("mfa_policy", "MFA users: reset_required | sms | refuse"),
    ("accept_findings", "audit blockers accepted knowingly, by finding id (see the audit's findings table)"),
    ("list_rate_limit", "requests/s for ListUsers / ListUsersInGroup (quota 30, shared with production)"),
    ("rate_limits", 'requests/s per other quota category, e.g. {"UserRead": 60}; default: half the quota'),
    ("snapshot_resume_hours", "a pool read stopped part-way is resumed by a re-run within this many hours; 0: never"),
    ("credentials_wait_minutes", "expired credentials mid-read: wait this long for renewed ones, then go on; 0: stop"),
    ("report_filter_group", 'step 5\'s table under papermill: only this group ("": all); JupyterLab: dropdowns'),
    ("report_filter_status", 'step 5\'s table under papermill: only this old-pool status ("": all)'),
    ("cutover_confirm", "step 6 writes when True and dry_run is False (by hand: its button asks instead)"),
    ("cutover_keep_group_copy", "step 6 keeps the PostAuthentication group-copy trigger (imported users need it)"),
    ("cutover_min_quiet_days", "step 6 writes only after this many days without a lazy migration"),
    ("cutover_accept_unimported", "stragglers step 6 may leave behind and still detach: masked names or finding ids"),
    ("run_dir", "where the records go; the runner sets it (by hand: outputs/<env>/manual-<id>)"),
)
# By hand these come from the cell alone: a write is asked for where the operator can see it.
CELL_ONLY = ("dry_run", "cutover_confirm", "run_dir")
HEADER = (
    "# Parameters (docs/parameters.md). Under the runner papermill replaces every value; by hand, your edits here\n"
    "# come first, then params/<env>.yaml, then these defaults, except dry_run and cutover_confirm (this cell's)."
)


def default(name: str) -> Any:
    spec = FIELDS[name]
    value = spec.default_factory() if spec.default_factory is not MISSING else spec.default
    return list(value) if isinstance(value, tuple) else value


def literal(value: Any) -> str:
    """A Python literal as a notebook cell shows it (lists, not tuples)."""
    return json.dumps(value) if isinstance(value, (str, list, dict)) else repr(value)


def parameters_cell() -> str:
    """The source of every notebook's ``parameters`` cell: each parameter, its default and its help."""
    lines = [f"{name} = {literal(default(name))}  # {text}" for name, text in HELP]
    return HEADER + "\n" + "\n".join(lines)


def injected(params: Params) -> dict[str, Any]:
    """The complete parameter set for papermill (and run.json), JSON-ready: tuples as lists."""
    return json.loads(json.dumps(asdict(params), default=list))


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True, default=list) == json.dumps(b, sort_keys=True, default=list)


def by_hand(cell: Mapping[str, Any], outputs: Path | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The values of a notebook run by hand, and where each came from ('cell', the file's name, 'default').
    A cell value other than its default is an edit and wins; the environment's file fills the rest."""
    env = str(cell.get("env") or default("env"))
    root = project.root()  # the project's, whichever directory JupyterLab runs the kernel in
    path = root / "params" / f"{env}.yaml"
    from_file = load_yaml(path) if path.is_file() else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in FIELDS:
        edited = name in cell and not _same(cell[name], default(name))
        if edited or name in CELL_ONLY or name not in from_file:
            values[name] = cell.get(name, default(name))
            sources[name] = "cell" if edited else "default"
        else:
            values[name], sources[name] = from_file[name], f"params/{env}.yaml"
    if not values["run_dir"]:
        values["run_dir"] = str(_manual_dir((outputs or root / "outputs") / env))
    return values, sources


def _manual_dir(env_outputs: Path) -> Path:
    """A folder of its own for a run by hand, so hand runs never overwrite each other."""
    base = f"manual-{records.new_run_id()}"
    for attempt in range(1, 1000):
        folder = env_outputs / (base if attempt == 1 else f"{base}-{attempt}")
        if not folder.exists():
            return folder
    raise RuntimeError(f"{env_outputs}: cannot name a new folder for a run by hand")


def from_namespace(namespace: Mapping[str, Any]) -> Params:
    """Params for a notebook: the runner's complete set as injected, or, by hand, ``by_hand``'s values."""
    cell = {k: v for k, v in namespace.items() if k in FIELDS}
    if cell.get("run_dir"):
        return validate(cell)
    values, _ = by_hand(cell)
    return validate(values)


def sync_notebooks(folder: Path | None = None) -> list[Path]:
    """Rewrites each notebook's ``parameters`` cell from ``Params`` (after a parameter is added or its default
    changes); returns the notebooks it changed. ``folder``: the project's notebooks/ unless given."""
    import nbformat  # only here: the library itself does not need it

    folder = folder or project.root() / "notebooks"
    changed = []
    for path in sorted(folder.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        (cell,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        if cell.source != parameters_cell():
            cell.source = parameters_cell()
            nbformat.write(notebook, path)
            changed.append(path)
    return changed


if __name__ == "__main__":  # python -m cognito_migration.notebook_params
    for written in sync_notebooks():
        print(f"rewrote the parameters cell of {written.name}")
