"""README.md and docs/ stay true to the tree: every link leads to a file and heading that exist, every
variable the settings read is on the configuration page, and the README stays a front door."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def prose(page: Path) -> str:
    """The page without its code blocks, where brackets are code, not links."""
    return FENCE.sub("", page.read_text())


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lowercased, punctuation but `-` and `_` dropped,
    spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", prose(page), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_link_in_the_readme_and_docs_leads_to_a_file_and_heading_that_exist():
    broken = []
    for page in PAGES:
        for target in LINK.findall(prose(page)):
            if re.match(r"[a-z]+:", target):  # https:, mailto:: outside the tree
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            if not linked.exists() or (anchor and anchor not in anchors(linked)):
                broken.append(f"{page.relative_to(ROOT)}: {target}")

    assert sum(len(LINK.findall(prose(page))) for page in PAGES) >= 100  # the pages do link to each other
    assert broken == []


def test_every_variable_the_settings_read_is_on_the_configuration_page():
    code = "".join((ROOT / "insights_api" / name).read_text() for name in ("settings.py", "gunicorn.conf.py"))
    read = set(re.findall(r"\b(?:env_\w+|_positive)\(\s*\"([A-Z][A-Z0-9_]+)\"", code))
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (ROOT / "docs" / "configuration.md").read_text()))

    assert len(read) >= 50
    assert sorted(read - documented) == []


def test_the_readme_is_a_front_door_of_at_most_200_lines_that_names_the_two_commands():
    readme = (ROOT / "README.md").read_text()

    assert len(readme.splitlines()) <= 200
    assert "make run" in readme and "make test" in readme
