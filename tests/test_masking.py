"""Saved outputs are pseudonymous by default: usernames, emails and phone numbers become HMAC tokens under the
environment's key (outputs/<env>/.mask-key), names are left out; `mask_pii: false` is the explicit way to keep
everything."""

from __future__ import annotations

import hashlib
import hmac
import json
import stat
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cli_support import run_runbook
from cognito_migration import records
from cognito_migration.local import legacy
from cognito_migration.local.legacy import generate_users
from cognito_migration.params import Params

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tests belong to

LOCAL = yaml.safe_load((ROOT / "params" / "local.yaml").read_text())
USERS, SEED = 60, 7
KEY_A, KEY_B = b"\x01" * 32, b"\x02" * 32


# --- the masking itself ---------------------------------------------------------------------------------------


def old_users_frame(count: int = 2000, seed: int = 7) -> pd.DataFrame:
    """The demo pool's users as step 1 reads them: a username and the standard attributes."""
    return pd.DataFrame([{"username": u.username, **u.attributes} for u in generate_users(count, seed)])


def dictionary() -> set[str]:
    """The attacker's list: every first and last name the demo pool draws from, as names and in the shape most
    of its usernames take ("james.smith42"): a better list than any attacker has for a real pool."""
    words: set[str] = set()
    for first in legacy._FIRST:
        for last in legacy._LAST:
            words |= {first, last, first.capitalize(), last.capitalize(), f"{first.capitalize()} {last.capitalize()}"}
            words |= {f"{first}.{last}{n}" for n in range(1, 100)}
    return words


def unkeyed_guesses(word: str) -> set[str]:
    """What the attacker can compute without the key: the former mask, and the new token's shape with an
    unkeyed or empty-keyed hash."""
    digest = hashlib.sha256(word.encode()).hexdigest()
    empty = hmac.new(b"", word.encode(), hashlib.sha256).hexdigest()
    return {f"{word[0]}***{digest[:6]}", records.TOKEN_PREFIX + digest[:12], records.TOKEN_PREFIX + empty[:12]}


def test_a_dictionary_attack_without_the_key_recovers_nothing():
    users = old_users_frame()
    masked = records.Masker(KEY_A).frame(users)
    shown = {v for column in masked.columns for v in masked[column] if isinstance(v, str)}
    guesses = {guess: word for word in dictionary() for guess in unkeyed_guesses(word)}
    # The attack is real: against the former unkeyed mask the same list recovers most usernames.
    former = {f"{u[0]}***{hashlib.sha256(u.encode()).hexdigest()[:6]}" for u in users["username"]}
    assert len(former & set(guesses)) > len(users) * 3 // 4  # 85% have that shape

    assert shown & set(guesses) == set()
    assert not set(records.NAME_COLUMNS) & set(masked.columns), "names are left out, not masked"
    assert all(not v.startswith(tuple(legacy._FIRST)) for v in masked["username"])


def test_same_value_same_token_within_a_key_and_another_under_another_key():
    a, a_again, b = records.Masker(KEY_A), records.Masker(KEY_A), records.Masker(KEY_B)
    assert a.text("james.smith42") == a_again.text("james.smith42")
    assert a.text("james.smith42") != b.text("james.smith42")
    assert a.text("james.smith42") != a.text("James.Smith42")  # case variants stay apart, as in the pool
    assert a.text("james.smith42").startswith(records.TOKEN_PREFIX) and "james" not in a.text("james.smith42")


def test_frame_keeps_what_a_reader_needs_and_leaves_names_out():
    frame = pd.DataFrame(
        {
            "username": ["jane.doe", "Jane.Doe"],
            "email": ["jane@example.com", None],
            "phone_number": ["+15551234567", None],
            "name": ["Jane Doe", "Jane Doe"],
            "given_name": ["Jane", "Jane"],
            "status": ["CONFIRMED"] * 2,
            "enabled": [True, False],
        }
    )
    mask = records.Masker(KEY_A)

    masked = mask.frame(frame)

    assert list(masked.columns) == ["username", "email", "phone_number", "status", "enabled"]
    assert masked["email"][0] == mask.text("jane@example.com") + "@example.com" and pd.isna(masked["email"][1])
    assert masked["phone_number"][0] == mask.text("+15551234567") and pd.isna(masked["phone_number"][1])
    assert masked["username"][0] != masked["username"][1]  # rows stay distinguishable
    assert list(masked["status"]) == ["CONFIRMED"] * 2 and list(masked["enabled"]) == [True, False]
    assert frame["email"][0] == "jane@example.com"  # the input is untouched
    assert records.Masker(None).frame(frame).equals(frame)
    assert mask.value("given_name", "Jane") == records.WITHHELD  # in a finding's example text


