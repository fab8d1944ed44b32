"""Values from the pool are text in the HTML records, never markup (security review, finding 2).

The attack: a user sets a custom attribute (or a name) to ``<img src=x onerror=alert(1)>``; the audit shows
it as an example, and whoever opens ``01_audit_old_pool.html`` runs the attacker's script. With masking on,
an example such as ``j***4f2a9c <a***@mail.example.com>`` was read as a tag and vanished from the page.
Each table is rendered as the notebooks display it (IPython's formatter, then nbconvert's HTML exporter, as
the runner saves the HTML copy).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from IPython.core.formatters import DisplayFormatter
from nbconvert import HTMLExporter

from cognito_migration import audit, checks, findings, records, stragglers
from cognito_migration.report import NOT_YET

HOSTILE = "<img src=x onerror=alert(1)>"
MASKED_EXAMPLE = "j***4f2a9c <a***@mail.example.com>"


def saved_html(*shown: Any) -> str:
    """The HTML copy of a notebook whose cells displayed ``shown``."""
    formatter = DisplayFormatter()
    outputs = [nbformat.v4.new_output("display_data", data=formatter.format(obj)[0]) for obj in shown]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("display(...)", outputs=outputs)])
    body, _ = HTMLExporter().from_notebook_node(notebook)
    return body


def assert_text_only(html: str) -> None:
    # nbconvert re-serialises the markup (``<img alt=... onerror="alert(1)" src="x"/>``): look for any
    # image element, these notebooks display none.
    assert "<img src=x" not in html and re.search(r"<img\b", html) is None, "a value became a live element"
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_findings_table_escapes_examples_and_keeps_masked_addresses() -> None:
    found = [
        findings.Finding("custom_attribute_type_mismatch", "blocker", 1, f"custom:tier {HOSTILE}", (HOSTILE,)),
        findings.Finding("email_case_collisions", "warning", 2, "2 users", (MASKED_EXAMPLE,)),
    ]

    html = saved_html(findings.styled_table(findings.table(found)))

    assert_text_only(html)
    assert "j***4f2a9c &lt;a***@mail.example.com&gt;" in html, "the masked example keeps its text"


def test_fixed_settings_escape_values_read_from_the_old_pool() -> None:
    frame = pd.DataFrame(
        [("App client secrets (GenerateSecret)", f"['{HOSTILE}']", f"['{HOSTILE} (new secret)']", False)],
        columns=["setting", "old pool", "new pool", "differs"],
    )

    assert_text_only(saved_html(audit.style_fixed_settings(frame)))


@pytest.mark.parametrize("mask", [True, False])
def test_plain_tables_escape_values_too(mask: bool) -> None:
    gate = checks.table([checks.Check("values_too_long", False, "blocker", f"given_name {HOSTILE}")])
    classified = pd.DataFrame(
        {"username": [HOSTILE], "status": ["CONFIRMED"], "groups": [HOSTILE], "state": [NOT_YET], "reason": [""]}
    )
    left = stragglers.table(classified, None, records.Masker(b"k" * 32 if mask else None))

    assert_text_only(saved_html(gate, left))


# The reader's copy (html_record): narrative, tables, charts and gates; no code; one parameters table;
# progress bars as their last line. The executed notebook stays as it ran.


FAILED_GATE = "audit: 1 blocker failed: mfa_users"


def executed_notebook() -> nbformat.NotebookNode:
    """An executed notebook as papermill leaves it: defaults cell, injected cell, a read with progress bars
    and a warning on stderr, and a gate that failed."""
    from cognito_migration import notebook_params

    new = nbformat.v4
    defaults = new.new_code_cell(notebook_params.parameters_cell(), metadata={"tags": ["parameters"]})
    injected = new.new_code_cell(
        '# Parameters\nenv = "staging"\ndry_run = False\naccept_findings = ["mfa_users"]\n',
        metadata={"tags": ["injected-parameters"]},
    )
    bars = [
        new.new_output("stream", name="stderr", text="\rold pool users:   0%|          | 0/400 [00:00<?, ?user/s]"),
        new.new_output("stream", name="stderr", text="\rold pool users:  90%|█████████ | 360/400 [00:00<00:00]"),
        new.new_output("stream", name="stderr", text="\rold pool users: 100%|██████████| 400/400 [00:01<00:00]"),
        new.new_output("stream", name="stderr", text="\n"),
        new.new_output("stream", name="stderr", text="UserWarning: 2 users start like a formula\n"),
        new.new_output("stream", name="stderr", text="\rnew pool users: 100%|██████████| 370/370"),
        new.new_output("stream", name="stdout", text="done: run the cells below\n"),
        new.new_output("stream", name="stderr", text="\n"),
        new.new_output("display_data", data={"text/html": "<table><tr><td>users by status</td></tr></table>"}),
    ]
    read = new.new_code_cell("result = audit.run_audit(conn.cognito, cfg)\ndisplay(result)", outputs=bars)
    quiet = new.new_code_cell("audit_secretly_quiet_call(cfg)")
    gate = new.new_code_cell(
        "checks.gate(gate_checks, 'audit')",
        outputs=[
            new.new_output("error", ename="GateFailed", evalue=FAILED_GATE, traceback=[f"GateFailed: {FAILED_GATE}"])
        ],
    )
    cells = [new.new_markdown_cell("# Step 1 — Audit"), defaults, injected, read, quiet, gate]
    return new.new_notebook(cells=cells)


def test_the_reader_copy_shows_no_code_and_the_parameters_once_as_a_table(tmp_path: Path) -> None:
    from cognito_migration import html_record

    path = tmp_path / "01_audit_old_pool.ipynb"
    nbformat.write(executed_notebook(), path)
    before = path.read_bytes()

    html = html_record.export(path)

    assert path.read_bytes() == before, "the executed notebook is the engineer's record: never changed"
    assert "run_audit" not in html and "audit_secretly_quiet_call" not in html and "checks.gate" not in html
    assert html.count(html_record.PARAMETERS_TITLE.lstrip("# ")) == 1
    assert html.count("<td>dry_run</td>") == 1 and "# Parameters (docs/parameters.md" not in html
    assert '<td>"staging"</td>' in html and "<td>False</td>" in html, "the injected values, not the defaults"
    assert "mfa_users" in html and "Step 1 — Audit" in html and "users by status" in html


def test_the_reader_copy_keeps_each_progress_bar_as_its_last_line_and_the_gate_error() -> None:
    from cognito_migration import html_record

    reader = html_record.reader_notebook(executed_notebook())
    (read,) = [c for c in reader.cells if any(o.get("name") for o in c.get("outputs", []))]
    streams = [(o.name, o.text) for o in read.outputs if o.output_type == "stream"]

    assert streams == [
        ("stdout", "old pool users: 100%|██████████| 400/400 [00:01<00:00]\n"),
        ("stderr", "UserWarning: 2 users start like a formula\n"),
        ("stdout", "new pool users: 100%|██████████| 370/370"),
        ("stdout", "done: run the cells below\n"),
    ]
    html = html_record.to_html(reader)
    assert f"GateFailed: {FAILED_GATE}" in html, "why the run stopped stays visible"
    assert " 90%|" not in html and "  0%|" not in html


def test_the_reader_copy_of_a_hand_run_shows_its_parameters_cell_as_the_table() -> None:
    from cognito_migration import html_record

    notebook = executed_notebook()
    notebook.cells = [c for c in notebook.cells if "injected-parameters" not in c.metadata.get("tags", [])]

    table = html_record.parameters_table(html_record.received_parameters(notebook))

    assert table.loc[table["parameter"] == "env", "value"].item() == '"local"'
    assert list(table["parameter"][:2]) == ["env", "dry_run"], "in the order an operator reads them"
