"""In a real browser: JupyterLab, driven by Playwright over Debian's chromium, runs the six notebooks by hand in
order against the local AWS, as docs/interactive.md says (``dry_run = False`` typed into the
parameters cells of steps 2, 3 and 6; sign-ins replayed before step 5).

It proves what only a browser shows: no cell ends in an error; step 1's long reads show widget progress bars,
not text on stderr; step 5's dropdowns change its table; step 6's button does not appear while a readiness
check fails, the gate does not pass while the button waits, the line under the button says when it has run
and the gate passes after the cells below run again; a reopened record shows its widgets (state saved with
the notebook) and its plain outputs. Screenshots go to outputs/browser/ for people to look at.

The tests below are the steps of one session, in order: each relies on the one before.
"""

from __future__ import annotations

import json
import re
import secrets
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    Lab,
    cell_index,
    close_all,
    copy_notebooks,
    edit_parameters,
    errors,
    notebook,
    open_notebook,
    output_text,
    run,
    start_lab,
    stop_lab,
)
from cognito_migration.local.demo import LocalEnvironment

USERS, SEED, SHARE = 300, 7, 0.2
SHOTS = ROOT / "outputs" / "browser"
COPIES = SHOTS / "notebooks"  # the notebooks as run and saved by the browser; notebooks/ stays clean
BUTTON = "Import the stragglers and detach the migration trigger"
MISSING = (
    f"BROWSER TEST SKIPPED: {CHROMIUM} is missing. Install Debian's chromium with "
    "`apt-get install -y chromium` (never `playwright install`); .ci/run does it in CI."
)

if not CHROMIUM.exists():
    warnings.warn(MISSING, stacklevel=1)  # in the warnings summary too, not only with -rs
pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(not CHROMIUM.exists(), reason=MISSING),
]


@pytest.fixture(scope="module")
def local() -> Iterator[LocalEnvironment]:
    with LocalEnvironment(users=USERS, seed=SEED) as environment:  # sets AWS_ENDPOINT_URL for JupyterLab
        yield environment


@pytest.fixture(scope="module")
def lab(local: LocalEnvironment, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    copy_notebooks(COPIES)
    started = start_lab(tmp_path_factory.mktemp("jupyterlab"), secrets.token_hex(16))
    yield started
    stop_lab(started)


@pytest.fixture(scope="module")
def page(lab: Lab) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        opened = browser.new_page(viewport={"width": 1400, "height": 900})
        opened.set_default_timeout(60_000)
        yield opened
        browser.close()


def path_of(name: str) -> str:
    return str((COPIES / name).relative_to(ROOT))


def source_parameters(name: str) -> str:
    import nbformat

    nb = nbformat.read(COPIES / name, as_version=4)
    return next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))


def shot(page: Any, name: str, text: str | None = None) -> None:
    """A screenshot for people to look at, with the output showing ``text`` (when given) scrolled into view."""
    if text is not None:
        page.locator(".jp-OutputArea-output", has_text=text).first.scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def run_by_hand(page: Any, lab: Lab, name: str, edits: dict[str, str] | None = None) -> dict[str, Any]:
    open_notebook(page, lab, path_of(name))
    if edits:
        edit_parameters(page, source_parameters(name), edits)
    run(page, "notebook:run-all-cells")
    return notebook(page)


@pytest.mark.parametrize(
    ("name", "edits"),
    [
        ("01_audit_old_pool.ipynb", None),
        ("02_create_new_pool.ipynb", {"dry_run": "False"}),
        ("03_deploy_trigger.ipynb", {"dry_run": "False"}),
        ("04_smoke_test_sign_in.ipynb", None),
    ],
)
def test_steps_1_to_4_run_by_hand_without_an_error(page: Any, lab: Lab, name: str, edits: dict[str, str]) -> None:
    nb = run_by_hand(page, lab, name, edits)

    assert errors(nb) == [], errors(nb)
    assert all(c["execution_count"] for c in nb["cells"] if c["cell_type"] == "code"), "a cell did not run"
    if name.startswith("01"):
        read = nb["cells"][cell_index(nb, "audit.run_audit(")]
        kinds = [o["output_type"] + ":" + o.get("name", "") for o in read["outputs"]]
        assert "stream:stderr" not in kinds, "progress went to stderr (pink) instead of a widget bar"
        assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in read["outputs"])
        shot(page, "01_progress_bars", "ListUsers")
        findings = page.locator(".jp-OutputArea-output", has_text="remedy").first
        fits = findings.evaluate("el => el.scrollWidth <= el.clientWidth + 1")
        assert fits, "the findings table is wider than the notebook (the remedy column is cut off)"
        shot(page, "01_findings", "remedy")
    shot(page, name.removesuffix(".ipynb"))
    close_all(page)