def test_the_key_lives_beside_the_run_folders_and_is_created_owner_only(tmp_path: Path):
    run_a, run_b = tmp_path / "outputs" / "prod" / "20250101T000000Z", tmp_path / "outputs" / "prod" / "manual"
    other_env = tmp_path / "outputs" / "staging" / "20250101T000000Z"

    first, second = records.masker(run_a), records.masker(run_b)

    key_file = tmp_path / "outputs" / "prod" / records.KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not run_a.exists() or not any(run_a.iterdir()), "nothing of the key inside a run folder"
    assert first.text("ann") == second.text("ann"), "runs of one environment compare"
    assert records.masker(other_env).text("ann") != first.text("ann"), "environments do not link"
    assert records.masker(tmp_path / "outputs" / "dev" / "x", enabled=False).text("ann") == "ann"
    assert not (tmp_path / "outputs" / "dev" / records.KEY_FILE).exists(), "no key where nothing is masked"


def test_params_find_their_environments_key(tmp_path: Path):
    run = tmp_path / "outputs" / "local" / "20250101T000000Z"
    assert Params(run_dir=str(run)).masker().text("ann") == records.masker(run).text("ann")
    assert Params(run_dir=str(run), mask_pii=False).masker().text("ann") == "ann"


def test_a_key_others_can_read_or_a_damaged_key_is_refused_with_the_fix(tmp_path: Path):
    records.masker(tmp_path / "env" / "run")
    key_file = tmp_path / "env" / records.KEY_FILE
    key_file.chmod(0o644)
    with pytest.raises(records.MaskKeyError, match="chmod 600"):
        records.masker(tmp_path / "env" / "run")
    key_file.chmod(0o600)
    key_file.write_text("not a key\n")
    with pytest.raises(records.MaskKeyError, match="64 hex digits"):
        records.masker(tmp_path / "env" / "run")


# --- what a run saves -----------------------------------------------------------------------------------------


def audit_run(tmp_path: Path, mask_pii: bool) -> Path:
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
    (run,) = (p for p in (tmp_path / "outputs" / "local").iterdir() if p.is_dir())
    return run


def saved_text(run: Path) -> str:
    texts = [pd.read_parquet(p).to_csv() for p in run.glob("*.parquet")]
    texts += [p.read_text() for p in run.iterdir() if p.suffix in (".json", ".ipynb", ".html", ".log")]
    texts.append((run.parent / "index.html").read_text())
    return "\n".join(texts)


@pytest.mark.parametrize("mask_pii", [True, False])
def test_personal_data_reaches_the_outputs_only_when_masking_is_off(tmp_path: Path, mask_pii: bool) -> None:
    users = generate_users(USERS, SEED)
    emails = [u.attributes["email"] for u in users if u.attributes.get("email")]
    names = [f"{u.attributes['given_name']} {u.attributes['family_name']}" for u in users]
    run = audit_run(tmp_path, mask_pii)
    text = saved_text(run)

    found = [e for e in emails if e in text]
    if not mask_pii:
        assert len(found) == len(emails), "mask_pii: false keeps every address in the snapshot"
        return
    assert found == []
    assert [n for n in names if n in text] == [], "no full name anywhere in the run"
    assert not any(set(records.NAME_COLUMNS) & set(pd.read_parquet(p).columns) for p in run.glob("*.parquet"))
    key = (tmp_path / "outputs" / "local" / records.KEY_FILE).read_text().strip()
    assert key not in text and not list(run.rglob(records.KEY_FILE)), "the key stays out of the record"
    snapshot = pd.read_parquet(run / "old_users.parquet")
    masker = records.masker(run)
    assert set(snapshot["username"]) == {masker.text(u.username) for u in users}, "the environment's tokens"
    assert json.loads((run / "run.json").read_text())["env"] == "local"
