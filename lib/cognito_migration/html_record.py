"""The reader's HTML copy of an executed notebook.

The executed ``.ipynb`` is the engineer's record and is never changed. Its HTML copy is for whoever reads
the run afterwards: the narrative, tables, charts and gates, without code; the parameters the step received
as one table (papermill leaves two parameter cells, the defaults and the injected values); and each
progress bar as the line it ended on, since the kernel's stderr keeps every carriage-return update (0%,
90%, 100%...) and a browser shows them all, one under the other. A failed gate's error stays: it is why
the run stopped.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
from nbconvert import HTMLExporter
from nbformat import NotebookNode

from .notebook_params import HELP, literal

PARAMETER_TAGS = ("parameters", "injected-parameters")
PARAMETERS_TITLE = "## Parameters this step received"


def export(notebook_path: Path) -> str:
    """The reader's HTML of the executed notebook at ``notebook_path`` (which is left as it is)."""
    notebook = nbformat.read(notebook_path, as_version=4)
    return to_html(reader_notebook(notebook))


def to_html(notebook: NotebookNode) -> str:
    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(notebook)
    return body


def reader_notebook(notebook: NotebookNode) -> NotebookNode:
    """A copy of ``notebook`` for reading: one parameters table where the parameter cells were, progress bars
    collapsed to their last line, and no code cell left without an output (they would be empty boxes)."""
    reader = copy.deepcopy(notebook)
    cells: list[NotebookNode] = []
    shown = False
    for cell in reader.cells:
        if _is_parameters(cell):
            if not shown:
                cells += parameters_cells(received_parameters(notebook))
                shown = True
            continue
        if cell.cell_type == "code":
            cell.outputs = collapse_progress(cell.get("outputs", []))
            if not cell.outputs:
                continue
        cells.append(cell)
    reader.cells = cells
    return reader


def _is_parameters(cell: NotebookNode) -> bool:
    return any(tag in cell.get("metadata", {}).get("tags", []) for tag in PARAMETER_TAGS)


def received_parameters(notebook: NotebookNode) -> dict[str, Any]:
    """The values of the last parameter cell: papermill's injected one when there is one (it comes after the
    defaults and overrides them), else the defaults of a notebook nobody injected into."""
    cells = [c for c in notebook.cells if _is_parameters(c)]
    return assignments(cells[-1].source) if cells else {}


def assignments(source: str) -> dict[str, Any]:
    """``name = literal`` lines of a parameters cell, read without running it."""
    values: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def parameters_table(values: dict[str, Any]) -> pd.DataFrame:
    """One row per parameter, in the order an operator reads them, with its one line of help."""
    help_text = dict(HELP)
    names = [n for n in help_text if n in values] + sorted(set(values) - set(help_text))
    rows = [(n, literal(values[n]), help_text.get(n, "")) for n in names]
    return pd.DataFrame(rows, columns=["parameter", "value", "meaning"])


def parameters_cells(values: dict[str, Any]) -> list[NotebookNode]:
    """A heading and the table, as a cell that shows only its output (pandas escapes every value)."""
    frame = parameters_table(values)
    output = nbformat.v4.new_output(
        "display_data", data={"text/html": frame.to_html(index=False), "text/plain": frame.to_string(index=False)}
    )
    return [nbformat.v4.new_markdown_cell(PARAMETERS_TITLE), nbformat.v4.new_code_cell("", outputs=[output])]


def collapse_progress(outputs: list[NotebookNode]) -> list[NotebookNode]:
    """Consecutive stream outputs joined, each line cut to what follows its last carriage return (the bar as
    it ended); progress lines from stderr move to stdout, so only real warnings keep stderr's error colour."""
    collapsed: list[NotebookNode] = []
    for output in _join_streams(outputs):
        if output.output_type != "stream":
            collapsed.append(output)
            continue
        for name, text in _split_lines(output.name, output.text):
            collapsed.append(nbformat.v4.new_output("stream", name=name, text=text))
    return collapsed


def _join_streams(outputs: list[NotebookNode]) -> list[NotebookNode]:
    joined: list[NotebookNode] = []
    for output in outputs:
        last = joined[-1] if joined else None
        if output.output_type == "stream" and last is not None and last.output_type == "stream":
            if last.name == output.name:
                last.text += output.text
                continue
        joined.append(copy.deepcopy(output))
    return joined


def _split_lines(name: str, text: str) -> list[tuple[str, str]]:
    """(stream name, text) runs: each line's final state, progress lines of stderr as stdout."""
    runs: list[tuple[str, str]] = []
    for line in re.findall(r"[^\n]*\n|[^\n]+$", text):  # not splitlines(): it splits at \r too
        body, end = (line[:-1], "\n") if line.endswith("\n") else (line, "")
        if name == "stderr" and not body.strip():
            continue  # tqdm's closing newline, cut from its bar when stdout wrote in between: an empty pink box
        is_progress = "\r" in body
        if is_progress:
            # tqdm starts every update with \r; a bar closed with leave=False ends blank: keep its last state.
            segments = [s for s in body.split("\r") if s.strip()]
            body = segments[-1] if segments else ""
            if not body:
                continue
        kind = "stdout" if is_progress else name
        if runs and runs[-1][0] == kind:
            runs[-1] = (kind, runs[-1][1] + body + end)
        else:
            runs.append((kind, body + end))
    return runs
