"""docs/code-tour.md stays true: every file it names exists, and every function or class it names
(`name()`, or a CamelCase `Name`) is defined in the code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOUR = (ROOT / "docs" / "code-tour.md").read_text()
CODE = "\n".join(
    path.read_text()
    for path in ROOT.glob("[a-z]*/**/*.py")
    if ".venv" not in path.parts and "tests" not in path.parts
)
NAMED = re.findall(r"`([^`\s]+)`", TOUR)


def test_every_file_the_tour_names_exists():
    files = [name for name in NAMED if re.fullmatch(r"[a-z_]+/[\w/]*(\.py)?", name)]

    assert len(files) >= 30  # the tour names the files of both walks
    assert [name for name in files if not (ROOT / name).exists()] == []


def test_every_function_and_class_the_tour_names_is_defined():
    functions = {name.removesuffix("()") for name in NAMED if re.fullmatch(r"\w+\(\)", name)}
    functions |= {
        name.split(".")[-1].removesuffix("()") for name in NAMED if re.fullmatch(r"[A-Z]\w+\.\w+", name)
    }
    classes = {name for name in NAMED if re.fullmatch(r"_?[A-Z][a-z]\w*[a-z]\w*", name)}
    undefined = [
        name
        for name in sorted(functions | classes)
        if not re.search(rf"^\s*(def|class) {name}\b|^{name} = ", CODE, re.MULTILINE)
    ]

    assert len(functions | classes) >= 20
    assert undefined == []
