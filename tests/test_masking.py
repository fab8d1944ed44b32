"""Personal data is masked in saved outputs by default; `mask_pii: false` is the explicit way to keep it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from cli_support import run_runbook
from cognito_migration.local.legacy import generate_users
from cognito_migration.runbook import ROOT

LOCAL = yaml.safe_load((ROOT / "params" / "local.yaml").read_text())
USERS, SEED = 60, 7


def audit_outputs(tmp_path: Path, mask_pii: bool) -> str:
    params_file = tmp_path / "local.yaml"
    params_file.write_text(yaml.safe_dump({**LOCAL, "mask_pii": mask_pii}))
    done = run_runbook(
        "--env",
        "local",
        "--params",
        str(params_file),
        "--outputs",
        str(tmp_path / "outputs"),
        "--users",
        str(USERS),
        "--seed",
        str(SEED),
        "--steps",
        "01_audit_old_pool",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (run,) = [p for p in (tmp_path / "outputs" / "local").iterdir() if p.is_dir()]
    texts = [pd.read_parquet(p).to_csv() for p in run.glob("*.parquet")]
    texts += [p.read_text() for p in run.iterdir() if p.suffix in (".json", ".ipynb", ".html")]
    texts.append((run.parent / "index.html").read_text())
    return "\n".join(texts)


@pytest.mark.parametrize("mask_pii", [True, False])
def test_emails_reach_the_outputs_only_when_masking_is_off(tmp_path: Path, mask_pii: bool) -> None:
    emails = [u.attributes["email"] for u in generate_users(USERS, SEED) if u.attributes.get("email")]
    text = audit_outputs(tmp_path, mask_pii)
    found = [e for e in emails if e in text]
    if mask_pii:
        assert found == []
    else:
        assert len(found) == len(emails), "mask_pii: false keeps every address in the snapshot"
