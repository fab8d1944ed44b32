"""The documentation: the generated pages say what the code says, every link leads somewhere, and the README
stays a first read (the reference lives in docs/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cognito_migration import docs_pages

ROOT = Path(__file__).resolve().parents[1]  # the checkout these tests belong to
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]\n]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} +(.+?) *$", re.MULTILINE)


def prose(page: Path) -> str:
    """A page without its code blocks and code spans, where brackets are not links."""
    return CODE_SPAN.sub("", FENCE.sub("", page.read_text()))


def anchors(page: Path) -> set[str]:
    """The anchors a markdown renderer gives a page's headings (GitHub's rule: lower case, punctuation dropped,
    spaces to hyphens; a repeated heading gets -1, -2...)."""
    found: set[str] = set()
    for heading in HEADING.findall(FENCE.sub("", page.read_text())):
        slug = re.sub(r"[^\w\- ]", "", heading.replace("`", "").lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found


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


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for target in LINK.findall(prose(page)):
        if re.match(r"^[a-z]+:", target):  # https:, mailto:: outside the project
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no heading with that anchor in {linked.name}")
    assert broken == []


def test_the_readme_is_a_first_read() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    first_screen = "\n".join(lines[:40])
    for needed in ("make demo", "make test", "01_audit_old_pool", "06_cutover", "## On a real account"):
        assert needed in first_screen, f"the README's first screen lacks {needed!r}"
    assert len(lines) <= 150, "the README is for a first read: move reference material to a page in docs/"


def test_every_page_is_linked_from_the_readme() -> None:
    readme = prose(ROOT / "README.md")
    assert [p.name for p in PAGES[1:] if f"(docs/{p.name})" not in readme] == []
