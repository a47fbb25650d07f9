"""Docs point only at files a user of the project has (issue #8 A14).

The domain notes, roadmap and style guide the project was started from live outside the
repository; the repository's own versions are docs/domain.md, docs/roadmap.md and the Style
section of DEVELOPERS.md.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Every tracked path is checked for references outside the repository.
CHECKED = ("",)
SKIPPED = (
    "bench/results/",  # benchmark output, written by bench/report.py
    # applied migrations are never edited, even their comments (DEVELOPERS.md)
    "urbanwatch/sql/001_core.sql",
    "urbanwatch/sql/timescale/003_timeseries.sql",
)

# Files outside the repository, by name (built from parts so this file does not name them).
OUTSIDE_NAMES = ("DOMAIN", "ROADMAP", "STYLE", "TARGETS", "mqtt_facts")
OUTSIDE_RE = re.compile(
    r"\b(?:" + "|".join(OUTSIDE_NAMES) + r")\.md\b"  # the documents themselves
    r"|\bDOMAIN\s§"  # the short form used in code comments
    r"|\.\./shared/"  # the folder they live in
)
# Markdown links and images: [text](target) or [text](target "title").
LINK_RE = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")

D, R, S, UP = "DOMAIN", "ROADMAP", "STYLE", "../"  # parts for the tables below


def outside_references(text: str) -> list[str]:
    """Each line of `text` that names a file outside the repository."""
    return [line.strip() for line in text.splitlines() if OUTSIDE_RE.search(line)]


def relative_links(text: str) -> list[str]:
    """Link targets that are files of the repository (no URL, no bare #anchor), anchors cut."""
    targets = []
    for target in LINK_RE.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
            continue
        targets.append(target.split("#", 1)[0])
    return targets


@pytest.mark.parametrize(
    ("text", "found"),
    [
        (f"Names and units follow `{D}.md`.", 1),
        (f"arrive with the security work ({R}.md item 5)", 1),
        (f"See `docs/architecture.md` and `{UP}shared/{S}.md`.", 1),
        (f"Smart cover monitor, {D} §2.2.", 1),
        (f"Cadences ({UP}shared/plan): every 15 min", 1),
        (f"one line {D}.md\nand another {R}.md", 2),
        ("Smart cover monitor, docs/domain.md §2.2.", 0),
        ("See docs/roadmap.md, Alerts, and the Style section of DEVELOPERS.md.", 0),
        (f"{D}_MODEL.md or X{D}.md are other files", 0),
    ],
)
def test_outside_references(text, found):
    assert len(outside_references(text)) == found


@pytest.mark.parametrize(
    ("text", "targets"),
    [
        ("see [docs/mqtt.md](docs/mqtt.md).", ["docs/mqtt.md"]),
        ("[a](domain.md#2-manhole-covers) and [b](../README.md)", ["domain.md", "../README.md"]),
        ('[t](roadmap.md "Roadmap") ![pic](img/x.png)', ["roadmap.md", "img/x.png"]),
        ("[api](http://127.0.0.1:8000/docs) [w](https://example.org) [m](mailto:a@b)", []),
        ("[top](#layout) and [text] (not a link)", []),
    ],
)
def test_relative_links(text, targets):
    assert relative_links(text) == targets


def tracked_files() -> list[str]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return [path for path in out.splitlines() if (ROOT / path).is_file()]


def test_no_references_outside_the_repository():
    checked = [
        path
        for path in tracked_files()
        if path.startswith(CHECKED) and not path.startswith(SKIPPED)
    ]
    assert "docs/domain.md" in checked and "tests/test_docs.py" in checked
    found = {}
    for path in checked:
        lines = outside_references((ROOT / path).read_text(encoding="utf-8", errors="replace"))
        if lines:
            found[path] = lines
    assert found == {}


def test_relative_links_in_readme_and_docs_exist():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    links = {page: relative_links(page.read_text(encoding="utf-8")) for page in pages}
    assert "docs/domain.md" in links[ROOT / "README.md"]
    assert "roadmap.md" in links[ROOT / "docs" / "architecture.md"]
    broken = [
        f"{page.relative_to(ROOT)}: {target}"
        for page, targets in links.items()
        for target in targets
        if not (page.parent / target).exists()
    ]
    assert broken == []
