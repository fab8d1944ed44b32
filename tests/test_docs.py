"""The generated reference pages say what the code says."""

from __future__ import annotations

from pathlib import Path

import pytest

from cognito_migration import docs_pages

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tests belong to


def test_the_generated_pages_say_what_the_code_says() -> None:
    assert docs_pages.stale(ROOT) == [], f"a page differs from the code: run `{docs_pages.REGENERATE}`"


def test_a_note_for_a_parameter_that_does_not_exist_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docs_pages, "NOTES", {**docs_pages.NOTES, "old_pool_name": "renamed long ago"})
    with pytest.raises(ValueError, match="old_pool_name is not a parameter"):
        docs_pages.parameters_page({})


def test_the_generated_pages_list_every_parameter_and_every_finding() -> None:
    from cognito_migration.findings import CATALOG
    from cognito_migration.params import FIELDS

    parameters = (ROOT / "docs" / "parameters.md").read_text()
    findings = (ROOT / "docs" / "findings.md").read_text()
    assert [name for name in FIELDS if f"| `{name}` |" not in parameters] == []
    assert [kind.id for kind in CATALOG if f"| `{kind.id}` |" not in findings] == []