def test_step_5s_dropdowns_change_the_table(page: Any, lab: Lab, local: LocalEnvironment) -> None:
    local.replay("users-v2", SHARE)  # returning users sign in, as `python -m cognito_migration.local replay`
    nb = run_by_hand(page, lab, "05_report.ipynb")
    assert errors(nb) == [], errors(nb)
    table = page.locator(".jp-OutputArea-output", has_text="users; the first").first
    before = table.inner_text()
    assert "(group (all), status (all))" in before

    group, status = page.locator(".widget-dropdown select").nth(0), page.locator(".widget-dropdown select").nth(1)
    group.select_option(index=1)
    chosen = group.input_value()
    page.wait_for_function(
        "([el, g]) => el.innerText.includes('(group ' + g + ',')", arg=[table.element_handle(), chosen]
    )
    status.select_option(index=1)
    page.wait_for_function("el => !el.innerText.includes('status (all))')", arg=table.element_handle())
    after = table.inner_text()
    assert after != before and f"(group {chosen}, status " in after
    shot(page, "05_filtered_table", "users; the first")

    saved = notebook(page)
    shown = output_text(saved["cells"][cell_index(saved, "widgets.filter_table(")])
    assert f"(group {chosen}, status " in shown, "the plain output holds the table as last filtered"

    # the record and the index refresh run again from their cell down, the reads' snapshots already deleted
    record = cell_index(saved, "comparison.save(")
    where = output_text(saved["cells"][cell_index(saved, "aws.where(")])
    found = re.search(r"manual-[0-9TZ-]+", where)
    assert found, where
    report = ROOT / "outputs" / "local" / found.group(0) / "report.json"
    before_rerun = json.loads(report.read_text())["reads"]
    assert before_rerun["old pool"]["users"] == USERS
    run(page, "notebook:run-all-below", active_cell=record)
    again = notebook(page)
    assert errors(again) == [], errors(again)
    assert json.loads(report.read_text())["reads"] == before_rerun, "the record keeps what each read did"
    close_all(page)


def test_step_6_shows_no_button_while_a_readiness_check_fails(page: Any, lab: Lab) -> None:
    nb = run_by_hand(page, lab, "06_cutover.ipynb", {"dry_run": "False", "cutover_min_quiet_days": "30"})

    readiness = nb["cells"][cell_index(nb, "cutover.readiness(")]
    assert "GateFailed" in output_text(readiness) and "30 days" in output_text(readiness), output_text(readiness)
    assert not nb["cells"][cell_index(nb, "widgets.confirm(")]["outputs"], "the confirmation cell ran"
    assert page.locator("button.widget-button", has_text=BUTTON).count() == 0
    shot(page, "06_refused_while_not_ready", "GateFailed")


def test_step_6_button_writes_once_ready_and_the_gate_passes_after(page: Any) -> None:
    edit_parameters(page, source_parameters("06_cutover.ipynb"), {"dry_run": "False"})
    run(page, "notebook:run-all-cells")
    nb = notebook(page)
    assert [e for e in errors(nb) if "press the button" not in e] == [], errors(nb)
    gate = cell_index(nb, "checks.gate(result, 'cutover')")
    assert "press the button" in output_text(nb["cells"][gate]), "the gate passed while the button waits"
    line = page.locator(".jp-OutputArea-output", has_text="press the button above to write").first
    assert line.is_visible()
    shot(page, "06_waiting_for_the_button", "press the button above to write")

    page.locator("button.widget-button", has_text=BUTTON).click()
    page.locator(".jp-OutputArea-output", has_text="done: run the cells below").first.wait_for(timeout=300_000)
    shot(page, "06_button_done", "done: run the cells below")

    confirm = cell_index(nb, "widgets.confirm(")
    run(page, "notebook:run-all-below", active_cell=confirm + 1)
    after = notebook(page)
    assert errors(after) == [], errors(after)
    assert after["cells"][gate]["outputs"] and "GateFailed" not in output_text(after["cells"][gate])
    assert "done: run the cells below" in output_text(after["cells"][confirm])
    assert "result: " in output_text(after["cells"][confirm])
    shot(page, "06_gate_passed", "old pool kept")
    close_all(page)


@pytest.mark.parametrize(
    ("name", "shown"),
    [("05_report.ipynb", "users; the first"), ("06_cutover.ipynb", "done: run the cells below")],
)
def test_a_reopened_record_shows_its_widgets_and_what_they_showed(page: Any, lab: Lab, name: str, shown: str) -> None:
    import nbformat

    saved = nbformat.read(COPIES / name, as_version=4)
    state = saved.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    assert state.get("state"), "no widget state saved with the notebook"

    open_notebook(page, lab, path_of(name))
    page.locator(".jp-OutputArea-output", has_text=shown).first.wait_for()
    page.wait_for_timeout(2000)  # the widget manager restores views from the saved state
    assert page.get_by_text("Error displaying widget").count() == 0
    if name.startswith("06"):
        assert page.locator("button.widget-button", has_text=BUTTON).count() == 1
    else:
        assert page.locator(".widget-dropdown select").count() == 2
    shot(page, f"{name.removesuffix('.ipynb')}_reopened", shown)
    close_all(page)
