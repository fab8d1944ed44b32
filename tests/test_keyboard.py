"""At the keyboard: widget progress bars in JupyterLab and text bars in the log under papermill; what a widget
shows is also a plain output (the saved record keeps it); the findings table wraps its long text."""

from __future__ import annotations

import io
import re

import pandas as pd
import pytest

from cognito_migration import findings, widgets
from test_html_records import HOSTILE, assert_text_only, saved_html


def test_progress_is_a_text_bar_on_stderr_under_papermill(capsys: pytest.CaptureFixture[str]) -> None:
    with widgets.progress_bar(total=3, desc="old pool users", unit="user", mininterval=0) as bar:
        bar.update(3)

    assert type(bar).__module__ == "tqdm.std"
    assert "old pool users: 100%" in capsys.readouterr().err


def test_progress_is_a_widget_bar_in_jupyterlab(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(widgets, "interactive", lambda: True)
    monkeypatch.setattr("sys.stdout", io.StringIO())  # outside a kernel, IPython's display prints

    with widgets.progress_bar(total=3, desc="old pool users", unit="user") as bar:
        bar.update(3)

    assert type(bar).__module__ == "tqdm.notebook"


def test_the_filtered_table_is_a_plain_output_of_text_and_escaped_html() -> None:
    frame = pd.DataFrame(
        {"username": ["ann", HOSTILE, "cy"], "groups": ["admins", "editors", ""], "status": ["CONFIRMED"] * 3}
    )
    table = widgets.FilterTable(frame, rows=1)
    table.select("editors", widgets.ALL)

    shown = table.shown()

    assert shown["text/plain"].startswith("1 of 3 users; the first 1 (group editors, status (all)):")
    assert "&lt;img src=x" in shown["text/html"] and "<img" not in shown["text/html"]


def test_the_confirmation_says_what_happened_and_the_result_in_plain_text() -> None:
    approval = widgets.Confirmation(lambda: {"jobs": [{}, {}], "left_behind": [], "detached": ["UserMigration"]}, "go")
    button, _ = approval.widget()

    assert approval.outcome()["text/plain"].startswith("waiting: press the button")
    button.click()

    text = approval.outcome()["text/plain"]
    assert text.startswith("done: run the cells below")
    assert "result: jobs: 2; left_behind: []; detached: [UserMigration]" in text
    button.click()  # once only
    assert approval.state == "done"


def test_the_findings_table_wraps_its_long_text_within_bounded_columns() -> None:
    found = [findings.Finding("clients_without_password_flow", "blocker", 2, f"2 clients {HOSTILE}")]

    html = saved_html(findings.styled_table(findings.table(found)))

    assert_text_only(html)
    remedy = findings.table(found).columns.get_loc("remedy")
    rule = re.search(rf"[^}}]*_col{remedy}\b[^{{]*\{{([^}}]*)\}}", html)
    assert rule and "white-space: normal" in rule.group(1) and "max-width: 22em" in rule.group(1), html[:3000]
