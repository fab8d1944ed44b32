"""The source notebooks: committed clean, parameterised from one schema, thin (logic lives in the library)."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import yaml

from cognito_migration import notebook_params
from cognito_migration.params import FIELDS, validate
from cognito_migration.runbook import STEPS

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tests belong to
NOTEBOOKS = ROOT / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))


def code_cells(path: Path) -> list[nbformat.NotebookNode]:
    return [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def declared_parameters(path: Path) -> set[str]:
    (cell,) = [c for c in code_cells(path) if "parameters" in c.metadata.get("tags", [])]
    tree = ast.parse(cell.source)
    return {t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)}


def test_every_step_has_its_notebook() -> None:
    assert [p.stem for p in PATHS] == list(STEPS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    for cell in code_cells(path):
        assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_declares_every_parameter_of_the_schema(path: Path) -> None:
    assert declared_parameters(path) == set(FIELDS)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_parameters_are_params_defaults(path: Path) -> None:
    (cell,) = [c for c in code_cells(path) if "parameters" in c.metadata.get("tags", [])]
    assert cell.source == notebook_params.parameters_cell(), "run python -m cognito_migration.notebook_params"
    namespace: dict[str, object] = {}
    exec(compile(cell.source, str(path), "exec"), namespace)  # literal assignments only
    for name in FIELDS:
        assert namespace[name] == notebook_params.default(name), name


def test_every_parameter_has_one_line_of_help_in_the_cell() -> None:
    assert [name for name, _ in notebook_params.HELP] == list(dict.fromkeys(n for n, _ in notebook_params.HELP))
    assert {name for name, _ in notebook_params.HELP} == set(FIELDS)


def test_a_notebook_opened_by_hand_runs_with_the_local_parameters_and_writes_nothing(tmp_path: Path) -> None:
    (cell,) = [c for c in code_cells(PATHS[0]) if "parameters" in c.metadata.get("tags", [])]
    namespace: dict[str, object] = {}
    exec(compile(cell.source, "cell", "exec"), namespace)
    local = yaml.safe_load((ROOT / "params" / "local.yaml").read_text())

    values, sources = notebook_params.by_hand({k: v for k, v in namespace.items() if k in FIELDS}, tmp_path)
    params = validate(values)

    assert params.old_user_pool_id == local["old_user_pool_id"] and sources["old_user_pool_id"] == "params/local.yaml"
    assert set(params.accept_findings) == set(local["accept_findings"])
    assert params.dry_run is True and params.cutover_confirm is False, "by hand, only the cell asks for writes"
    assert Path(params.run_dir).parent == tmp_path / "local" and Path(params.run_dir).name.startswith("manual-")

    edited = {**namespace, "dry_run": False, "mask_pii": False, "list_rate_limit": 5.0}
    values, sources = notebook_params.by_hand({k: v for k, v in edited.items() if k in FIELDS}, tmp_path)
    assert (values["dry_run"], values["mask_pii"], values["list_rate_limit"]) == (False, False, 5.0)
    assert sources["list_rate_limit"] == "cell" and sources["cutover_confirm"] == "default"


def test_hand_runs_get_folders_of_their_own(tmp_path: Path) -> None:
    first, _ = notebook_params.by_hand({"env": "local"}, tmp_path)
    Path(first["run_dir"]).mkdir(parents=True)
    second, _ = notebook_params.by_hand({"env": "local"}, tmp_path)
    assert first["run_dir"] != second["run_dir"]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_cells_hold_no_logic(path: Path) -> None:
    for cell in code_cells(path):
        tree = ast.parse(cell.source)
        for node in ast.walk(tree):
            assert not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)), cell.source
            assert not isinstance(node, (ast.For, ast.While, ast.Try)), cell.source
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(m.startswith(("boto3", "botocore")) for m in modules), "clients come from aws.connect"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                assert node.func.attr not in ("client", "resource", "Session"), "clients come from aws.connect"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_notebook_ends_with_a_gate(path: Path) -> None:
    assert "checks.gate(" in code_cells(path)[-1].source


@pytest.mark.parametrize("params_file", sorted((ROOT / "params").glob("*.yaml")), ids=lambda p: p.name)
def test_every_params_key_is_a_declared_parameter(params_file: Path) -> None:
    keys = set(yaml.safe_load(params_file.read_text()))
    declared = set.union(*(declared_parameters(p) for p in PATHS))
    assert keys <= declared


def test_local_params_work_as_is() -> None:
    params = validate(yaml.safe_load((ROOT / "params" / "local.yaml").read_text()))
    assert params.env == "local" and params.dry_run is False
