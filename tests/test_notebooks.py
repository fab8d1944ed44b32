"""The source notebooks: committed clean, parameterised from one schema, thin (logic lives in the library)."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest
import yaml

from cognito_migration.params import FIELDS, validate
from cognito_migration.runbook import NOTEBOOKS, ROOT, STEPS

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
def test_notebook_defaults_are_valid_parameters(path: Path) -> None:
    (cell,) = [c for c in code_cells(path) if "parameters" in c.metadata.get("tags", [])]
    namespace: dict[str, object] = {}
    exec(compile(cell.source, str(path), "exec"), namespace)  # literal assignments only
    params = validate({k: v for k, v in namespace.items() if k in FIELDS})
    assert params.dry_run is True, "opened by hand, a notebook must write nothing until told to"


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
