"""Values from the pool are text in the HTML records, never markup (security review, finding 2).

The attack: a user sets a custom attribute (or a name) to ``<img src=x onerror=alert(1)>``; the audit shows
it as an example, and whoever opens ``01_audit_old_pool.html`` runs the attacker's script. With masking on,
an example such as ``j***4f2a9c <a***@mail.example.com>`` was read as a tag and vanished from the page.
Each table is rendered as the notebooks display it (IPython's formatter, then nbconvert's HTML exporter, as
the runner saves the HTML copy).
"""

from __future__ import annotations

import re
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
